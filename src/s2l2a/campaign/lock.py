"""The campaign's run lock: at most one ``s2l2a run`` per campaign.

An ``flock`` is released by the kernel when its holder dies, however it dies (SIGKILL, power
loss of a local disk), so a stale lock never needs manual removal. Because of that, whoever holds
the lock knows no other run is alive: every job still marked running is stale and can be requeued.

Two flocks, both held on open file descriptors for the whole run:

- the **campaign directory itself** (opened read-only). Nobody deletes a campaign directory
  while using it, so this lock cannot be lost by removing a file: a ``run.lock`` deleted during a
  run does not let a second run in (it would otherwise create a fresh file, lock it, and recover
  the first run's live jobs as stale). Where a file system refuses directory locks, this one is
  skipped and the file lock alone applies.
- ``<campaign>/run.lock``, which also carries the holder's pid, host and start time for the
  message a second run shows, and which network file systems lock across hosts. After taking it
  the lock checks, by inode, that the path still names the file it locked (a file deleted or
  replaced between open and lock is retried), so two runs can never hold two different files.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
from pathlib import Path
from types import TracebackType

from s2l2a.campaign.layout import LOCK_FILE
from s2l2a.clock import utcnow
from s2l2a.errors import CampaignError

_BUSY = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
#: directory flocks a file system may refuse (the file lock then stands alone)
_NO_DIR_LOCK = (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF, errno.ENOSYS)


class CampaignLocked(CampaignError):
    """Another process holds the run lock; ``str()`` is the one line shown to the user."""


class RunLock:
    """Non-blocking exclusive lock on a campaign (its directory and ``run.lock``); a context manager."""

    def __init__(self, campaign_dir: Path | str) -> None:
        self.campaign_dir = Path(campaign_dir)
        self.path = self.campaign_dir / LOCK_FILE
        self._fd: int | None = None
        self._dir_fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        """Take the lock or raise CampaignLocked naming the holder (CampaignError, one line, when
        the lock cannot be taken at all, e.g. on a full disk)."""
        if self._fd is not None:
            return self
        dir_fd = self._lock_dir()
        try:
            fd = self._lock_file()
        except BaseException:
            _close(dir_fd, unlock=True)
            raise
        info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "since": utcnow()}).encode()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, info + b"\n", 0)
        except OSError as e:
            _close(fd, unlock=True)
            _close(dir_fd, unlock=True)
            raise CampaignError(f"cannot write the run lock: {_why(e)}", self.path) from None
        self._fd, self._dir_fd = fd, dir_fd
        return self

    def _lock_dir(self) -> int | None:
        """flock the campaign directory; None where the file system does not lock directories."""
        try:
            dir_fd = os.open(self.campaign_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise CampaignError(f"cannot open the campaign directory: {_why(e)}", self.campaign_dir) from None
        try:
            fcntl.flock(dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in _BUSY:
                holder = _read_holder_path(self.path)
                os.close(dir_fd)
                raise self._locked(holder, gone=not self.path.exists()) from None
            os.close(dir_fd)
            if e.errno in _NO_DIR_LOCK:
                return None
            raise CampaignError(f"cannot lock: {_why(e)}", self.campaign_dir) from None
        return dir_fd

    def _lock_file(self) -> int:
        """flock ``run.lock``, retrying while the path names another inode than the one locked."""
        for _ in range(20):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as e:
                raise CampaignError(f"cannot create the run lock: {_why(e)}", self.path) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = _read_holder(fd)
                os.close(fd)
                if e.errno not in _BUSY:
                    raise CampaignError(f"cannot lock: {_why(e)}", self.path) from None
                raise self._locked(holder) from None
            try:
                here = os.stat(self.path)
            except FileNotFoundError:
                here = None
            mine = os.fstat(fd)
            if here is not None and (here.st_ino, here.st_dev) == (mine.st_ino, mine.st_dev):
                return fd
            _close(fd, unlock=True)  # deleted or replaced between open and flock: lock what is there now
        raise CampaignError("run.lock keeps being replaced by another process; try again", self.path)

    def _locked(self, holder: dict[str, object], gone: bool = False) -> CampaignLocked:
        if gone:
            pid = _flock_holder(self.campaign_dir)
            return CampaignLocked(
                f"another s2l2a run holds {self.campaign_dir} (pid {pid or '?'}; its {LOCK_FILE} was removed "
                "while it runs); wait for it to end")
        return CampaignLocked(
            f"another s2l2a run holds {self.path} (pid {holder.get('pid', '?')}, "
            f"host {holder.get('host', '?')}, since {holder.get('since', '?')})")

    def release(self) -> None:
        """Drop the lock (the file stays: deleting it would race with a new locker)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        dir_fd, self._dir_fd = self._dir_fd, None
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        _close(fd, unlock=True)
        _close(dir_fd, unlock=True)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _why(e: OSError) -> str:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{e.strerror} (the disk holding the campaign is full; free space and try again)"
    return e.strerror or str(e)


def _close(fd: int | None, unlock: bool = False) -> None:
    if fd is None:
        return
    try:
        if unlock:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_holder(fd: int) -> dict[str, object]:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _read_holder_path(path: Path) -> dict[str, object]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        return _read_holder(fd)
    finally:
        os.close(fd)


def _flock_holder(path: Path) -> int | None:
    """The pid holding an flock on ``path`` from ``/proc/locks`` (Linux; None elsewhere)."""
    try:
        st = os.stat(path)
        key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            for line in f:
                parts = line.split()
                if "FLOCK" in parts and key in parts and "->" not in parts:
                    return int(parts[parts.index(key) - 1])
    except (OSError, ValueError, IndexError):
        return None
    return None
