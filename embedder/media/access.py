"""Open a stored file only while it is still the file embedder recorded: the guard in front of
everything ``serve`` reads from disk on a client's behalf (media, thumbnails, uploads).

A path in the store is a name, and names can be re-pointed: a media file swapped for a symlink to
``/etc/passwd``, a hard link to a secret, a parent folder replaced by a link. So a file is served
only when all of these hold, checked on the open descriptor (never by name, so a swap between the
check and the read changes nothing):

- the path still resolves to the real path recorded at ingest, inside the root it was ingested
  from, and every component of that real path is opened without following a link;
- it is a regular file;
- its device, inode, size, modification and status-change times are the recorded ones, or, when
  they differ (a copy restored from a backup, a ``touch``), its content hashes to the item's
  SHA-256 again. The status-change time (ctime) cannot be set back from user space, so content
  rewritten in place with its mtime restored is caught too.

Items stored before identities were recorded have no device and inode: they are served only
after the re-hash. A verified file is remembered for the process (keyed by its full stat), so
range requests on a large file hash it once.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from dataclasses import dataclass
from typing import BinaryIO

HASH_CHUNK = 1 << 20
# Opening a FIFO or device for reading can block forever; O_NONBLOCK makes that open return at
# once, and the S_ISREG check then refuses it.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class NotServable(Exception):
    """The stored path no longer leads to the recorded file; ``str()`` is the one-line reason."""


@dataclass(frozen=True)
class FileIdentity:
    """What a file was when it was ingested. ``dev``/``ino`` are 0 for items stored before
    identities were recorded; ``real`` and ``root`` are then empty."""

    size: int
    mtime_ns: int
    dev: int = 0
    ino: int = 0
    real: str = ""  # the path with every link resolved, at ingest
    root: str = ""  # the real path of the folder (or file) named to ingest
    ctime_ns: int = 0

    @classmethod
    def from_dict(cls, raw: dict) -> FileIdentity:
        return cls(
            size=int(raw.get("size", -1)),
            mtime_ns=int(raw.get("mtime_ns", -1)),
            dev=int(raw.get("dev", 0)),
            ino=int(raw.get("ino", 0)),
            real=str(raw.get("real", "")),
            root=str(raw.get("root", "")),
            ctime_ns=int(raw.get("ctime_ns", 0)),
        )

    def to_dict(self) -> dict:
        return {
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "dev": self.dev,
            "ino": self.ino,
            "real": self.real,
            "root": self.root,
            "ctime_ns": self.ctime_ns,
        }


def is_inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or below it (both absolute, normalised)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def open_without_links(real: str) -> int:
    """Open the absolute path ``real`` for reading, refusing a symbolic link at any component.

    Each folder is opened relative to the one before with ``O_NOFOLLOW``, so a link swapped into
    any level of the path fails the open instead of being followed.

    Raises:
        OSError: a component is a link (``ELOOP``/``ENOTDIR``), missing, or unreadable.
    """
    if not os.path.isabs(real):
        raise OSError(f"not an absolute path: {real}")
    parts = [p for p in real.split(os.sep) if p]
    if not parts:
        raise IsADirectoryError(real)
    fd = os.open(os.sep, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = inner
        return os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)


_verified: dict[tuple, str] = {}  # full stat of a file hashed here -> its sha256
_verified_lock = threading.Lock()
_VERIFIED_MAX = 4096


def _stat_key(st: os.stat_result) -> tuple:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _content_sha256(fh: BinaryIO, st: os.stat_result) -> str:
    key = _stat_key(st)
    with _verified_lock:
        if key in _verified:
            return _verified[key]
    digest = hashlib.sha256()
    fh.seek(0)
    while chunk := fh.read(HASH_CHUNK):
        digest.update(chunk)
    fh.seek(0)
    with _verified_lock:
        if len(_verified) >= _VERIFIED_MAX:
            _verified.clear()
        _verified[key] = digest.hexdigest()
    return _verified[key]


def _open_regular(real: str, shown: str) -> tuple[BinaryIO, os.stat_result]:
    """Open ``real`` without following a link at any component, as a regular file (blocking
    again once it is known not to be a FIFO or device); ``shown`` names it in the reason."""
    try:
        fd = open_without_links(real)
    except OSError as exc:
        raise NotServable(f"{shown}: cannot open without following a link: {exc.strerror or exc}") from None
    fh = os.fdopen(fd, "rb")
    st = os.fstat(fh.fileno())
    if not stat.S_ISREG(st.st_mode):
        fh.close()
        raise NotServable(f"{shown} is not a regular file")
    os.set_blocking(fh.fileno(), True)
    return fh, st


def open_recorded(path: str, identity: FileIdentity, sha256: str) -> tuple[BinaryIO, os.stat_result]:
    """Open ``path`` for reading if it is still the file recorded as ``identity`` (content
    ``sha256``); the caller reads the returned file object and closes it.

    Raises:
        NotServable: with the reason (a swapped link, another file, changed content, gone).
    """
    real = os.path.realpath(path)
    if identity.real and real != identity.real:
        raise NotServable(f"{path} now leads to {real}, not to the file ingested ({identity.real})")
    if identity.root and not is_inside(real, identity.root):
        raise NotServable(f"{path} leads outside the folder it was ingested from ({identity.root})")
    fh, st = _open_regular(real, path)
    try:
        if st.st_size != identity.size:
            raise NotServable(f"{path} has {st.st_size} bytes, not the {identity.size} ingested")
        recorded = (identity.dev, identity.ino, identity.mtime_ns, identity.ctime_ns)
        unchanged = identity.ino and (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns) == recorded
        if not unchanged and _content_sha256(fh, st) != sha256:
            raise NotServable(f"{path} is not the file that was ingested (other inode or content)")
        return fh, st
    except BaseException:
        fh.close()
        raise


def open_inside(path: str, folder: str) -> tuple[BinaryIO, os.stat_result]:
    """Open a file that embedder wrote itself (a thumbnail), only if it is a regular file at its
    place inside ``folder``: the folder may be reached through a link (a store on a mounted disk),
    the file and anything between the folder and it may not.

    Raises:
        NotServable: with the reason.
    """
    inside = os.path.relpath(os.path.abspath(path), os.path.abspath(folder))
    if inside.startswith(os.pardir):
        raise NotServable(f"{path} is not inside {folder}")
    expected = os.path.join(os.path.realpath(folder), inside)
    if os.path.realpath(path) != expected:
        raise NotServable(f"{path} is a link (or below one) inside {folder}")
    return _open_regular(expected, path)
