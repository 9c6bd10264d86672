"""Walk folders or take single files, classify them by content, and hash them.

Classification reads the first bytes of each file (container signatures), so a text file renamed
``.mp4`` is "other" and an ``.dat`` that is really an MP4 is media. The probe stage then decides
between video and audio from the actual streams.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from embedder.errors import EmbedderError
from embedder.media.access import FileIdentity

PARTIAL_SUFFIXES = (".part", ".crdownload", ".partial", ".download", ".tmp")
SIDECAR_SUFFIXES = (".json", ".txt", ".srt", ".vtt")
HASH_CHUNK = 1 << 20
MISSING = "does not exist"  # the reason recorded for a given path that is not there
SIDECAR = "sidecar text (read with its media file)"
# Kernel and virtual filesystems: their "files" block (/proc/kmsg), never end or are devices.
PSEUDO_FILESYSTEMS = {
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "mqueue",
    "hugetlbfs",
    "fusectl",
    "configfs",
    "autofs",
    "binfmt_misc",
    "efivarfs",
    "rpc_pipefs",
    "nsfs",
}


class DiscoveryLimitError(EmbedderError):
    """Discovery found more files, or took longer, than the limits allow."""


def pseudo_mounts() -> set[str]:
    """Mount points of kernel and virtual filesystems (from /proc/self/mounts; empty if unreadable)."""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as fh:
            rows = [line.split() for line in fh]
    except OSError:
        return {"/proc", "/sys", "/dev"}
    return {row[1].replace("\\040", " ") for row in rows if len(row) > 2 and row[2] in PSEUDO_FILESYSTEMS}


def printable(path: str | Path) -> str:
    """A path as text that prints and serialises: undecodable bytes of a name become \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class DiscoveredFile:
    """A candidate media file found by discovery."""

    path: Path  # absolute, as reached through the root (not resolved through links)
    kind: str  # "video", "audio" or "other" (from the content's signature)
    size: int
    sha256: str
    container: str  # what the signature says, e.g. "mp4", "matroska", "wav", "text", "empty"
    mtime_ns: int = 0
    dev: int = 0
    ino: int = 0
    root: str = ""  # the real path of the folder or file named to discovery
    ctime_ns: int = 0

    def identity(self) -> FileIdentity:
        """What serving checks before it reads this path again (:mod:`embedder.media.access`).

        Called only for files that are written (new, changed, linked, restored), so the link
        resolution is not paid for every unchanged file of a re-run."""
        real = os.path.realpath(self.path)
        return FileIdentity(self.size, self.mtime_ns, self.dev, self.ino, real, self.root, self.ctime_ns)


@dataclass(frozen=True)
class Skipped:
    """A path discovery did not take, and why."""

    path: str
    reason: str


@dataclass
class Discovery:
    """Everything discovery found under the given paths, in deterministic order."""

    files: list[DiscoveredFile] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    roots: list[Path] = field(default_factory=list)


def sniff_container(head: bytes) -> tuple[str, str]:
    """Classify a file from its first bytes.

    Returns:
        ``(kind, container)`` where kind is "video", "audio" or "other". Containers that can
        hold either (MP4, Matroska, Ogg) get the more common kind; the probe corrects it.
    """
    if not head:
        return "other", "empty"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B ", b"M4P ", b"F4A "):
            return "audio", "mp4-audio"
        return "video", "mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free"):
        return "video", "quicktime"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "video", "matroska"
    if head[:4] == b"RIFF":
        if head[8:12] == b"WAVE":
            return "audio", "wav"
        if head[8:12] == b"AVI ":
            return "video", "avi"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "audio", "aiff"
    if head[:3] == b"ID3":
        return "audio", "mp3"
    if head[:4] == b"fLaC":
        return "audio", "flac"
    if head[:4] == b"OggS":
        return "audio", "ogg"
    if head[:4] == b"caff":
        return "audio", "caf"
    if head[:3] == b"FLV":
        return "video", "flv"
    if head[:4] == b"\x30\x26\xb2\x75":
        return "video", "asf"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "video", "mpeg-ps"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "video", "mpeg-ts"
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        return "audio", "mpeg-audio"  # MP3 or ADTS AAC frame sync
    return "other", "text" if _looks_like_text(head) else "unknown"


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head


