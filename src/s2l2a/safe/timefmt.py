"""Timestamps as Sentinel-2 metadata writes them."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_time(value: str | None) -> datetime | None:
    """ISO timestamp of the metadata (``...Z``, 0-6 fraction digits) as an aware UTC datetime."""
    if not value:
        return None
    v = value.strip()
    if v.endswith("Z"):
        v = v[:-1]
    if "." in v:
        head, frac = v.split(".", 1)
        v = f"{head}.{(frac + '000000')[:6]}"
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
