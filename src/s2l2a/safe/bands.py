"""Sentinel-2 MSI band names and native resolutions (fixed by the instrument), and band-file checks.

A band image that is empty, text (an error page saved as .jp2), cut short by a failed copy, or not
decodable is bad input: :func:`check_band_files` says so per file from its size and JPEG 2000 box
structure (no decoding, microseconds), and :func:`band_file_error` turns a decoder's failure into
the same one-line :class:`BandFileError` naming the file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from s2l2a.safe.errors import BandFileError

BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)

NATIVE_RESOLUTION: dict[str, int] = {
    "B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20,
    "B08": 10, "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20,
}

RESOLUTIONS: tuple[int, ...] = (10, 20, 60)

#: band -> (common name, centre wavelength in micrometres, full width at half maximum), Sentinel-2A
#: MSI; the names and wavelengths STAC's eo extension and the L2A rasters' descriptions show
BAND_INFO: dict[str, tuple[str, float, float]] = {
    "B01": ("coastal", 0.443, 0.027), "B02": ("blue", 0.490, 0.098), "B03": ("green", 0.560, 0.045),
    "B04": ("red", 0.665, 0.038), "B05": ("rededge1", 0.704, 0.019), "B06": ("rededge2", 0.740, 0.018),
    "B07": ("rededge3", 0.783, 0.028), "B08": ("nir", 0.842, 0.145), "B8A": ("nir08", 0.865, 0.033),
    "B09": ("nir09", 0.945, 0.026), "B10": ("cirrus", 1.375, 0.075), "B11": ("swir16", 1.610, 0.143),
    "B12": ("swir22", 2.190, 0.242),
}

#: the spectral bands of an L2A granule per resolution folder, as Sen2Cor writes them (B08 only at
#: 10 m, B10 never, B09 only at 60 m; a coarser folder holds every band of a finer one but B08)
L2A_BANDS: dict[int, tuple[str, ...]] = {
    10: ("B02", "B03", "B04", "B08"),
    20: ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12"),
    60: ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B09", "B11", "B12"),
}


def band_from_index(index: int | str) -> str:
    """Band name for a metadata ``bandId``/``band_id`` index (0..12 in ``BANDS`` order)."""
    i = int(index)
    if not 0 <= i < len(BANDS):
        raise ValueError(f"band index {index!r} out of range 0..12")
    return BANDS[i]


def normalize_band(name: str) -> str:
    """``"B1"``/``"b01"``/``"B8a"`` → ``"B01"``/``"B8A"``: metadata spells physicalBand without zero padding."""
    n = name.strip().upper()
    if not n.startswith("B"):
        raise ValueError(f"not a band name: {name!r}")
    rest = n[1:]
    if rest == "8A":
        return "B8A"
    if rest.isdigit() and f"B{int(rest):02d}" in NATIVE_RESOLUTION:
        return f"B{int(rest):02d}"
    raise ValueError(f"not a Sentinel-2 band: {name!r}")


# -- band files -----------------------------------------------------------------------------------

_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_J2K_START = b"\xff\x4f\xff\x51"    # SOC + SIZ markers: a raw code stream
_EOC = b"\xff\xd9"                    # the end-of-codestream marker every encoder writes


def _boxes_problem(f: BinaryIO, size: int) -> str | None:
    """Walk the JPEG 2000 boxes: each must fit in the file, and one must hold the code stream."""
    off, has_codestream = 0, False
    while off < size:
        f.seek(off)
        head = f.read(16)
        if len(head) < 8:
            return f"is truncated ({size} bytes, cut inside a JPEG 2000 box header)"
        length, kind = int.from_bytes(head[:4], "big"), head[4:8]
        header = 8
        if length == 1:
            if len(head) < 16:
                return f"is truncated ({size} bytes, cut inside a JPEG 2000 box header)"
            length, header = int.from_bytes(head[8:16], "big"), 16
        elif length == 0:
            length = size - off
        if length < header:
            return f"is damaged (a JPEG 2000 box at byte {off} has an impossible length)"
        if off + length > size:
            return f"is truncated ({size} bytes, its JPEG 2000 boxes need {off + length})"
        has_codestream = has_codestream or kind == b"jp2c"
        off += length
    return None if has_codestream else f"is truncated or damaged ({size} bytes, no JPEG 2000 code stream)"


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\r\n\t" for c in text)


def band_file_problem(path: Path | str) -> str | None:
    """What is visibly wrong with a band image (a phrase like "is empty (0 bytes)"), or None.

    Only what is certain from the file's size and structure: a file that passes may still fail to
    decode (see :func:`band_file_error`).
    """
    p = Path(path)
    try:
        st = p.stat()
        if not stat.S_ISREG(st.st_mode):
            return "is not a regular file"
        if st.st_size == 0:
            return "is empty (0 bytes)"
        with p.open("rb") as f:
            head = f.read(512)
            if head.startswith(_JP2_SIGNATURE):
                return _boxes_problem(f, st.st_size)
            if head.startswith(_J2K_START):
                return None
    except FileNotFoundError:
        return "is missing"
    except OSError as e:
        return f"cannot be read ({e.strerror or type(e).__name__})"
    if _looks_like_text(head):
        return f"holds text, not a JPEG 2000 image ({st.st_size} bytes)"
    return f"is not a JPEG 2000 image ({st.st_size} bytes, unknown signature)"


def check_band_files(files: Mapping[str, Path | str]) -> None:
    """Raise BandFileError for the first band file (``{band: path}``) that is visibly unusable."""
    for band, path in files.items():
        problem = band_file_problem(path)
        if problem is not None:
            raise BandFileError(f"band {band} {problem}", path)


def band_file_error(path: Path | str, band: str, cause: BaseException) -> BandFileError:
    """The bad-input error for a band the decoder could not read: the visible problem, else the decoder's words.

    GDAL's own text often says only "Read failed. See previous exception for details."; the
    chained error holds the reason, and the path is dropped from it (the error names the file).
    """
    problem = band_file_problem(path)
    if problem is None:
        reasons = []
        e: BaseException | None = cause
        while e is not None and len(reasons) < 4:
            text = str(e.args[-1] if getattr(e, "args", None) else e)
            if text and "See previous exception" not in text:
                reasons.append(text.replace(str(path), "").replace(os.path.basename(str(path)), "").strip(" ,:'"))
            e = e.__cause__ or e.__context__
        why = reasons[-1] if reasons else type(cause).__name__
        problem = f"cannot be decoded ({why[:160]})"
        try:
            with open(path, "rb") as f:
                f.seek(-2, os.SEEK_END)
                if f.read(2) != _EOC:
                    problem += "; its code stream lacks the end marker (truncated?)"
        except OSError:
            pass
    return BandFileError(f"band {band} {problem}", path)
