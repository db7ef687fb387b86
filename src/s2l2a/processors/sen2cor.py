"""The Sen2Cor processor: runs an installed ``L2A_Process`` on one L1C inside a staging directory.

Sen2Cor's exit status is not enough to trust a run: it can exit 0 with an empty ``IMG_DATA``, and
its output name (baseline N9999 or from the GIPP, processing timestamp) cannot be predicted. So a
run counts as done only when it exited 0, printed its success line, and left exactly one new
``*MSIL2A*.SAFE`` that passes :func:`s2l2a.safe.verify_l2a`. Any other outcome raises
ProcessingFailed with a FailureClass and one line naming the log.

A campaign may list several installs (``l2a_process``, then ``installs``): each product runs on the
first whose supported product versions hold its own (:mod:`s2l2a.sen2cor.installs`). A 3.x install
runs as ``python .../SEN2COR_3/L2A_Process.py``. Every run records what made the output: Sen2Cor's
version, layout and argv, the product version, the GIPP hashes and the aux data (ESA-CCI package,
CAMS dates, DEM), in the job log and in ``GRANULE/*/QI_DATA/s2l2a_sen2cor_provenance.json``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from s2l2a.campaign.failures import FailureClass
from s2l2a.errors import ConfigError, ProductError, S2L2AError
from s2l2a.processors.base import JobSettings, L2AResult, ProcessingFailed
from s2l2a.registry import (
    ProcessorPlugin,
    Section,
    Setting,
    boolean,
    non_empty_path,
    non_negative_seconds,
    string_list,
)
from s2l2a.sen2cor.classify import (
    classify_failure,
    describe_exit,
    last_progress,
    succeeded,
    telling_line,
)
from s2l2a.sen2cor.command import build_command
from s2l2a.sen2cor.locate import find_l2a_process, launcher, read_info
from s2l2a.sen2cor.runner import read_log_tail, run_logged
from s2l2a.sen2cor.version import Sen2CorInfo

if TYPE_CHECKING:
    from s2l2a.safe import L1CProduct
    from s2l2a.sen2cor.installs import Install

#: written into every L2A Sen2Cor made (next to the built-in processor's builtin_report.json)
PROVENANCE_FILE = "s2l2a_sen2cor_provenance.json"

def _baseline(label: str, value: Any) -> None:
    if not isinstance(value, str) or not re.fullmatch(r"\d{2}\.\d{2}", value):
        raise ConfigError(f'{label}: must look like "05.10", not {value!r}')


#: ``[sen2cor]``: the keys s2l2a reads; others (e.g. ``parameters``) are kept for the GIPP tools
SECTION = Section("sen2cor", open=True, help="where Sen2Cor is and how it is run", settings=(
    Setting("l2a_process", "path", check=non_empty_path, help="L2A_Process, or the folder of an install"),
    Setting("gipp", "path", check=non_empty_path, help="an L2A_GIPP.xml (or folder of GIPP files) to run with"),
    Setting("home", "path", check=non_empty_path, help="SEN2COR_HOME (default: one per job in its staging)"),
    Setting("resolution", "int", None, choices=(10, 20, 60), help="Sen2Cor's --resolution"),
    Setting("processing_baseline", "str", check=_baseline, help="Sen2Cor's --processing_baseline, e.g. 05.10"),
    Setting("kill_grace_s", "float", 10.0, check=non_negative_seconds,
            help="seconds between SIGTERM and SIGKILL when a run hits its timeout"),
    Setting("python", "path", check=non_empty_path,
            help="Sen2Cor 3: the Python running L2A_Process.py (default: the one 'sen2cor install' recorded)"),
    Setting("installs", "list", check=string_list,
            help="more Sen2Cor installs, tried after l2a_process for products it cannot read"),
    Setting("tif", "bool", check=boolean, help="Sen2Cor's --tif: GeoTIFF images instead of JPEG 2000 (2.8+)"),
    Setting("sc_cog", "bool", check=boolean, help="Sen2Cor's --sc_cog: the SCL as a COG (3.x)"),
    Setting("sc_classic", "bool", check=boolean, help="Sen2Cor's --sc_classic: 2.9-mode classification (3.x)"),
))


def missing_message() -> str:
    """One line saying no Sen2Cor was found and how to point s2l2a at one."""
    return ("no Sen2Cor L2A_Process was found (not configured, no $SEN2COR_BIN, not on PATH); point to one "
            "with 's2l2a config DIR sen2cor.l2a_process PATH' (l2a_process under [sen2cor] in s2l2a.toml)")


def expected_resolutions(resolution: int | None) -> tuple[int, ...]:
    """Which R<res>m folders a run fills: Sen2Cor derives 60 m from 20 m and does 20 m before 10 m."""
    if resolution in (None, 10):
        return (10, 20, 60)
    if resolution == 20:
        return (20, 60)
    return (60,)


def _new_products(out_dir: Path, before: set[str]) -> list[Path]:
    if not out_dir.is_dir():
        return []
    return sorted(p for p in out_dir.iterdir()
                  if "MSIL2A" in p.name and p.name.endswith(".SAFE") and p.is_dir() and not p.is_symlink()
                  and p.name not in before)


def _keep_own_logs(home: Path, work_dir: Path, log_path: Path, max_files: int = 3,
                   max_lines: int = 200) -> str:
    """Append the tails of Sen2Cor's own log/report files to the job log and return them.

    Sen2Cor writes its detailed log under SEN2COR_HOME (and reports into the work dir), both in
    the staging directory that the next attempt deletes; an error such as a DEM failure may be
    stated only there. Keeping the tails in the job log preserves them and lets them be classified.
    """
    files = [f for d in (home / "log", work_dir) if d.is_dir() for f in d.rglob("*")
             if f.is_file() and (f.suffix == ".log" or (f.suffix == ".xml" and "report" in f.name.lower()))]
    files = sorted(files, key=lambda f: f.stat().st_mtime, reverse=True)[:max_files]
    parts: list[str] = []
    for f in files:
        lines = read_log_tail(f, 0, 64 * 1024).splitlines()[-max_lines:]
        if lines:
            parts.append(f"---- Sen2Cor's own {f.name} (last {len(lines)} lines)\n" + "\n".join(lines) + "\n")
    text = "".join(parts)
    if text:
        with open(log_path, "a", encoding="utf-8", errors="replace") as log:
            log.write(text)
    return text


def _record_gipps(argv: list[str], log_path: Path) -> dict[str, str]:
    """SHA-256 of every GIPP file a run is given, into the job log and the result.

    An output can then always be traced to its exact parameters, even after the campaign's
    GIPP copies were rewritten for a later run.
    """
    from s2l2a.sen2cor.gipp import sha256

    hashes = {flag.removeprefix("--"): sha256(Path(argv[i + 1]))
              for i, flag in enumerate(argv[:-1]) if flag.startswith("--GIP_")}
    if hashes:
        with open(log_path, "a", encoding="utf-8") as log:
            for i, flag in enumerate(argv[:-1]):
                if flag.startswith("--GIP_"):
                    log.write(f"s2l2a: {flag} {argv[i + 1]} {hashes[flag.removeprefix('--')]}\n")
    return hashes


def _gipp_dem(argv: list[str]) -> dict[str, str]:
    """DEM_Directory / DEM_Reference of the L2A_GIPP a run was given ({} when none or unreadable)."""
    if "--GIP_L2A" not in argv[:-1]:
        return {}
    from lxml import etree

    path = argv[argv.index("--GIP_L2A") + 1]
    try:
        root = etree.parse(path, etree.XMLParser(resolve_entities=False, no_network=True)).getroot()
    except (OSError, etree.XMLSyntaxError):
        return {}
    out = {}
    for tag, key in (("DEM_Directory", "directory"), ("DEM_Reference", "reference")):
        node = next(root.iter(tag), None)
        if node is not None and node.text and node.text.strip():
            out[key] = node.text.strip()
    return out


def _record_provenance(inst: Install, product: Any, product_version: Any, argv: list[str],
                       python: str | None, log_path: Path) -> dict[str, Any]:
    """What made this run's output, as ``s2l2a: ...`` lines in the job log and a dict for the product.

    Sen2Cor's version, layout, argv start (interpreter), the product's version and the install's range,
    the ESA-CCI package present, the CAMS dates its folders cover (3.x) and the DEM its GIPP names.
    """
    from s2l2a.sen2cor.layout import describe

    number = ".".join(map(str, inst.info.number))
    layout, esacci, cams = "run", None, None
    try:
        d = describe(inst.program, number, python=python)
        layout = d.layout
        if d.traits.esacci and d.aux_data_dir is not None and not d.esacci_missing():
            esacci = d.traits.snow_condition_dir
        if d.cams_dirs():
            from s2l2a.sen2cor.cams import coverage

            cov = coverage(d)
            day = getattr(getattr(product, "sensing_time", None), "date", lambda: None)()
            cams = {"span": cov.span(), "covers_product_date": cov.covers(day) if day else None}
    except (S2L2AError, OSError):
        pass
    dem = _gipp_dem(argv)
    prov: dict[str, Any] = {
        "sen2cor_version": number, "layout": layout, "launcher": list(inst.launcher),
        "product_version": str(product_version) if product_version is not None else None,
        "product_version_source": getattr(product_version, "source", None),
        "supported_product_versions": str(inst.info.products) if inst.info.products is not None else None,
        "esacci": esacci, "cams": cams, "dem": dem or None,
    }
    lines = [f"s2l2a: sen2cor version {number} layout {layout}",
             f"s2l2a: sen2cor launcher {' '.join(inst.launcher)}",
             f"s2l2a: sen2cor product version {prov['product_version'] or 'unknown'}"
             + (f" ({prov['product_version_source']})" if prov["product_version_source"] else "")
             + f", supported {prov['supported_product_versions'] or 'not stated'}",
             f"s2l2a: aux esacci {esacci or 'none found'}"]
    if cams is not None:
        lines.append(f"s2l2a: aux cams {cams['span']}"
                     + ("" if cams["covers_product_date"] is not False else " (not the product's date)"))
    lines.append(f"s2l2a: aux dem {dem.get('reference', 'none')} ({dem.get('directory', 'no DEM_Directory')})"
                 if dem else "s2l2a: aux dem none named by the GIPP (Sen2Cor's default)")
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write("".join(f"{ln}\n" for ln in lines))
    return prov


def _write_provenance(l2a: Path, provenance: dict[str, Any]) -> None:
    """The provenance travels with the product (next to Sen2Cor's QI data of each granule)."""
    from s2l2a.fsutil import write_json_atomic

    for qi in sorted(l2a.glob("GRANULE/*/QI_DATA")):
        write_json_atomic(qi / PROVENANCE_FILE, provenance)


class Sen2CorProcessor:
    """Processor protocol implementation around an installed Sen2Cor."""

    name = "sen2cor"

    def __init__(self, l2a_process: str | Path | None = None, resolution: int | None = None,
                 processing_baseline: str | None = None,
                 gipp: str | Path | Mapping[str, str | Path] | None = None,
                 kill_grace_s: float = 10.0, python: str | Path | None = None,
                 installs: list[str] | str | None = None, tif: bool = False, sc_cog: bool = False,
                 sc_classic: bool = False, **_ignored: Any) -> None:
        self.configured = l2a_process
        self.resolution = int(resolution) if resolution not in (None, "") else None
        self.processing_baseline = str(processing_baseline) if processing_baseline else None
        self.gipp = gipp or None
        self.kill_grace_s = float(kill_grace_s)
        self.python = str(python) if python else None
        self.more_installs = [installs] if isinstance(installs, str) else list(installs or [])
        self.tif, self.sc_cog, self.sc_classic = bool(tif), bool(sc_cog), bool(sc_classic)
        self._exe: Path | None = None
        self._info: Sen2CorInfo | None = None
        self._installs: list[Install] | None = None

    @property
    def executable(self) -> Path:
        """The L2A_Process used; ProcessingFailed (one line) when there is none."""
        if self._exe is None:
            found = find_l2a_process(self.configured)
            if found is None:
                if self.configured:
                    raise ProcessingFailed(f"{self.configured}: no executable Sen2Cor L2A_Process there; "
                                           "fix 'l2a_process' under [sen2cor] in s2l2a.toml with "
                                           "'s2l2a config DIR sen2cor.l2a_process PATH'")
                raise ProcessingFailed(missing_message())
            self._exe = found
        return self._exe

    def info(self) -> Sen2CorInfo:
        if self._info is None:
            try:
                self._info = read_info(self.executable, python=self.python)
            except S2L2AError as e:  # not startable, hung, no version banner, no 3.x interpreter
                raise ProcessingFailed(str(e)) from None
        return self._info

    def installs(self) -> list[Install]:
        """The first install (``l2a_process``), then ``installs``, each asked for its version once."""
        if self._installs is None:
            from s2l2a.sen2cor.installs import Install

            try:
                out = [Install(self.executable, tuple(launcher(self.executable, self.python)), self.info())]
                for configured in self.more_installs:
                    program = find_l2a_process(configured)
                    if program is None:
                        raise ProcessingFailed(f"{configured}: no Sen2Cor L2A_Process there; fix 'installs' "
                                               "under [sen2cor] in s2l2a.toml")
                    out.append(Install(program, tuple(launcher(program, self.python)),
                                       read_info(program, python=self.python)))
            except S2L2AError as e:
                raise ProcessingFailed(str(e)) from None
            self._installs = out
        return self._installs

    def version(self) -> str:
        """Sen2Cor's version in ESA's zero-padded form, e.g. "02.08.00"."""
        return self.info().version

    def _pin_threads(self, gipp: Any, cores: int, staging_dir: Path, log_path: Path, inst: Install) -> Any:
        """A per-job L2A_GIPP copy with ``Nr_Threads`` = the job's cores (at most 8, the XSD's limit).

        ``Nr_Threads=AUTO`` makes every Sen2Cor instance use every core of the node, so N jobs on
        one node oversubscribe it N times. The copy starts from the campaign's GIPP when there is
        one, else from the install's template; the installed files are never edited. Versions
        without ``Nr_Threads`` (2.1–2.3 have ``Nr_Processes``) are left as they are.
        """
        from s2l2a.sen2cor import gipp as gipp_files
        from s2l2a.sen2cor.command import _gipp_args
        from s2l2a.sen2cor.layout import describe

        try:
            pairs = dict(_gipp_args(gipp))
        except S2L2AError:
            return gipp  # build_command reports a bad gipp setting with its own message
        base = pairs.get("--GIP_L2A")
        if base is None:
            try:
                base = describe(inst.program, inst.info.version, python=self.python).templates.get("L2A_GIPP")
            except (S2L2AError, OSError):
                base = None
        if base is None:
            return gipp
        try:
            pinned = gipp_files.write_gipps({"L2A_GIPP": Path(base)}, staging_dir / "gipp",
                                            {"nr_threads": max(1, min(int(cores), 8))},
                                            version=inst.info.version, require_schema=False)
        except S2L2AError as exc:
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(f"s2l2a: Nr_Threads not pinned: {exc}\n")
            return gipp
        pairs["--GIP_L2A"] = pinned.files["L2A_GIPP"]
        return {flag.removeprefix("--"): path for flag, path in pairs.items()}

    def process(self, product: L1CProduct, staging_dir: Path, settings: JobSettings,
                log_path: Path) -> L2AResult:
        """Run Sen2Cor on ``product`` into ``staging_dir/out``; return the one verified new L2A."""
        from s2l2a.safe.psd import read_product_version
        from s2l2a.sen2cor.installs import choose

        staging_dir = Path(staging_dir)
        staging_dir.mkdir(parents=True, exist_ok=True)
        product_dir = Path(getattr(product, "path", product))
        product_version = read_product_version(product_dir)
        inst, why = choose(self.installs(), product_version)
        if inst is None:  # plan and the preflight refuse these; a product planned before meets it here
            raise ProcessingFailed(f"{why} (see docs/sen2cor.md)", FailureClass.BAD_INPUT, log_path=log_path)
        info = inst.info
        resolution = settings.resolution if settings.resolution is not None else self.resolution
        baseline = settings.processing_baseline or self.processing_baseline
        from s2l2a.safe.bands import check_band_files  # numpy: imported when a job runs, not to read settings

        try:  # Sen2Cor's own words for an empty or cut band file are a traceback deep in its log
            for granule in getattr(product, "granules", ()):
                check_band_files(granule.band_files)
        except ProductError as exc:
            raise ProcessingFailed(str(exc), FailureClass.BAD_INPUT, log_path=log_path) from None
        gipp = settings.extra.get("gipp") or self.gipp
        gipp = self._pin_threads(gipp, settings.cores, staging_dir, log_path, inst)
        try:
            cmd = build_command(list(inst.launcher), info, product_dir, staging_dir, resolution=resolution,
                                processing_baseline=baseline, gipp=gipp, cores=settings.cores, tif=self.tif,
                                sc_cog=self.sc_cog, sc_classic=self.sc_classic)
        except S2L2AError as exc:
            raise ProcessingFailed(str(exc), FailureClass.OTHER, log_path=log_path) from None
        before = {p.name for p in cmd.output_dir.iterdir()} if cmd.output_dir.is_dir() else set()
        provenance = _record_provenance(inst, product, product_version, cmd.argv, self.python, log_path)
        gipp_sha256 = _record_gipps(cmd.argv, log_path)
        provenance["gipp_sha256"] = gipp_sha256

        limit = settings.timeout_s if settings.timeout_s and settings.timeout_s > 0 else None
        run = run_logged(cmd.argv, env=cmd.env, log_path=log_path, timeout_s=limit,
                         cwd=staging_dir, grace_s=self.kill_grace_s)
        text = read_log_tail(log_path, run.log_offset)
        where = f"see {log_path}"
        how = describe_exit(run.returncode, run.timed_out, run.duration_s, limit)

        def failed(cls: FailureClass, what: str) -> ProcessingFailed:
            return ProcessingFailed(f"Sen2Cor {info.version} {what}; {where}", cls,
                                    exit_status=run.returncode, log_path=log_path)

        if run.timed_out or run.returncode != 0 or not succeeded(text):
            text += _keep_own_logs(cmd.sen2cor_home, cmd.work_dir, log_path)
        if run.timed_out or run.returncode != 0:
            cls = classify_failure(run.returncode, text, timed_out=run.timed_out)
            if run.timed_out:
                stood = last_progress(text)
                raise failed(cls, how + (f" (last: {stood})" if stood else ""))
            line = telling_line(text, cls)
            raise failed(cls, how + (f": {line}" if line else ""))
        if not succeeded(text):
            cls = classify_failure(0, text)
            line = telling_line(text, cls)
            raise failed(cls, "exited 0 without 'Application terminated successfully'"
                         + (f": {line}" if line else ""))
        new = _new_products(cmd.output_dir, before)
        if not new:
            raise failed(FailureClass.EMPTY_OUTPUT, f"exited 0 but wrote no *MSIL2A*.SAFE into {cmd.output_dir}")
        if len(new) > 1:
            names = ", ".join(p.name for p in new)
            raise failed(FailureClass.EMPTY_OUTPUT, f"wrote {len(new)} L2A products, expected one: {names}")
        out = new[0]
        from s2l2a.safe import verify_l2a

        resolutions = expected_resolutions(resolution)
        try:
            verify_l2a(out, resolutions=resolutions)
        except ProductError as exc:
            raise failed(FailureClass.EMPTY_OUTPUT, f"exited 0 but its output is incomplete: {exc}") from None
        shutil.rmtree(cmd.work_dir, ignore_errors=True)  # Sen2Cor's scratch can be gigabytes
        _write_provenance(out, provenance)
        return L2AResult(product_dir=out, processor=self.name, processor_version=info.version,
                         log_path=Path(log_path),
                         details={"argv": run.argv, "duration_s": round(run.duration_s, 3),
                                  "exit_status": run.returncode, "sen2cor_home": str(cmd.sen2cor_home),
                                  "staged_input": cmd.staged_input, "resolutions": list(resolutions),
                                  "executable": str(inst.program), "banner": info.banner,
                                  "gipp_sha256": gipp_sha256, "provenance": provenance})


# Sen2Cor takes 5-90 minutes per product (cloud cover, DEM, cores): 90 min bounds the first arrays
PLUGIN = ProcessorPlugin(name="sen2cor", factory=Sen2CorProcessor, section=SECTION,
                         summary="ESA's Sen2Cor (an installed L2A_Process)", output_mb=1100, max_duration_s=5400)