def hash_file(path: Path) -> str:
    """Streamed SHA-256 of a file's content (bounded memory for any size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


HashCache = dict[str, tuple[int, int, str]]  # path -> (size, mtime_ns, sha256) from an earlier run


def describe_file(path: Path, hash_cache: HashCache | None = None) -> DiscoveredFile:
    """Classify and hash one regular file.

    When ``hash_cache`` has the path with the same size and modification time, its hash is
    reused instead of reading the whole file again; that is what makes re-runs over a large
    library fast.
    """
    st = path.stat()
    with open(path, "rb") as fh:
        head = fh.read(512)
    kind, container = sniff_container(head)
    cached = (hash_cache or {}).get(str(path))
    if cached is not None and cached[0] == st.st_size and cached[1] == st.st_mtime_ns:
        sha = cached[2]
    else:
        sha = hash_file(path)
    return DiscoveredFile(
        path=path,
        kind=kind,
        size=st.st_size,
        sha256=sha,
        container=container,
        mtime_ns=st.st_mtime_ns,
        dev=st.st_dev,
        ino=st.st_ino,
        ctime_ns=st.st_ctime_ns,
    )


def _is_hidden_or_partial(name: str) -> str | None:
    if name.startswith("."):
        return "hidden"
    if name.lower().endswith(PARTIAL_SUFFIXES):
        return "partial download"
    return None


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def root_path(path: str | Path) -> Path:
    """A path as discovery names it and stores it: user-expanded and absolute, links unresolved."""
    return Path(os.path.abspath(Path(path).expanduser()))


def discover(
    paths: list[str | Path],
    *,
    include_hidden: bool = False,
    media_only: bool = True,
    hash_cache: HashCache | None = None,
    max_files: int | None = None,
    timeout_s: float | None = None,
    on_progress=None,
) -> Discovery:
    """Find media files under ``paths`` (folders are walked, files taken as they are).

    Symlinks are followed only when their target stays inside the root being walked, and each
    real directory is entered once, so link loops end. Hidden files and partial downloads are
    skipped unless ``include_hidden``. The result is sorted by path.

    Args:
        paths: folders and files.
        include_hidden: also take dot-files and dot-folders, and partial downloads.
        media_only: drop files whose content is not audio or video (listed in ``skipped``).
        hash_cache: hashes known from an earlier run, reused when size and mtime match.
        max_files, timeout_s: stop with :class:`DiscoveryLimitError` past this many files or
            seconds (a root that is much bigger than meant, such as a link to ``/``).
        on_progress: called with a one-line message every few seconds while a walk goes on, so a
            long walk is never silent.

    Only regular files are opened; kernel and virtual filesystems (``/proc``, ``/sys``, ``/dev``)
    are never entered, and a name that is not valid UTF-8 is skipped with its reason.
    """
    result = Discovery()
    seen_files: set[tuple[int, int]] = set()
    limits = _Limits(max_files, timeout_s, on_progress)
    pseudo = pseudo_mounts()
    for raw in paths:
        root = root_path(raw)
        if not os.path.lexists(root):
            result.skipped.append(Skipped(printable(root), MISSING))
            continue
        real_root = os.path.realpath(root)
        if real_root == os.sep:
            raise DiscoveryLimitError(
                f"{printable(root)} is the whole filesystem (/); name the folder that holds the media"
            )
        result.roots.append(root)
        if root.is_dir():
            candidates = _walk(root, include_hidden, result.skipped, pseudo, limits)
        else:
            candidates = [root]
        for path in candidates:
            limits.check(root, count=not root.is_dir())  # files under a folder were counted by the walk
            _take(path, result, seen_files, media_only, hash_cache, real_root)
    result.files.sort(key=lambda f: str(f.path))
    result.skipped.sort(key=lambda s: s.path)
    return result


PROGRESS_EVERY_S = 5.0


@dataclass
class _Limits:
    max_files: int | None
    timeout_s: float | None
    on_progress: object = None
    started: float = field(default_factory=time.monotonic)
    files: int = 0
    reported: float = field(default_factory=time.monotonic)

    def check(self, root: Path, count: bool = True) -> None:
        self.files += count
        now = time.monotonic()
        if self.on_progress is not None and now - self.reported >= PROGRESS_EVERY_S:
            self.reported = now
            limit = f"; stops at {self.timeout_s:g} s (discover_timeout_s)" if self.timeout_s else ""
            self.on_progress(
                f"discovering under {printable(root)}: {self.files} files after {now - self.started:.0f} s{limit}"
            )
        if self.max_files is not None and self.files > self.max_files:
            raise DiscoveryLimitError(
                f"discovery under {printable(root)} passed {self.max_files} files (discover_max_files); "
                "is this the folder you meant? Raise the limit for a library this big"
            )
        if self.timeout_s is not None and time.monotonic() - self.started > self.timeout_s:
            raise DiscoveryLimitError(
                f"discovery under {printable(root)} took over {self.timeout_s:g} s (discover_timeout_s) after "
                f"{self.files} files; is this the folder you meant? Raise the limit for a slow or huge share"
            )


def _take(
    path: Path, result: Discovery, seen: set[tuple[int, int]], media_only: bool, hash_cache, real_root: str
) -> None:
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        result.skipped.append(Skipped(printable(path), "file name is not valid UTF-8; rename it to ingest it"))
        return
    try:
        st = path.stat()
    except OSError as exc:
        result.skipped.append(Skipped(printable(path), f"cannot stat: {exc.strerror or exc}"))
        return
    if not stat.S_ISREG(st.st_mode):
        result.skipped.append(Skipped(printable(path), "not a regular file"))
        return
    if st.st_size == 0:  # never opened: procfs-like files report 0 bytes and may block on read
        result.skipped.append(Skipped(printable(path), "empty file"))
        return
    key = (st.st_dev, st.st_ino)
    if key in seen:
        result.skipped.append(Skipped(printable(path), "same file already found through another path"))
        return
    seen.add(key)
    try:
        found = describe_file(path, hash_cache)
    except OSError as exc:
        result.skipped.append(Skipped(printable(path), f"cannot read: {exc.strerror or exc}"))
        return
    if media_only and found.kind == "other":
        if path.suffix.lower() in SIDECAR_SUFFIXES and found.container == "text":
            result.skipped.append(Skipped(printable(path), SIDECAR))
        else:
            why = "empty file" if found.container == "empty" else f"not audio or video (content: {found.container})"
            result.skipped.append(Skipped(printable(path), why))
        return
    result.files.append(replace(found, root=real_root))


def _walk(root: Path, include_hidden: bool, skipped: list[Skipped], pseudo: set[str], limits: _Limits) -> list[Path]:
    real_root = Path(os.path.realpath(root))
    visited_dirs: set[str] = set()
    out: list[Path] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        real = os.path.realpath(folder)
        if real in visited_dirs:
            skipped.append(Skipped(printable(folder), "symlink loop or folder already walked"))
            continue
        visited_dirs.add(real)
        if real in pseudo:
            skipped.append(Skipped(printable(folder), "kernel or virtual filesystem (not media)"))
            continue
        limits.check(root, count=False)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            skipped.append(Skipped(printable(folder), f"cannot list folder: {exc.strerror or exc}"))
            continue
        subdirs = []
        for entry in entries:
            path = Path(entry.path)
            if not include_hidden and (why := _is_hidden_or_partial(entry.name)):
                skipped.append(Skipped(printable(path), why))
                continue
            if entry.is_symlink():
                try:
                    os.stat(path)
                except OSError as exc:
                    why = "symlink loop" if exc.errno == errno.ELOOP else "broken symlink"
                    skipped.append(Skipped(printable(path), why))
                    continue
                target = Path(os.path.realpath(path))
                if not _inside(target, real_root):
                    skipped.append(Skipped(printable(path), "symlink leaves the root"))
                    continue
            if entry.is_dir():
                subdirs.append(path)
            else:
                out.append(path)
                limits.check(root)
        stack.extend(reversed(subdirs))
    return out
