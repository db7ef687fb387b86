"""The campaign's run lock, ``<campaign>/run.lock``: at most one ``s2l2a run`` per campaign.

An ``flock`` is released by the kernel when its holder dies, however it dies (SIGKILL, power
loss of a local disk), so a stale lock never needs manual removal. Because of that, whoever holds
the lock knows no other run is alive: every job still marked running is stale and can be requeued.
The file's content (pid, host, start time) is only for the message shown to a second run.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from s2l2a.errors import CampaignError

LOCK_FILE = "run.lock"


class CampaignLocked(CampaignError):
    """Another process holds the run lock; ``str()`` is the one line shown to the user."""


class RunLock:
    """Non-blocking exclusive lock on ``<campaign>/run.lock``; use as a context manager."""

    def __init__(self, campaign_dir: Path | str) -> None:
        self.path = Path(campaign_dir) / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        """Take the lock or raise CampaignLocked naming the holder."""
        if self._fd is not None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read_holder(fd)
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise CampaignError(f"cannot lock: {e.strerror}", self.path) from None
            raise CampaignLocked(
                f"another s2l2a run holds {self.path} (pid {holder.get('pid', '?')}, "
                f"host {holder.get('host', '?')}, since {holder.get('since', '?')})") from None
        info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "since": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, info + b"\n", 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (the file stays: deleting it would race with a new locker)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _read_holder(fd: int) -> dict[str, object]:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}
