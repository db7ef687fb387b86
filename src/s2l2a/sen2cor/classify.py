"""Why a Sen2Cor run failed, from its exit status and its log.

The class decides what ``retry --class`` does: a timeout or an out-of-memory kill deserves a retry
with more time or memory, a missing DEM or ESA-CCI package needs the user to install something,
an empty output after exit 0 is Sen2Cor's known silent failure. The patterns cover the messages
Sen2Cor and the Python runtime under it print; the most telling line becomes the one-line message.

:data:`KNOWN` holds the failures whose real text we have (``tests/data/sen2cor/logs``, each tested):
for those the user sees Sen2Cor's own words plus what they mean. A Python traceback is shown as its
exception line and the innermost Sen2Cor function, never as the last frame (often numpy's).
The DEM, ESA-CCI and memory patterns are written from Sen2Cor's code and module names: no real log
of those failures is recorded.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass

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
#: a traceback frame (the 3.1.0 text as posted has no "Traceback" header above its frames)
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line \d+, in (?P<func>\S+)')
#: the exception line that ends a traceback: "ValueError: ...", "MemoryError", "osgeo.gdal.Error: ..."
_EXCEPTION = re.compile(r"^(?P<name>(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Exit|Interrupt))(?::\s*(?P<msg>.*))?$")


@dataclass(frozen=True)
class KnownFailure:
    """A failure whose real Sen2Cor text we have: how to recognise it, its class, what it means."""

    pattern: re.Pattern[str]
    failure: FailureClass
    meaning: str
    source: str               # the real log it was taken from (tests/data/sen2cor/logs)
    where: re.Pattern[str] | None = None   # must also be in the log (e.g. the function that raised)

    def matches(self, log_text: str) -> bool:
        return bool(self.pattern.search(log_text)) and (self.where is None or bool(self.where.search(log_text)))


#: Sen2Cor's real failure texts, most specific first
KNOWN: tuple[KnownFailure, ...] = (
    KnownFailure(re.compile(r"Error in creating L2A User Product"), FailureClass.BAD_INPUT,
                 "Sen2Cor could not build the output tree from this L1C: folders it copies (AUX_DATA, HTML, "
                 "DATASTRIP/*/QI_DATA) are missing, as in Google Cloud copies; recreate them",
                 "2.5.5_critical_error_creating_user_product.txt"),
    KnownFailure(re.compile(r"wrong identifier for xml structure"), FailureClass.BAD_INPUT,
                 "Sen2Cor does not recognise the product's metadata schema (a product assembled from "
                 "single tiles, or a product version this Sen2Cor does not know)",
                 "2.3.1_traceback_wrong_xml_identifier.txt"),
    KnownFailure(re.compile(r"'bool' object has no attribute 'SPACECRAFT_NAME'"), FailureClass.BAD_INPUT,
                 "this Sen2Cor cannot read the datastrip metadata of new-baseline products (3.1.0; "
                 "Sen2Cor 3.3.0 and later read them)",
                 "3.1.0_traceback_attributeerror_spacecraft_name_partial.txt"),
    KnownFailure(re.compile(r"IndexError: boolean index did not match indexed array"), FailureClass.DEM_ERROR,
                 "Sen2Cor's DEM shadow step failed on a DEM not matching the scene (3.3.0, fixed in 3.3.1): "
                 "use a later Sen2Cor or run without DEM",
                 "3.3.0_landsat_dem_shade_indexerror_truncated.txt", where=re.compile(r"gdalDEM_Shade_Cast")),
)

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
    known = _known(log_text)
    if known is not None:
        return known.failure
    if _DEM.search(log_text):
        return FailureClass.DEM_ERROR
    if _AUX.search(log_text):
        return FailureClass.MISSING_AUX
    if _BAD_INPUT.search(log_text):
        return FailureClass.BAD_INPUT
    if returncode == 0 and not _says_failed(log_text):
        return FailureClass.EMPTY_OUTPUT
    return FailureClass.OTHER


def _says_failed(log_text: str) -> bool:
    """Sen2Cor's closing error line or a Python exception: an error, even after exit status 0."""
    return "terminated with at least one error" in log_text or bool(_exception(log_text.splitlines()))


_PATTERN_FOR = {FailureClass.OUT_OF_MEMORY: _OOM, FailureClass.DEM_ERROR: _DEM,
                FailureClass.MISSING_AUX: _AUX, FailureClass.BAD_INPUT: _BAD_INPUT}


def _clean(line: str, limit: int = 200) -> str:
    line = " ".join("".join(c if c.isprintable() else " " for c in line).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _known(log_text: str) -> KnownFailure | None:
    return next((k for k in KNOWN if k.matches(log_text)), None)


def _known_line(lines: list[str], known: KnownFailure) -> str:
    """Sen2Cor's line for a known failure, cleaned of its log prefix and source-code quoting."""
    line = next(ln for ln in lines if known.pattern.search(ln))
    m = re.search(r"""\(\s*['"]([^'"]+)['"]""", line)
    if m and known.pattern.search(m.group(1)):  # a source line a traceback shows: logger.fatal('wrong ...')
        line = m.group(1).rstrip(": ")
    line = re.sub(r"^\s*\[[A-Z]+\]\s*", "", line)            # "[CRITICAL]  L2A_Config: 3181   Error ..."
    line = re.sub(r"^(L2A_\w+):\s*\d+\s+", r"\1: ", line)  # Sen2Cor's source line number
    exc = _exception(lines)
    if exc and _EXCEPTION.match(line.strip()):
        line = exc                                  # the exception line itself: add where it was raised
    elif exc:
        line = f"{line}; {exc}"
    return f"{line} — {known.meaning}"


def _module(path: str) -> str:
    return re.split(r"[\\/]", path)[-1]


def _exception(lines: list[str]) -> str:
    """The last traceback's exception line with the innermost Sen2Cor function, or ""."""
    last_frame = None
    for i, ln in enumerate(lines):
        if _FRAME.match(ln):
            last_frame = i
    if last_frame is None:
        return ""
    frames = [m for ln in lines[: last_frame + 1] if (m := _FRAME.match(ln))]
    own = [m for m in frames if _module(m.group("file")).startswith("L2A_")]  # Sen2Cor's modules
    where = own[-1] if own else frames[-1]
    for ln in lines[last_frame + 1:]:
        if _EXCEPTION.match(ln.strip()):
            return f"{ln.strip()} (in {_module(where.group('file'))} {where.group('func')})"
    return ""


def telling_line(log_text: str, failure: FailureClass | None = None) -> str:
    """The log line that best says what went wrong (one line, at most 200 characters).

    A known Sen2Cor failure: its own line and what it means. Else the first line matching the
    failure's own pattern, the exception line of a Python traceback (with the innermost Sen2Cor
    function), the last error-like line that is not Sen2Cor's generic closing line, or the last
    non-empty line.
    """
    lines = [ln for ln in log_text.splitlines() if ln.strip() and not ln.startswith("---- ")]
    known = _known(log_text)
    if known is not None and (failure is None or failure == known.failure):
        return _clean(_known_line(lines, known), 400)
    pattern = _PATTERN_FOR.get(failure) if failure is not None else None
    if pattern is not None:
        for ln in lines:
            if pattern.search(ln):
                return _clean(ln)
    exc = _exception(lines)
    if exc:
        return _clean(exc)
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
