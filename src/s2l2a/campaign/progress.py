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
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def human_duration(seconds: float | None) -> str:
    """3725 -> "1h 02m"; None -> "-"."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


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


# -- what a run reports while it goes ---------------------------------------------------------------

#: kinds of :class:`RunEvent`, in the order a run emits them
EVENT_KINDS = ("note", "info", "begin", "start", "outcome", "tick", "end")


@dataclass(frozen=True)
class RunEvent:
    """One thing a run reports: how a notebook callback, a progress bar and the command line
    learn what happens. ``kind`` is one of :data:`EVENT_KINDS`:

    - ``note``: a remark for the user (recovery, a check's warning, a job left alone); the CLI
      prints it on stderr;
    - ``info``: a result line (nothing to run, an array submitted, the closing line); stdout;
    - ``begin``: jobs are about to start (``total`` of them);
    - ``start`` / ``outcome``: a job was handed out / ended (``outcome`` is its JobOutcome);
    - ``tick``: the periodic summary line (sent from a background thread);
    - ``end``: the run is over (``message`` is empty; the RunSummary is what ``run`` returns).

    ``done``/``failed``/``running``/``total`` are this run's counters at the time of the event.
    """

    kind: str
    message: str = ""
    job_id: int | None = None
    outcome: Any = None
    done: int = 0
    failed: int = 0
    running: int = 0
    total: int = 0


class LineReporter:
    """Events as plain lines: notes and ticks to ``err``, info lines to ``out`` (stdout/stderr by
    default). What a run shows off a terminal: under nohup, in a batch job, behind ``| tee``."""

    show_ticks = True

    def __init__(self, out: Callable[[str], None] | None = None, err: Callable[[str], None] | None = None) -> None:
        self._out = out
        self._err = err

    def out(self, line: str) -> None:
        if self._out is not None:
            self._out(line)
        else:
            print(line, file=sys.stdout, flush=True)

    def err(self, line: str) -> None:
        if self._err is not None:
            self._err(line)
        else:
            print(line, file=sys.stderr, flush=True)

    def __call__(self, event: RunEvent) -> None:
        if event.kind == "info":
            self.out(event.message)
        elif event.kind == "note" or (event.kind == "tick" and self.show_ticks):
            self.err(event.message)

    def close(self) -> None:
        """Called once when the run ends, also when it fails."""


class TerminalReporter(LineReporter):
    """A rich progress bar on stderr while jobs run (failures printed above it); notes and info
    lines as :class:`LineReporter` prints them. Ticks are not shown (the bar says more)."""

    show_ticks = False

    def __init__(self, out: Callable[[str], None] | None = None, err: Callable[[str], None] | None = None) -> None:
        super().__init__(out, err)
        self._progress: Any = None
        self._task: Any = None

    def __call__(self, event: RunEvent) -> None:
        if event.kind == "begin":
            self._start(event.total)
        elif event.kind == "outcome" and self._progress is not None:
            if not event.outcome.ok:
                from rich.markup import escape

                self._progress.console.print(f"[red]failed[/] ({event.outcome.failure_class}) "
                                             f"{escape(event.outcome.message)}", highlight=False)
            self._progress.update(self._task, completed=event.done + event.failed, done=event.done,
                                  failed=event.failed)
        elif event.kind == "end":
            self.close()
        super().__call__(event)

    def _start(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.close()
        self._progress = Progress(
            TextColumn("[bold]converting"), BarColumn(), MofNCompleteColumn(),
            TextColumn("[green]{task.fields[done]} done[/] [red]{task.fields[failed]} failed[/]"),
            TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True), transient=False)
        self._progress.start()
        self._task = self._progress.add_task("run", total=total, done=0, failed=0)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class CallbackReporter:
    """Every event to ``callback(event)`` (a notebook's own display); nothing is printed."""

    def __init__(self, callback: Callable[[RunEvent], None]) -> None:
        self.callback = callback

    def __call__(self, event: RunEvent) -> None:
        self.callback(event)

    def close(self) -> None:
        """Nothing to stop."""


def reporter_for(progress: Any = None, out: Callable[[str], None] | None = None,
                 err: Callable[[str], None] | None = None) -> Callable[[RunEvent], None]:
    """The reporter ``progress`` asks for: None or "auto" a bar on a terminal (stderr) and lines
    off it; "lines" lines; "quiet" or False nothing; a callable gets every :class:`RunEvent`."""
    if progress is None or progress == "auto":
        return TerminalReporter(out, err) if sys.stderr.isatty() else LineReporter(out, err)
    if progress == "lines":
        return LineReporter(out, err)
    if progress is False or progress == "quiet":
        return CallbackReporter(lambda event: None)
    if isinstance(progress, LineReporter | CallbackReporter):
        return progress
    if callable(progress):
        return CallbackReporter(progress)
    raise ValueError(f"progress: give 'auto', 'lines', 'quiet' or a callable, not {progress!r}")
