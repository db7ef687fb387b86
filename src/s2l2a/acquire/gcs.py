"""Google Cloud's public Sentinel-2 bucket (anonymous), through the storage JSON API.

Why list the bucket instead of reading ``index.csv.gz``: the index stopped updating on 2024-08-28.
A tile folder ``tiles/<zone>/<band>/<square>/`` lists its products as prefixes; a product's object
listing gives sizes and MD5/CRC32C of every file. ``MTD_MSIL1C.xml`` is read only when a cloud or
baseline filter needs it, and kept in the cache (products never change once published).
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from s2l2a.acquire.download import Checksum, Http, TransferError
from s2l2a.acquire.query import Candidate, Query, is_l1c, metadata_match, name_match, needs_metadata
from s2l2a.acquire.staging import finish, held, hold_all, stage_dir
from s2l2a.acquire.tiles import gcs_tile_prefix
from s2l2a.errors import ProductError, S2L2AError
from s2l2a.fsutil import write_bytes_atomic

log = logging.getLogger(__name__)
SOURCE = "gcs"
_FOLDER_MARK = "_$folder$"


@dataclass(frozen=True)
class BucketObject:
    """One object of a product: path relative to the product folder, size, published checksum."""

    name: str
    relative: str
    size: int
    checksum: Checksum | None

    @classmethod
    def from_item(cls, item: dict[str, Any], product_prefix: str) -> BucketObject:
        name = item["name"]
        if item.get("md5Hash"):
            ck: Checksum | None = Checksum.from_base64("md5", item["md5Hash"])
        elif item.get("crc32c"):
            ck = Checksum.from_base64("crc32c", item["crc32c"])
        else:
            ck = None
        return cls(name=name, relative=name[len(product_prefix):], size=int(item.get("size", 0)), checksum=ck)


def safe_relative(rel: str) -> PurePosixPath:
    """A relative object path that stays inside the product folder; refuse anything else."""
    p = PurePosixPath(rel)
    if not rel or p.is_absolute() or ".." in p.parts or "\\" in rel or ":" in p.parts[0]:
        raise ProductError(f"refusing object path {rel!r} (outside the product folder)")
    return p


class GcsSource:
    """Search and download of L1C products in the bucket; ``settings.gcs_url`` is the objects URL.

    A source plug-in (s2l2a.registry, kind "sources"): ``name``, ``summary`` (for ``--source``),
    ``archives`` (whether downloads are archives to unpack, which needs scratch space),
    ``search(query)`` and ``download(candidate, dest_dir, stage_root)``.
    """

    name = SOURCE
    summary = "Google's public Sentinel-2 bucket (anonymous)"
    archives = False

    def __init__(self, http: Http) -> None:
        self.http = http
        self.settings = http.settings
        self.base = self.settings.gcs_url.rstrip("/")
        self.cache = Path(self.settings.cache_dir) / "gcs"

    # -- listing ------------------------------------------------------------------------------

    def _list(self, prefix: str, delimiter: str | None) -> tuple[list[dict[str, Any]], list[str]]:
        """All items and sub-prefixes under ``prefix``, following nextPageToken."""
        items: list[dict[str, Any]] = []
        prefixes: list[str] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"prefix": prefix}
            if delimiter:
                params["delimiter"] = delimiter
            if token:
                params["pageToken"] = token
            page = self.http.get_json(self.base, params=params)
            items.extend(page.get("items", []))
            prefixes.extend(page.get("prefixes", []))
            token = page.get("nextPageToken")
            if not token:
                return items, prefixes

    def objects(self, cand: Candidate) -> list[BucketObject]:
        """Every stored object of a product (cached as JSON: a published product is immutable)."""
        cached = self.cache / "listings" / f"{cand.name}.json"
        if cached.exists():
            try:
                items = json.loads(cached.read_text())
            except ValueError:
                items = None
            if isinstance(items, list):
                return [BucketObject.from_item(i, cand.ref) for i in items]
        items, _ = self._list(cand.ref, None)
        items = [i for i in items if not i["name"].endswith(_FOLDER_MARK) and not i["name"].endswith("/")]
        if not items:
            raise TransferError("product folder is empty in the bucket", cand.ref)
        write_bytes_atomic(cached, json.dumps(items).encode(), mkdir=True)
        return [BucketObject.from_item(i, cand.ref) for i in items]

    def metadata_file(self, cand: Candidate, objs: list[BucketObject]) -> Path:
        """The product's metadata XML, downloaded once into the cache."""
        from s2l2a.safe.layout import is_product_metadata_name

        tops = [o for o in objs if "/" not in o.relative and is_product_metadata_name(o.relative)]
        if not tops:
            raise ProductError("no product metadata file in the bucket folder", cand.ref)
        obj = tops[0]
        dest = self.cache / "metadata" / cand.name / obj.relative
        if not dest.exists():
            self.http.download(self.media_url(obj.name), dest, size=obj.size, checksum=obj.checksum)
        return dest

    def media_url(self, object_name: str) -> str:
        return f"{self.base}/{quote(object_name, safe='')}?alt=media"

    # -- search -------------------------------------------------------------------------------

    def search(self, query: Query) -> list[Candidate]:
        """Candidates of the query's tiles that pass every filter, with size (and cloud when read)."""
        found: list[Candidate] = []
        for tile in query.tiles:
            prefix = gcs_tile_prefix(tile)
            _, prefixes = self._list(prefix, "/")
            for p in prefixes:
                name = p.rstrip("/").rsplit("/", 1)[-1]
                if name.endswith(_FOLDER_MARK) or not is_l1c(name):
                    continue
                c = Candidate.from_name(name, SOURCE, p if p.endswith("/") else p + "/")
                if c.tile is None:
                    c.tile = tile  # old multi-tile names: the folder says which tile
                if name_match(c, query):
                    found.append(c)
        with ThreadPoolExecutor(max_workers=self.settings.object_parallel) as pool:
            keep = list(pool.map(lambda c: self._complete(c, query), found))
        return [c for c, ok in zip(found, keep, strict=True) if ok]

    def _complete(self, cand: Candidate, query: Query) -> bool:
        """Fill size (and metadata facts when filters need them); False when a filter rejects it."""
        objs = self.objects(cand)
        cand.size = sum(o.size for o in objs)
        cached = self.cache / "metadata" / cand.name
        if needs_metadata(cand, query) or cached.exists():
            try:
                self._read_metadata(cand, self.metadata_file(cand, objs))
            except S2L2AError as exc:
                log.warning("%s: metadata unreadable (%s)", cand.name, exc)
        return metadata_match(cand, query)

    @staticmethod
    def _read_metadata(cand: Candidate, path: Path) -> None:
        from s2l2a.safe.mtd import read_product_metadata

        md = read_product_metadata(path)
        cand.cloud_cover = md.cloud_cover
        cand.baseline = md.baseline or cand.baseline

    # -- download -----------------------------------------------------------------------------

    def download(self, cand: Candidate, dest_dir: Path, stage_root: Path) -> Path:
        """Every object of the product, in parallel and verified, into a staging folder moved into place.

        Files already complete in the staging folder (a previous interrupted run) are kept.
        """
        objs = self.objects(cand)
        stage = stage_dir(stage_root, cand.name)
        adopt_existing(dest_dir / f"{cand.name}.SAFE", stage, objs)
        targets = [(o, stage / safe_relative(held(o.relative))) for o in objs]

        def one(item: tuple[BucketObject, Path]) -> None:
            obj, path = item
            if path.exists() and path.stat().st_size == obj.size:
                return  # renamed from .part only after verification
            self.http.download(self.media_url(obj.name), path, size=obj.size, checksum=obj.checksum)

        with ThreadPoolExecutor(max_workers=self.settings.object_parallel) as pool:
            list(pool.map(one, targets))
        final = finish(stage, dest_dir, cand, {o.relative: o.size for o in objs})
        repair_layout(final)
        return final


def adopt_existing(final: Path, stage: Path, objs: list[BucketObject]) -> None:
    """A folder already at the final place without a completion record (e.g. an interrupted copy by
    another tool) becomes the staging folder: its files are re-verified before they are trusted."""
    if not final.exists() or stage.exists():
        return
    stage.parent.mkdir(parents=True, exist_ok=True)
    os.replace(final, stage)
    hold_all(stage)
    sizes = {held(o.relative): o for o in objs}
    for path in [p for p in stage.rglob("*") if p.is_file()]:
        rel = path.relative_to(stage).as_posix()
        obj = sizes.get(rel)
        if obj is None or path.stat().st_size != obj.size:
            path.unlink()
        elif obj.checksum is not None:
            from s2l2a.acquire.download import file_digest

            if file_digest(path, obj.checksum.algorithm) != obj.checksum.digest:
                path.unlink()


def repair_layout(product: Path) -> list[Path]:
    """Recreate the empty folders the bucket does not store (Sen2Cor fails without them)."""
    from s2l2a.safe import repair_gcs_layout

    try:
        return list(repair_gcs_layout(product))
    except S2L2AError as exc:
        log.warning("%s: layout not repaired (%s)", product.name, exc)
        return []


