"""scripts/setup.sh waits for another apt run's lock instead of failing with apt's raw error; the
lock files it installs hold the runtime and, apart, the development extras."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / "scripts" / "setup.sh"


def apt_get_function() -> str:
    """The apt_get helper, cut out of setup.sh so it can run against a stand-in for apt-get."""
    text = SETUP.read_text()
    start = text.index("APT_LOCK_WAIT_S=")
    end = text.index("\n}\n", start) + 3
    return text[start:end]


def run(fake_apt: str, wait_s: int, tmp_path) -> subprocess.CompletedProcess:
    script = tmp_path / "t.sh"
    script.write_text(
        f"set -euo pipefail\nsleep() {{ :; }}\n{apt_get_function()}\n{fake_apt}\napt_get fake_apt update\n"
    )
    return subprocess.run(
        ["bash", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "APT_LOCK_WAIT_S": str(wait_s)},
    )


def test_waits_while_the_lock_is_held_then_succeeds(tmp_path):
    counter = tmp_path / "n"
    fake = (
        f"fake_apt() {{ n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}; "
        'if [ "$n" -lt 3 ]; then echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 42"; '
        "return 100; fi; echo installed; }"
    )
    proc = run(fake, 600, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert counter.read_text().strip() == "4"
    assert proc.stderr.strip() == "setup: another apt run holds the lock; waiting up to 600s"


def test_gives_up_after_the_bound_with_a_clear_message(tmp_path):
    fake = 'fake_apt() { echo "E: Could not get lock /var/lib/dpkg/lock-frontend"; return 100; }'
    proc = run(fake, 10, tmp_path)
    assert proc.returncode == 100
    assert re.search(r"still holds the lock after 10s; try again when it ends", proc.stderr)


def test_other_apt_errors_are_shown_at_once(tmp_path):
    fake = 'fake_apt() { echo "E: Unable to locate package ffmpeg"; return 100; }'
    proc = run(fake, 600, tmp_path)
    assert proc.returncode == 100 and proc.stderr.strip() == "E: Unable to locate package ffmpeg"


def test_the_runtime_lock_is_exactly_what_the_package_needs_and_the_dev_lock_adds_the_rest():
    """requirements.lock is the closure of pyproject's dependencies (from the installed packages'
    own metadata), so the image's install is what the README says; requirements-dev.lock holds
    the test and Ray extras on top, at the versions pyproject pins."""
    import tomllib
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    def pins(path):
        lines = (ROOT / path).read_text().splitlines()
        return {canonicalize_name(x.split("==")[0]): x.split("==")[1] for x in lines if "==" in x}

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    needed, todo = set(), list(project["dependencies"])
    while todo:
        requirement = Requirement(todo.pop())
        name = canonicalize_name(requirement.name)
        if name in needed:
            continue
        needed.add(name)
        for sub in metadata.distribution(name).requires or []:
            sub_requirement = Requirement(sub)
            marker = sub_requirement.marker
            # what the package always needs, and what the extras it was asked with add (torch's CUDA libraries)
            if marker is None or any(marker.evaluate({"extra": e}) for e in ("", *requirement.extras)):
                extras = f"[{','.join(sub_requirement.extras)}]" if sub_requirement.extras else ""
                todo.append(f"{sub_requirement.name}{extras}{sub_requirement.specifier}")
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert set(runtime) == needed - {"setuptools"}  # setuptools comes with every virtual environment
    assert not set(runtime) & set(dev) and "-r requirements.lock" in (ROOT / "requirements-dev.lock").read_text()
    for extra in project["optional-dependencies"].values():
        for pinned in extra:
            requirement = Requirement(pinned)
            assert (runtime | dev)[canonicalize_name(requirement.name)] == str(requirement.specifier).removeprefix("==")
    for name, version in runtime.items():  # the lock is what is installed here
        assert metadata.version(name) == version, name
