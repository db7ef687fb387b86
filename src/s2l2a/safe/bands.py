"""Sentinel-2 MSI band names and native resolutions (fixed by the instrument)."""

from __future__ import annotations

BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)

NATIVE_RESOLUTION: dict[str, int] = {
    "B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20,
    "B08": 10, "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20,
}

RESOLUTIONS: tuple[int, ...] = (10, 20, 60)


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
