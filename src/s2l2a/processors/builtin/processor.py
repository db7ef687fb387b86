"""``BuiltinProcessor``: the Processor contract around the built-in pipeline.

It writes only inside the staging directory it is given: the L2A SAFE (named like Sen2Cor's) and
its log. The result is verified with the project's own ``safe.verify_l2a`` before it is returned;
the caller moves it into place.

Partial inputs (some band files absent, e.g. a single-band test copy): by default a ProcessingFailed
(BAD_INPUT) naming the missing bands, because an incomplete L2A must not be published as done. With
``allow_partial = true`` the bands present are converted "as far as present": AOT and water vapour
fall back to the priors when the bands they need are missing, SCL becomes "unclassified" when the
classification bands are missing, the outputs that cannot be made are left out, and verification is
skipped (``details["missing_bands"]`` lists what was absent).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from s2l2a import __version__
from s2l2a.campaign.failures import FailureClass
from s2l2a.errors import ProductError
from s2l2a.processors.base import JobSettings, L2AResult, ProcessingFailed
from s2l2a.safe import format_product_name, l2a_granule_name
from s2l2a.safe.bands import BANDS

from .mtd import now_utc, write_product_metadata, write_tile_metadata
from .pipeline import Options, run_granule
from .writer import IMAGE_FORMAT_ATTR, normalize_format

log = logging.getLogger(__name__)

DEFAULT_BASELINE = "99.99"  # what a standalone Sen2Cor writes; the BOA offsets follow the >= 04.00 rule


class BuiltinProcessor:
    """Physically based L1C -> L2A without Sen2Cor (6S look-up table, DDV aerosol, Sen2Cor-like SCL)."""

    name = "builtin"

    def __init__(self, output_format: str | None = None, **options: Any) -> None:
        known = {f.name for f in fields(Options)}
        unknown = sorted(set(options) - known - {"processing_baseline"})
        if unknown:
            raise ProcessingFailed(f"unknown [builtin] option(s): {', '.join(unknown)}",
                                   FailureClass.BAD_INPUT)
        self.baseline = options.pop("processing_baseline", None)
        try:
            self.options = Options(output_format=normalize_format(output_format),
                                   **{k: v for k, v in options.items() if k in known})
        except (TypeError, ValueError) as exc:
            raise ProcessingFailed(f"bad [builtin] option: {exc}", FailureClass.BAD_INPUT) from None

    def version(self) -> str:
        return f"s2l2a-builtin {__version__}"

    def process(self, product: Any, staging_dir: Path, settings: JobSettings, log_path: Path) -> L2AResult:
        """Convert ``product`` into ``staging_dir/<L2A name>.SAFE``; raise ProcessingFailed on failure."""
        return self._logged(product, staging_dir, log_path,
                            lambda lp, say: self._process(product, Path(staging_dir), settings, lp, say))

    def deliver(self, product: Any, staging_dir: Path, settings: JobSettings, log_path: Path, spec: Any,
                l2a_dir: Path, publish: Callable[..., Any]) -> Any:
        """Only the derived outputs of ``product`` (``spec``: a DeriveSpec), without writing the L2A
        (deliverable.py). ``publish(l2a, images, source, tci, scl)`` writes and publishes the derived
        folder (the campaign passes derive's writer: outputs sit above processors); ``l2a_dir``: the
        folder the L2A would have been published in (recorded as the source). Returns a Delivered
        (what ``publish`` returned and the run's details); raises ProcessingFailed like :meth:`process`."""
        return self._logged(product, staging_dir, log_path, lambda lp, say: self._deliver(
            product, Path(staging_dir), settings, lp, say, spec, Path(l2a_dir), publish))

    def _logged(self, product: Any, staging_dir: Path, log_path: Path, body: Any) -> Any:
        """Run ``body(log_path, say)`` with the job log open; every failure becomes ProcessingFailed."""
        staging_dir = Path(staging_dir)
        staging_dir.mkdir(parents=True, exist_ok=True)
        log_path = Path(log_path) if log_path else staging_dir / "builtin.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a", encoding="utf-8") as logf:
            def say(msg: str) -> None:
                logf.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {msg}\n")
                logf.flush()

            say(f"{self.version()} converting {product.path}")
            try:
                return body(log_path, say)
            except ProcessingFailed as exc:
                say(f"FAILED ({exc.failure_class}): {exc}")
                exc.log_path = exc.log_path or log_path
                raise
            except MemoryError:
                say(traceback.format_exc())
                raise ProcessingFailed("out of memory in the built-in processor", FailureClass.OUT_OF_MEMORY,
                                       log_path=log_path) from None
            except ProductError as exc:  # the L1C itself is unusable (e.g. a band file empty or cut short)
                say(f"FAILED (bad input): {exc}")
                raise ProcessingFailed(str(exc), FailureClass.BAD_INPUT, log_path=log_path) from None
            except Exception as exc:  # one line for the user, the traceback in the log
                say(traceback.format_exc())
                raise ProcessingFailed(f"built-in processor failed: {type(exc).__name__}: {exc}",
                                       FailureClass.OTHER, log_path=log_path) from None

    def _start(self, product: Any, staging_dir: Path, settings: JobSettings) -> tuple:
        """Checks, look-up table, name and folders of the L2A: what converting and delivering share."""
        opts = self._effective_options(settings)
        granules = list(product.granules)
        if len(granules) != 1:
            raise ProcessingFailed(f"{len(granules)} granules in {product.path.name}: the built-in processor "
                                   "converts single-tile products only", FailureClass.BAD_INPUT)
        granule = granules[0]
        if opts.dem:  # a DEM that is not there fails now, as missing auxiliary data, not mid-way
            from .dem import DemError, dem_sources

            try:
                dem_sources(opts.dem)
            except DemError as exc:
                raise ProcessingFailed(str(exc), FailureClass.MISSING_AUX) from None
        if opts.esacci:  # likewise ESA-CCI maps that are not there (ProcessingFailed, missing_aux)
            from .ccimaps import CciMaps

            CciMaps.open(opts.esacci)
        missing = [b for b in BANDS if b not in granule.band_files]
        if missing and not opts.allow_partial:
            raise ProcessingFailed(f"band file(s) missing: {', '.join(missing)} (set allow_partial = true "
                                   "under [builtin] to convert the bands present)", FailureClass.BAD_INPUT)
        try:
            from .lut import load_lut
            lut = load_lut(product.mission, opts.aerosol)
        except (FileNotFoundError, ValueError, KeyError) as exc:
            raise ProcessingFailed(f"look-up table unavailable: {exc}", FailureClass.MISSING_AUX) from None

        baseline = settings.processing_baseline or self.baseline or DEFAULT_BASELINE
        generated = now_utc()
        name = format_product_name(product.mission, "L2A", product.sensing_time, baseline,
                                   product.name.relative_orbit or 0, granule.tile or product.tile, generated)
        safe = staging_dir / f"{name}.SAFE"
        if safe.exists():
            shutil.rmtree(safe)
        gname = l2a_granule_name(granule.granule_id)
        gdir = safe / "GRANULE" / gname
        for d in (gdir / "AUX_DATA", gdir / "QI_DATA", safe / "AUX_DATA", safe / "DATASTRIP", safe / "HTML",
                  safe / "rep_info"):
            d.mkdir(parents=True, exist_ok=True)
        for src in getattr(granule, "aux_files", {}).values():
            if Path(src).is_file():
                shutil.copy2(src, gdir / "AUX_DATA" / Path(src).name)
        return opts, granule, lut, baseline, generated, name, safe, gname, gdir

    def _process(self, product: Any, staging_dir: Path, settings: JobSettings, log_path: Path,
                 say: Any) -> L2AResult:
        opts, granule, lut, baseline, generated, name, safe, gname, gdir = self._start(product, staging_dir, settings)
        out = run_granule(product, granule, gdir, opts, lut, progress=say)
        grids = _written_grids(gdir, out.images)
        rels = []
        for r in (10, 20, 60):
            for _key, rel in sorted(out.images[r].items()):
                rels.append(str(Path("GRANULE") / gname / rel.with_suffix("")))
        gid = getattr(granule, "tile_id", "") or gname
        gid = gid.replace("_L1C_", "_L2A_")
        write_product_metadata(
            product.metadata_path if hasattr(product, "metadata_path") else product.path / "MTD_MSIL1C.xml",
            safe / "MTD_MSIL2A.xml", product_name=name, baseline=baseline, generated=generated,
            granule_identifier=gid, datastrip_identifier=gid.replace("_TL_", "_DS_"), image_files=rels,
            image_format=IMAGE_FORMAT_ATTR[opts.output_format], processor=self.name,
            version=self.version(), l1c_uri=product.product_uri or product.name.name,
            scl_percent=out.details.get("scl_percent"), nodata_percent=out.details.get("nodata_percent"))
        write_tile_metadata(granule.metadata_path, gdir / "MTD_TL.xml", baseline=baseline, grids=grids,
                            scl_percent=out.details.get("scl_percent"))
        details = self._report(gdir, out.details, out.missing_bands, opts, say)
        say(f"wrote {safe.name}")
        if not out.missing_bands:
            from s2l2a.safe import verify_l2a

            try:
                verify_l2a(safe, resolutions=tuple(out.details["resolutions"]))
            except Exception as exc:
                raise ProcessingFailed(f"own output failed verification: {exc}", FailureClass.EMPTY_OUTPUT,
                                       log_path=log_path) from None
            say("verified")
        return L2AResult(product_dir=safe, processor=self.name, processor_version=self.version(),
                         log_path=log_path, details=details)

    def _report(self, gdir: Path, found: dict[str, Any], missing_bands: list[str], opts: Options, say: Any,
                **extra: Any) -> dict[str, Any]:
        """The run's details into ``QI_DATA/builtin_report.json``: what the campaign report, STAC and a
        derived folder (which copies it) show as the parameters, software and terrain that ran."""
        details = {**found, "missing_bands": missing_bands, "output_format": opts.output_format,
                   "gipp_sha256": _gipp_sha256(), "software": _software(self.version()), **extra}
        dem = details.get("dem") or {}
        say("terrain: " + (f"DEM {dem['dem']}" if dem.get("dem") else f"flat (no DEM) at {opts.elevation_km} km"))
        (gdir / "QI_DATA" / "builtin_report.json").write_text(json.dumps(details, indent=1, default=str))
        return details

    def _deliver(self, product: Any, staging_dir: Path, settings: JobSettings, log_path: Path, say: Any,
                 spec: Any, l2a_dir: Path, publish: Callable[..., Any]) -> Any:
        """The derived folder from memory; the L2A's metadata alone is written (in staging) so that
        the folder records the same product, baseline, reflectance convention and cloud cover."""
        from s2l2a.safe import open_l2a

        from .deliverable import Delivered, run_deliverables

        opts, granule, lut, baseline, generated, name, safe, gname, gdir = self._start(product, staging_dir, settings)
        say(f"deliverables only: {', '.join(spec.indices) or '-'}{' + formulas' if spec.formulas else ''} and "
            f"SCL at {spec.resolution} m; the L2A is not written")
        # the index bands wait in raw files beside the product, and derive reads them from there
        with tempfile.TemporaryDirectory(prefix=".s2l2a-bands-", dir=staging_dir) as scratch:
            d = run_deliverables(product, granule, opts, lut, spec, progress=say, scratch=Path(scratch))
            gid = (getattr(granule, "tile_id", "") or gname).replace("_L1C_", "_L2A_")
            write_product_metadata(
                product.metadata_path if hasattr(product, "metadata_path") else product.path / "MTD_MSIL1C.xml",
                safe / "MTD_MSIL2A.xml", product_name=name, baseline=baseline, generated=generated,
                granule_identifier=gid, datastrip_identifier=gid.replace("_TL_", "_DS_"), image_files=[],
                image_format=IMAGE_FORMAT_ATTR[opts.output_format], processor=self.name,
                version=self.version(), l1c_uri=product.product_uri or product.name.name,
                scl_percent=d.result.details.get("scl_percent"), nodata_percent=d.result.details.get("nodata_percent"))
            write_tile_metadata(granule.metadata_path, gdir / "MTD_TL.xml", baseline=baseline,
                                grids={r: (*g.shape, g.transform) for r, g in d.grids.items()
                                       if r in d.result.details["resolutions"]},
                                scl_percent=d.result.details.get("scl_percent"))
            details = self._report(gdir, d.result.details, d.result.missing_bands, opts, say, derived_only=True)
            l2a = open_l2a(safe, require_bands=False)
            derived = publish(l2a, d.images, Path(l2a_dir).resolve() / safe.name, d.tci, d.scl)
        say(f"wrote and verified {derived.out_dir}")
        return Delivered(derived=derived, processor=self.name, processor_version=self.version(), details=details)

    def _effective_options(self, settings: JobSettings) -> Options:
        """Campaign-level settings (output format, cores, extra) on top of the processor's options."""
        opts = Options(**{f.name: getattr(self.options, f.name) for f in fields(Options)})
        if settings is not None:
            if settings.output_format:  # the campaign's [builtin] output_format; None: the processor's
                opts.output_format = normalize_format(settings.output_format)
            opts.threads = max(1, int(settings.cores or 1))
            if settings.resolution:
                if int(settings.resolution) not in (10, 20, 60):
                    raise ProcessingFailed(f"resolution {settings.resolution} is not 10, 20 or 60",
                                           FailureClass.BAD_INPUT)
                opts.resolution = int(settings.resolution)
            for k, v in (settings.extra or {}).items():
                if hasattr(opts, k):
                    setattr(opts, k, v)
        return opts


def _written_grids(gdir: Path, images: dict[int, dict[str, Path]]) -> dict[int, tuple[int, int, Any]]:
    """Rows, columns and transform of each resolution folder as written (for MTD_TL.xml)."""
    import rasterio

    grids = {}
    for r, files in images.items():
        for rel in files.values():
            with rasterio.open(gdir / rel) as ds:
                grids[r] = (ds.height, ds.width, ds.transform)
            break
    return grids


def _gipp_sha256() -> dict[str, str]:
    """SHA-256 of the Sen2Cor calibration GIPP files the scene classification and aerosol retrieval
    read (packaged with the processor), under Sen2Cor's argument names."""
    import hashlib

    from .sclgipp import DATA

    return {name: hashlib.sha256((DATA / f"{stem}.xml").read_bytes()).hexdigest()
            for name, stem in (("GIP_L2A_SC", "L2A_CAL_SC_GIPP"), ("GIP_L2A_AC", "L2A_CAL_AC_GIPP"))}


def _software(version: str) -> dict[str, str]:
    """The software versions that made the product (STAC processing:software)."""
    import numpy
    import rasterio

    return {"s2l2a-builtin": version.split()[-1], "GDAL": rasterio.__gdal_version__,
            "rasterio": rasterio.__version__, "numpy": numpy.__version__}
