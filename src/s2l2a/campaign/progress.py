"""The human-readable progress log, ``<campaign>/progress.log``: one line per state change.

It exists so people can ``tail -f`` a campaign without tools; the store writes it right after
each committed state change, so its lines and the database always agree. Format (two spaces
between fields; the detail may contain spaces)::

    2026-11-25T14:40:01Z  S2A_MSIL1C_..._T56JMM_...  56JMM  running  attempt 1

A run also writes a summary line on a clock (state ``progress``, product and tile ``-``; see
:class:`ProgressTicker`); readers that rebuild job states skip it::

    2026-11-25T14:41:00Z  -  -  progress  12 done, 1 failed, 2 running, 25 queued of 40 after 1h 02m; ...
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from s2l2a.clock import utcnow

SEP = "  "


@dataclass(frozen=True)
class ProgressEvent:
    """One state change as it appears in the log."""

    time: str        # ISO UTC, "2026-11-25T14:40:01Z"
    product: str     # product name without .SAFE
    tile: str
    state: str
    detail: str = ""

    def line(self) -> str:
        """The event as one log line (control characters escaped so it stays one line)."""
        fields = [self.time, self.product, self.tile or "-", self.state]
        if self.detail:
            fields.append(self.detail)
        return one_line(SEP.join(fields))


def one_line(text: str) -> str:
    """Escape newlines/control characters so a message or a strange path never breaks a line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def parse_line(line: str) -> ProgressEvent:
    """Inverse of :meth:`ProgressEvent.line` (for tests and tools)."""
    parts = line.rstrip("\n").split(SEP, 4)
    if len(parts) < 4:
        raise ValueError(f"not a progress line: {line!r}")
    time, product, tile, state = parts[:4]
    return ProgressEvent(time, product, tile, state, parts[4] if len(parts) > 4 else "")


class ProgressLog:
    """Appends events to the log; one ``write`` + one ``fdatasync`` per batch of events."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def write(self, events: Iterable[ProgressEvent]) -> None:
        """Append the events; a single O_APPEND write keeps concurrent writers' lines whole."""
        data = "".join(e.line() + "\n" for e in events).encode()
        if not data:
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fdatasync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[ProgressEvent]:
        """All events in the log (empty when there is none yet)."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        return [parse_line(ln) for ln in text.splitlines() if ln.strip()]


def tail_lines(path: Path | str | None, n: int = 5) -> list[str]:
    """The last ``n`` lines of a (possibly large) log file; [] when it is missing."""
    if path is None or n <= 0:
        return []
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            block, data = 4096, b""
            while size > 0 and data.count(b"\n") <= n:
                step = min(block, size)
                size -= step
                f.seek(size)
                data = f.read(step) + data
                block *= 2
    except OSError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    return [one_line(ln) for ln in lines[-n:]]


#: the state column of a run's periodic summary line (not a job state: its product and tile are "-")
SUMMARY_STATE = "progress"
#: seconds between summary lines when nobody watches a terminal; ``S2L2A_PROGRESS_INTERVAL_S`` overrides it
PROGRESS_INTERVAL_S = 60.0


def progress_interval_s() -> float:
    """The summary interval: ``$S2L2A_PROGRESS_INTERVAL_S`` when it is a positive number, else 60 s."""
    try:
        value = float(os.environ.get("S2L2A_PROGRESS_INTERVAL_S", ""))
    except ValueError:
        return PROGRESS_INTERVAL_S
    return value if 0 < value < float("inf") else PROGRESS_INTERVAL_S


class ProgressTicker:
    """A background thread that writes ``summary()`` every ``interval_s``: to ``echo`` (stderr of a
    batch job, ``nohup`` or ``| tee``, where no progress bar is drawn) and to progress.log.

    Hours pass between job outcomes in a Sen2Cor campaign, so the line is written on a clock, not
    on events; ``summary`` must only read counters (it runs on the ticker's thread).
    """

    def __init__(self, summary: Callable[[], str], interval_s: float, log: ProgressLog | None = None,
                 echo: Callable[[str], None] | None = None) -> None:
        self.summary, self.interval_s, self.log, self.echo = summary, interval_s, log, echo
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="s2l2a-progress", daemon=True)

    def __enter__(self) -> ProgressTicker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def tick(self) -> None:
        """Write one summary line now (a full disk must not end the run: the line is then lost)."""
        detail = self.summary()
        if self.echo is not None:
            self.echo(f"{utcnow()}  {SUMMARY_STATE}: {detail}")
        if self.log is not None:
            try:
                self.log.write([ProgressEvent(utcnow(), "-", "-", SUMMARY_STATE, detail)])
            except OSError:
                pass

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.tick()
