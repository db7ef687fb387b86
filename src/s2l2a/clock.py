"""Time as s2l2a records it: UTC, to the second.

One spelling for every record (the store, the progress log, job results and logs, manifests,
install and LUT records): ISO 8601 with ``Z``, which sorts as text and reads the same on every
node of a cluster whatever its time zone. A compact stamp for names of runs and folders.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso(t: datetime) -> str:
    """A datetime as ISO UTC with ``Z``, e.g. "2024-06-01T10:20:31Z" (naive datetimes are UTC)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utcnow() -> str:
    """Now, as :func:`iso` writes it."""
    return iso(datetime.now(UTC))


def stamp(t: datetime | None = None) -> str:
    """A UTC time for file and run names, e.g. "20240601T102031" (now when ``t`` is None)."""
    t = datetime.now(UTC) if t is None else (t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC))
    return t.strftime("%Y%m%dT%H%M%S")
