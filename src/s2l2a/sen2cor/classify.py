"""Why a Sen2Cor run failed, from its exit status and its log.

The class decides what ``retry --class`` does: a timeout or an out-of-memory kill deserves a retry
with more time or memory, a missing DEM or ESA-CCI package needs the user to install something,
an empty output after exit 0 is Sen2Cor's known silent failure. The patterns cover the messages
Sen2Cor and the Python runtime under it print; the most telling line becomes the one-line message.
"""

from __future__ import annotations

import re
import signal

from s2l2a.campaign.failures import FailureClass

SUCCESS_LINE = "Application terminated successfully"

_OOM = re.compile(r"MemoryError|Cannot allocate memory|std::bad_alloc|[Oo]ut of memory|oom[-_ ]kill|"
                  r"OOM[ -]?[Kk]ill|memory limit|exceeded memory|MemoryLimit", re.I)
_DEM = re.compile(r"L2A_DEM\b.*(error|fail|cannot|not found|missing)|"
                  r"\bDEM\b.*(error|fail|cannot|could not|not found|missing|unreadable)|"
                  r"(error|fail|cannot|could not).*\b(DEM|srtm|SRTM|CopernicusDEM|elevation)\b|"
                  r"DIGITAL_ELEVATION_MAP.*(error|fail)", re.I)
_AUX_NAME = r"(ESA[ _-]?CCI|ESACCI-LC|LCCS-Map|WB-Map|Snow-Cond|aux[ _]data|auxiliary data)"
_AUX_TROUBLE = r"(not found|missing|cannot|could not|no such file|does not exist|error|fail)"
_AUX = re.compile(rf"{_AUX_NAME}.*{_AUX_TROUBLE}|{_AUX_TROUBLE}.*{_AUX_NAME}", re.I)
_BAD_INPUT = re.compile(r"Product metadata file cannot be read|not a valid Level-1C|"
                        r"Product version .* not supported|cannot parse .*MTD_MSIL1C|"
                        r"No such file or directory:.*(MTD_MSIL1C|MTD_TL|GRANULE)", re.I)
_ERRORISH = re.compile(r"\b(error|exception|traceback|fail(ed|ure)?|cannot|could not|killed|"
                       r"not found|missing)\b", re.I)
_GENERIC_END = re.compile(r"terminated with at least one error|Traceback \(most recent call last\)", re.I)

#: shell-style statuses of a process killed by SIGKILL / SIGTERM (a wrapper script's exit)
_SIGNAL_STATUSES = {128 + signal.SIGKILL, 128 + signal.SIGTERM}


def succeeded(log_text: str) -> bool:
    """Sen2Cor's last progress line says the run finished without error."""
    return SUCCESS_LINE in log_text


def classify_failure(returncode: int | None, log_text: str, *, timed_out: bool = False) -> FailureClass:
    """The FailureClass of a run that did not produce a verified product.

    Memory beats "killed": a SIGKILL after a MemoryError or an OOM-killer note is memory.
    Exit 0 without a known error text means the output was missing or incomplete.
    """
    if timed_out:
        return FailureClass.TIMEOUT
    if _OOM.search(log_text):
        return FailureClass.OUT_OF_MEMORY
    if returncode is not None and (returncode < 0 or returncode in _SIGNAL_STATUSES):
        return FailureClass.KILLED
    if _DEM.search(log_text):
        return FailureClass.DEM_ERROR
    if _AUX.search(log_text):
        return FailureClass.MISSING_AUX
    if _BAD_INPUT.search(log_text):
        return FailureClass.BAD_INPUT
    if returncode == 0:
        return FailureClass.EMPTY_OUTPUT
    return FailureClass.OTHER


_PATTERN_FOR = {FailureClass.OUT_OF_MEMORY: _OOM, FailureClass.DEM_ERROR: _DEM,
                FailureClass.MISSING_AUX: _AUX, FailureClass.BAD_INPUT: _BAD_INPUT}


def _clean(line: str, limit: int = 200) -> str:
    line = " ".join("".join(c if c.isprintable() else " " for c in line).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def telling_line(log_text: str, failure: FailureClass | None = None) -> str:
    """The log line that best says what went wrong (one line, at most 200 characters).

    The first line matching the failure's own pattern, else the last error-like line that is not
    Sen2Cor's generic closing line, else the last non-empty line.
    """
    lines = [ln for ln in log_text.splitlines() if ln.strip() and not ln.startswith("---- ")]
    pattern = _PATTERN_FOR.get(failure) if failure is not None else None
    if pattern is not None:
        for ln in lines:
            if pattern.search(ln):
                return _clean(ln)
    for ln in reversed(lines):
        if _ERRORISH.search(ln) and not _GENERIC_END.search(ln):
            return _clean(ln)
    return _clean(lines[-1]) if lines else ""


def last_progress(log_text: str) -> str:
    """Sen2Cor's last ``Progress[%]`` line: where a hung or killed run stood."""
    for ln in reversed(log_text.splitlines()):
        if "Progress[%]" in ln:
            return _clean(ln)
    return ""


def describe_exit(returncode: int | None, timed_out: bool, duration_s: float, timeout_s: float | None) -> str:
    """Short words for how the process ended ("exit 1", "killed by SIGKILL", "timed out after 3600 s")."""
    if timed_out:
        return f"timed out after {duration_s:.0f} s (limit {timeout_s:g} s), process group killed"
    if returncode is None:
        return "no exit status"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exit {returncode}"
