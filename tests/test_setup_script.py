"""scripts/setup.sh waits for another apt run's lock instead of failing with apt's raw error."""

import re
import subprocess
from pathlib import Path

SETUP = Path(__file__).resolve().parents[1] / "scripts" / "setup.sh"


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
