"""Search all chosen sources, resolve duplicates, and fetch into a folder: what the CLI commands call.

Order of a fetch: decide what is already complete (skipped), total what is left, refuse before the
first byte when it cannot fit (L1C + L2A estimate + archive scratch), then download N products at
a time. One product failing does not stop the others; the report says which failed and why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from s2l2a.acquire.download import Http
from s2l2a.acquire.query import Candidate, Query, resolve_duplicates
from s2l2a.acquire.settings import AcquireSettings
from s2l2a.acquire.staging import is_complete, stage_root
from s2l2a.diskspace import check_space
from s2l2a.errors import S2L2AError

log = logging.getLogger(__name__)
#: where ``search``/``fetch`` look when no ``--source`` is given
DEFAULT_SOURCES = ("gcs",)


class Source(Protocol):
    """What a source plug-in provides (s2l2a.registry, entry point group ``s2l2a.sources``)."""

    name: str
    summary: str            # one line for ``--source``'s help
    archives: bool          # downloads are archives unpacked into the destination (scratch space)

    def search(self, query: Query) -> list[Candidate]: ...

    def download(self, cand: Candidate, dest_dir: Path, stage_root: Path) -> Path: ...


def make_sources(names: list[str], http: Http) -> dict[str, Source]:
    """Source clients by name, in the user's order of preference (DEFAULT_SOURCES when none)."""
    from s2l2a.errors import ConfigError
    from s2l2a.registry import get_source

    out: dict[str, Source] = {}
    for n in names or DEFAULT_SOURCES:
        try:
            out[n] = get_source(n)(http)
        except ConfigError as e:
            raise S2L2AError(str(e)) from None
    return out


@dataclass
class SearchResult:
    products: list[Candidate]
    duplicates: list[tuple[Candidate, Candidate]] = field(default_factory=list)  # (dropped, kept)

    @property
    def total_bytes(self) -> int:
        return sum(c.size or 0 for c in self.products)


def search(query: Query, sources: dict[str, Source]) -> SearchResult:
    """Every source's candidates, merged with the campaign's duplicate rule (first source wins ties)."""
    query.validate()
    found: list[Candidate] = []
    for src in sources.values():
        found.extend(src.search(query))
    kept, dropped = resolve_duplicates(found)
    return SearchResult(kept, dropped)


@dataclass
class FetchReport:
    done: list[tuple[Candidate, Path]] = field(default_factory=list)
    skipped: list[Candidate] = field(default_factory=list)
    failed: list[tuple[Candidate, str]] = field(default_factory=list)
    bytes_needed: int = 0


def fetch(products: list[Candidate], dest: Path, sources: dict[str, Source], settings: AcquireSettings, *,
          dry_run: bool = False, free: Callable[[Path], int] | None = None,
          on_event: Callable[[str, Candidate, str], None] | None = None) -> FetchReport:
    """Download what is not complete yet into ``dest`` (``<dest>/<name>.SAFE``); see the module doc."""
    report = FetchReport()
    todo = []
    for c in products:
        if is_complete(dest, c.name):
            report.skipped.append(c)
        else:
            todo.append(c)
    volume = sum(c.size or 0 for c in todo)
    largest_archives = sorted((c.size or 0 for c in todo if getattr(sources.get(c.source), "archives", False)),
                              reverse=True)
    scratch = sum(largest_archives[: settings.parallel])  # archive and its extraction coexist briefly
    report.bytes_needed = check_space(dest, volume, l2a_factor=settings.l2a_factor, scratch_bytes=scratch,
                                      free=free)
    if dry_run or not todo:
        return report
    dest.mkdir(parents=True, exist_ok=True)
    stage = stage_root(dest)
    stage.mkdir(exist_ok=True)

    def one(c: Candidate) -> None:
        t0 = time.monotonic()
        if on_event:
            on_event("start", c, "")
        try:
            path = sources[c.source].download(c, dest, stage)
        except S2L2AError as exc:
            report.failed.append((c, str(exc)))
            if on_event:
                on_event("failed", c, str(exc))
            return
        except OSError as exc:
            msg = f"{exc.filename or c.name}: {exc.strerror or exc}"
            report.failed.append((c, msg))
            if on_event:
                on_event("failed", c, msg)
            return
        report.done.append((c, path))
        if on_event:
            on_event("done", c, f"{time.monotonic() - t0:.1f} s")

    with ThreadPoolExecutor(max_workers=settings.parallel) as pool:
        list(pool.map(one, todo))
    return report
