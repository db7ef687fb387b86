"""Campaign-wide outputs: every done product derived, the STAC catalogue, the report's data.

The work on one product (deriving an L2A, one STAC item, rendering the page) lives in
:mod:`s2l2a.outputs`, which knows nothing of campaigns; this module walks a campaign (its store,
its folders) and hands each product over, so outputs/ never imports campaign/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from s2l2a.campaign.layout import CampaignLayout
from s2l2a.campaign.store import CampaignStore
from s2l2a.errors import S2L2AError


def derive_campaign(campaign_dir: Path | str, spec: Any, policy: str = "all", *,
                    delete_l1c: bool = False, force: bool = False, threads: int = 1) -> list[Any]:
    """Derive every done product of a campaign into ``<campaign>/derived/<tile>/`` (a list of
    :class:`s2l2a.outputs.keep.ProductDeriveOutcome`); idempotent.

    A product whose derived folder already verifies and holds every output ``spec`` asks for, at its
    resolution, is skipped (unless ``force``); its keep policy is still applied, so re-running with
    ``--keep derived`` frees the space a first run kept. A folder lacking one is derived again
    while the L2A exists.
    """
    from s2l2a.outputs.derive import DeriveError, find_derived, verify_derived
    from s2l2a.outputs.keep import ProductDeriveOutcome, apply_keep, derive_then_keep

    campaign_dir = Path(campaign_dir).resolve()
    root = CampaignLayout.of(campaign_dir).derived
    existing = find_derived(root)
    outcomes: list[ProductDeriveOutcome] = []
    with CampaignStore.open(campaign_dir) as store:
        jobs = store.jobs("done")
    for job in jobs:
        if not job.output_path:
            continue
        l2a = Path(job.output_path)
        name = l2a.name.removesuffix(".SAFE")
        ddir = existing.get(name)
        if ddir is not None and not force:
            try:
                have = verify_derived(ddir)
                if not _holds(have, spec) and l2a.exists():  # (without the L2A, what is there stays)
                    ddir = None
            except DeriveError:
                ddir = None
        if ddir is not None and not force:
            o = ProductDeriveOutcome(l2a=l2a, derived_dir=ddir, skipped="already derived")
            if l2a.exists():
                try:
                    o.removed = apply_keep(policy, l2a, ddir, l1c_path=job.path, delete_l1c=delete_l1c).removed
                except S2L2AError as e:
                    o.error = str(e)
            outcomes.append(o)
            continue
        if not l2a.exists():
            outcomes.append(ProductDeriveOutcome(l2a=l2a, error=f"{l2a}: L2A product no longer exists"))
            continue
        outcomes.append(derive_then_keep(l2a, root / job.tile, spec, policy, l1c_path=job.path,
                                         delete_l1c=delete_l1c, threads=threads))
    return outcomes


def _holds(derived: Any, spec: Any) -> bool:
    """Whether a derived folder already has every output ``spec`` asks for, at its resolution."""
    wanted = {f.name for f in spec.parsed()} | {"SCL"}
    if spec.clear_classes:
        wanted.add("CLEAR")
    return derived.resolution == spec.resolution and wanted <= set(derived.files)


def write_campaign_stac(campaign_dir: Path | str, out_dir: Path | str | None = None,
                        skipped: list[str] | None = None) -> Path:
    """Write ``<campaign>/stac/collection.json`` and one item per converted product; validate everything.

    A product whose L2A is incomplete (a file its manifest or metadata lists is missing or has
    another size) gets no item; one line naming it and the file is appended to ``skipped``.
    """
    import pystac

    from s2l2a.outputs.derive import find_derived
    from s2l2a.outputs.manifest import check_output
    from s2l2a.outputs.stac import CHECKSUM_CACHE, ChecksumCache, build_collection, build_item, validate
    from s2l2a.safe import IncompleteProductError

    layout = CampaignLayout.of(campaign_dir)
    campaign_dir = layout.root
    out = Path(out_dir) if out_dir else layout.stac
    derived = find_derived(layout.derived)
    items = []
    checksums = ChecksumCache(out / CHECKSUM_CACHE)
    with CampaignStore.open(campaign_dir) as store:
        done_log = {a.job_id: a.log_path for a in store.attempts() if a.state == "done"}
        for job in store.jobs("done"):
            l2a = Path(job.output_path) if job.output_path else None
            name = l2a.name.removesuffix(".SAFE") if l2a else None
            ddir = derived.get(name) if name else None
            if (l2a is None or not l2a.exists()) and ddir is None:
                continue
            problem = check_output(l2a) if l2a is not None and l2a.exists() else None
            try:
                if problem is not None:
                    raise IncompleteProductError(f"incomplete L2A {problem}")
                items.append(build_item(l2a, ddir, l1c_path=job.path, log_path=done_log.get(job.id),
                                        processor=job.processor, processor_version=job.processor_version,
                                        checksum=checksums))
            except IncompleteProductError as e:
                if skipped is None:
                    raise
                skipped.append(f"no STAC item for job {job.id}: {e}")
    coll = build_collection(items, campaign_dir.name, f"Sentinel-2 L2A outputs of the s2l2a campaign {campaign_dir.name}")
    coll.normalize_hrefs(str(out))
    for item in items:  # relative asset hrefs: the campaign folder can be moved or mounted elsewhere
        item.make_asset_hrefs_relative()
    for obj in [coll, *items]:
        validate(obj)
    coll.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    checksums.save()
    return out / "collection.json"


def report_data(campaign_dir: Path | str, log_tail: int = 12) -> dict[str, Any]:
    """Everything the campaign report shows, as plain data (:func:`s2l2a.outputs.report.collect`)."""
    from s2l2a.campaign.cubes import report_cubes
    from s2l2a.outputs.report import collect

    layout = CampaignLayout.of(campaign_dir)
    with CampaignStore.open(layout.root) as store:
        summary = store.summary(log_tail=log_tail)
        jobs = store.jobs()
        attempts = store.attempts()
    data = collect(layout.root, summary, jobs, attempts, derived_dir=layout.derived, gipp_record=layout.gipp_record)
    data["cubes"] = report_cubes(layout.root)  # the index cubes built from the campaign (s2l2a cube)
    return data


def write_report(campaign_dir: Path | str, out: Path | str | None = None) -> Path:
    """Collect, render and write the report atomically (default ``<campaign>/report.html``)."""
    from s2l2a.fsutil import write_text_atomic
    from s2l2a.outputs.report import render

    out = Path(out) if out else CampaignLayout.of(campaign_dir).report
    return write_text_atomic(out, render(report_data(campaign_dir)))
