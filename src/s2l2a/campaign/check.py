"""Preflight checks of a campaign: what ``s2l2a check DIR`` prints and what ``s2l2a run`` refuses on.

A run that cannot succeed should fail in its first second, not an hour into every job: a
Sen2Cor without its ESA-CCI files, a DEM that does not cover the products, a disk that fills up
after the tenth product, a job bigger than the machine. Each check gives one result (ok, fail,
warn or skip) with one line saying what was found and, when it fails, what to do. The checks
reuse the set-up code (``sen2cor.layout``, ``sen2cor.gipp``, ``aux.dem``); they never change
anything except a write probe they create and remove at once.

See docs/check.md for what each check means.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from s2l2a.campaign.layout import CampaignLayout
from s2l2a.diskspace import existing_ancestor, free_bytes
from s2l2a.errors import S2L2AError
from s2l2a.registry import get_scheduler, processor_names, processor_plugin, scheduler_names

#: every check, in the order they run and print
CHECKS = ("processor", "esacci", "cams", "dem", "gipp", "memory", "disk", "writable", "scheduler")
OK, FAIL, WARN, SKIP = "ok", "fail", "warn", "skip"

#: done products measured to estimate the next ones (before any is done, each processor declares
#: an estimate: ProcessorPlugin.output_mb)
MEASURE_SAMPLE = 20
#: the Sen2Cor release that first reads processing baseline 04.00 products (radiometric offset)
SEN2COR_FOR_BASELINE_04 = (2, 10, 0)


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict: ``message`` says what was found, ``fix`` what to do about a failure."""

    name: str
    status: str
    message: str
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    @property
    def text(self) -> str:
        """``disk: ... — what to do`` (one line; the fix follows an em dash)."""
        text = f"{self.name}: {self.message}"
        return f"{text} — {self.fix}" if self.fix else text

    def line(self, symbols: Mapping[str, str] | None = None) -> str:
        """``✓ disk: ...``: the text after the status mark."""
        return f"{(symbols or SYMBOLS)[self.status]} {self.text}"


SYMBOLS = {OK: "✓", FAIL: "✗", WARN: "!", SKIP: "-"}
ASCII_SYMBOLS = {OK: "ok", FAIL: "FAIL", WARN: "warn", SKIP: "skip"}


@dataclass
class RunPlan:
    """What a run would do: the engine, its options and the jobs it would start."""

    engine: str = "local"                     # local | dask | slurm | lsf | pbs
    processor: str | None = None              # overrides [campaign] processor
    memory_mb: int | None = None              # overrides [resources] memory_mb
    workers: int | None = None
    node_cores: int | None = None             # cluster nodes (else [cluster] node_cores)
    node_memory_mb: int | None = None
    max_concurrent: int | None = None
    job_ids: Sequence[int] = ()
    limit: int | None = None
    skip: Iterable[str] = field(default_factory=tuple)


class _Context:
    """What several checks need, computed once (the processor is resolved a single time)."""

    def __init__(self, campaign: Path, settings: Any, jobs: list[Any], done: list[Any], plan: RunPlan) -> None:
        self.campaign, self.settings, self.jobs, self.done, self.plan = campaign, settings, jobs, done, plan
        self.name = plan.processor or settings.processor
        self.resolved: str | None = None          # builtin | sen2cor | noop once known
        self.exe: Path | None = None
        self.version: str | None = None           # "2.8.0"
        self.install: Any = None                  # sen2cor.layout.Sen2CorInstall
        self.assigned: list[tuple[Any, list[Any]]] = []  # (sen2cor.installs.Install, the queued jobs it runs)

    @property
    def cluster(self) -> dict[str, Any]:
        value = self.settings.extra.get("cluster") or {}
        return value if isinstance(value, dict) else {}


def queued_jobs(store: Any, job_ids: Sequence[int] = (), limit: int | None = None) -> list[Any]:
    """The jobs a run would start, selected the way ``run`` selects them."""
    jobs = store.jobs(states="queued", job_ids=list(job_ids) or None)
    return jobs[:limit] if limit else jobs


def run_checks(campaign: Path | str, settings: Any, store: Any, plan: RunPlan | None = None) -> list[CheckResult]:
    """Every check of :data:`CHECKS` for a run described by ``plan`` (skipped ones marked skip)."""
    plan = plan or RunPlan()
    campaign = Path(campaign).resolve()
    skip = set(plan.skip)
    ctx = _Context(campaign, settings, queued_jobs(store, plan.job_ids, plan.limit), store.jobs(states="done"),
                   plan)
    out = []
    for name in CHECKS:
        if name in skip:
            out.append(CheckResult(name, SKIP, "skipped (--skip-check)"))
            if name == "processor":
                _resolve_quietly(ctx)
            continue
        try:
            result = _CHECKS[name](ctx)
            if name == "memory" and plan.engine in scheduler_names():
                result = _with_memory_proposal(result, ctx, store)
            out.append(result)
        except S2L2AError as e:  # a check that cannot complete is a failure saying why
            out.append(CheckResult(name, FAIL, str(e)))
    return out


def _with_memory_proposal(result: CheckResult, ctx: _Context, store: Any) -> CheckResult:
    """The memory check of a cluster run, with the memory_mb the campaign's measured peaks
    propose when it differs from what the run asks for (shown, never applied)."""
    from s2l2a.campaign.usage import measured_peaks
    from s2l2a.engines.sizing import propose_memory_mb

    asked = ctx.plan.memory_mb or ctx.cluster.get("memory_mb") or ctx.settings.memory_mb
    if isinstance(asked, bool) or not isinstance(asked, int):
        return result
    proposed, why = propose_memory_mb(measured_peaks(store.attempts()), asked)
    if proposed is None or proposed == asked:
        return result
    return replace(result, message=f"{result.message}; {why.removeprefix('memory per product: ')}")


# -- processor and Sen2Cor ------------------------------------------------------------------------

def _config_hint(campaign: Path, key: str, value: str) -> str:
    return f"'s2l2a config {campaign} {key} {value}'"


def _resolve_quietly(ctx: _Context) -> None:
    try:
        _check_processor(ctx)
    except S2L2AError:
        pass


def _check_processor(ctx: _Context) -> CheckResult:
    from s2l2a.processors import find_sen2cor

    name, s = ctx.name, ctx.settings
    if name not in ("auto", "builtin", "sen2cor"):  # a plug-in: it says what it is
        ctx.resolved = name
        return CheckResult("processor", OK, f"{name} ({processor_plugin(name).summary})")
    options = s.sen2cor
    if name == "auto":
        name = "sen2cor" if find_sen2cor(options) is not None else "builtin"
    if name == "builtin":
        ctx.resolved = "builtin"
        if ctx.name == "auto" and options.get("l2a_process"):  # configured, then moved or removed
            return CheckResult("processor", WARN, f"auto: no executable Sen2Cor at the configured "
                               f"{options['l2a_process']}, so the built-in processor runs",
                               f"fix it with {_config_hint(ctx.campaign, 'sen2cor.l2a_process', 'PATH')}")
        how = " (auto: no Sen2Cor found)" if ctx.name == "auto" else ""
        return CheckResult("processor", OK, f"built-in processor{how}; it reads every processing baseline")
    ctx.resolved = "sen2cor"
    exe = find_sen2cor(options)
    if exe is None:
        configured = options.get("l2a_process")
        what = (f"no executable Sen2Cor L2A_Process at {configured}" if configured else
                "no Sen2Cor L2A_Process was found (not configured, no $SEN2COR_BIN, not on PATH)")
        return CheckResult("processor", FAIL, what,
                           f"point to it with {_config_hint(ctx.campaign, 'sen2cor.l2a_process', 'PATH')} or "
                           f"use the built-in one: {_config_hint(ctx.campaign, 'campaign.processor', 'builtin')}")
    from s2l2a.sen2cor.installs import load
    from s2l2a.sen2cor.locate import read_info

    try:
        info = read_info(exe, python=options.get("python"))
        installs = load(options)
    except S2L2AError as e:
        return CheckResult("processor", FAIL, str(e), "check the install with 's2l2a sen2cor check'")
    ctx.exe, ctx.version = exe, "{}.{}.{}".format(*info.number)
    what = f"Sen2Cor {info.version} at {exe}"
    refused = _assign(ctx, installs)
    if refused:
        job, why = refused[0]
        return CheckResult("processor", FAIL, f"{len(refused)} queued product(s) no configured Sen2Cor reads, "
                           f"e.g. {job.name}: {why}",
                           "add an install that reads them (installs = [...] under [sen2cor]; docs/sen2cor.md), "
                           "or leave them out (--job IDs)")
    baselines = sorted({j.baseline for j in ctx.jobs if j.baseline})
    new = [j for inst, jobs in ctx.assigned if inst.info.number < SEN2COR_FOR_BASELINE_04
           for j in jobs if j.baseline and j.baseline >= "04.00"]
    if new:
        return CheckResult(
            "processor", FAIL,
            f"{what} predates processing baseline 04.00 (it would ignore the radiometric offset), and "
            f"{len(new)} queued product(s) are 04.00 or later, e.g. {new[0].name}",
            f"install Sen2Cor 2.10 or later and point to it with "
            f"{_config_hint(ctx.campaign, 'sen2cor.l2a_process', 'PATH')}")
    pb = s.sen2cor.get("processing_baseline")
    if pb and not info.supports("--processing_baseline"):
        return CheckResult("processor", FAIL, f"{what} has no --processing_baseline option, so "
                           f"[sen2cor] processing_baseline = {pb!r} cannot be honoured",
                           f"remove it ('s2l2a config {ctx.campaign} sen2cor.processing_baseline --unset') "
                           "or install Sen2Cor 2.8 or later")
    fits = f"fits baselines {baselines[0]}..{baselines[-1]}" if len(baselines) > 1 else (
        f"fits baseline {baselines[0]}" if baselines else "no queued products")
    if len(installs) > 1:
        fits += "; " + ", ".join(f"{len(jobs)} on {inst.label}" for inst, jobs in ctx.assigned)
    return CheckResult("processor", OK, f"{what}; {fits}")


def _assign(ctx: _Context, installs: list[Any]) -> list[tuple[Any, str]]:
    """Each queued job to the install that reads its product version; (job, why) for those none reads."""
    from s2l2a.safe.psd import read_product_version
    from s2l2a.sen2cor.installs import choose

    ctx.assigned = [(inst, []) for inst in installs]
    refused = []
    for job in ctx.jobs:
        inst, why = choose(installs, read_product_version(job.path))
        if inst is None:
            refused.append((job, why))
        else:
            ctx.assigned[installs.index(inst)][1].append(job)
    return refused


def _sen2cor_install(ctx: _Context) -> Any:
    """The install as ``s2l2a sen2cor check`` sees it (None when the processor is not Sen2Cor)."""
    if ctx.resolved != "sen2cor" or ctx.exe is None or ctx.version is None:
        return None
    if ctx.install is None:
        from s2l2a.sen2cor.layout import describe

        ctx.install = describe(ctx.exe, version=ctx.version, python=ctx.settings.sen2cor.get("python"))
    return ctx.install


def _not_sen2cor(ctx: _Context, name: str) -> CheckResult | None:
    if ctx.resolved == "sen2cor" and ctx.exe is None:
        return CheckResult(name, SKIP, "not checked: no usable Sen2Cor (see the processor check)")
    if ctx.resolved != "sen2cor":
        return CheckResult(name, SKIP, f"not needed ({ctx.resolved or 'unknown'} processor)")
    return None


def _installs_in_use(ctx: _Context) -> list[Any]:
    """The first install as ``s2l2a sen2cor check`` sees it, then every other one queued jobs run on."""
    from s2l2a.sen2cor.layout import describe

    first = _sen2cor_install(ctx)
    out = [first]
    for inst, jobs in ctx.assigned[1:]:
        if jobs:
            out.append(describe(inst.program, ".".join(map(str, inst.info.number)),
                                python=ctx.settings.sen2cor.get("python")))
    return out


def _check_esacci(ctx: _Context) -> CheckResult:
    if (r := _not_sen2cor(ctx, "esacci")) is not None:
        return r
    found = []
    for inst in _installs_in_use(ctx):
        if not inst.traits.esacci:
            found.append(f"Sen2Cor {inst.version} reads no ESA-CCI data")
            continue
        if inst.aux_data_dir is None:
            # an unknown layout: say so rather than refuse a working install
            return CheckResult("esacci", WARN, f"cannot tell where Sen2Cor at {inst.root} keeps its aux_data "
                               "(no lib/python*/site-packages/sen2cor, no SEN2COR_3); ESA-CCI files not checked",
                               f"see 's2l2a sen2cor check {inst.root}'")
        missing = inst.esacci_missing()
        if missing:
            return CheckResult("esacci", FAIL, f"{len(missing)} ESA-CCI item(s) missing in {inst.aux_data_dir}: "
                               + ", ".join(missing),
                               f"install them with 's2l2a sen2cor aux --esacci FILE --sen2cor {inst.root}'")
        found.append(f"ESA-CCI land cover, water bodies and snow condition in {inst.aux_data_dir}")
    return CheckResult("esacci", OK, "; ".join(found))


def _check_cams(ctx: _Context) -> CheckResult:
    """Sen2Cor 3 reads ECMWF CAMS from its aux_data: every queued product's date must be covered."""
    if (r := _not_sen2cor(ctx, "cams")) is not None:
        return r
    from datetime import date

    from s2l2a.sen2cor.cams import coverage, uncovered
    from s2l2a.sen2cor.layout import describe

    checked = []
    for inst, jobs in ctx.assigned:
        if inst.info.number < (3, 0, 0) or not jobs:
            continue
        d = describe(inst.program, ".".join(map(str, inst.info.number)), python=ctx.settings.sen2cor.get("python"))
        cov = coverage(d)
        days = [date.fromisoformat(j.sensing_time[:10]) for j in jobs]
        if cov.empty and cov.undated:
            return CheckResult("cams", WARN, f"the CAMS files of {d.aux_data_dir} carry no dates s2l2a can read "
                               f"({cov.span()}); coverage of {len(days)} product date(s) not checked",
                               "see docs/sen2cor.md (CAMS)")
        missing = uncovered(days, cov)
        if missing:
            shown = ", ".join(str(m) for m in missing[:5]) + (f" (and {len(missing) - 5} more)" if len(missing) > 5
                                                                else "")
            return CheckResult("cams", FAIL, f"{inst.label} reads CAMS from {d.aux_data_dir / 'ECMWF'}, which has "
                               f"nothing for {len(missing)} queued product date(s): {shown} (it has {cov.span()})",
                               f"add them with 's2l2a sen2cor aux --cams-daily DIR --sen2cor {d.root}'")
        checked.append(f"{inst.label}: {len(set(days))} product date(s) covered ({cov.span()})")
    if not checked:
        return CheckResult("cams", OK, "no queued product runs on a Sen2Cor that reads CAMS from its aux_data (3.x)")
    return CheckResult("cams", OK, "; ".join(checked))


def _check_dem(ctx: _Context) -> CheckResult:
    if ctx.resolved == "builtin":
        return _check_builtin_dem(ctx)
    if (r := _not_sen2cor(ctx, "dem")) is not None:
        return r
    from s2l2a.auxdata.dem import MANIFEST, DemLayout, footprints_of, uncovered_products

    dem_dir = CampaignLayout.of(ctx.campaign, ctx.settings).dem
    if not (dem_dir / MANIFEST).is_file():
        return CheckResult("dem", WARN, "no DEM prepared; Sen2Cor then corrects terrain as if it were flat",
                           f"prepare one with 's2l2a dem {ctx.campaign}' (then 's2l2a sen2cor gipp')")
    layout = DemLayout.load(dem_dir)
    kind = _dem_kind(ctx.version or layout.version)
    if kind != layout.kind:
        return CheckResult("dem", FAIL, f"the DEM in {dem_dir} is laid out for Sen2Cor {layout.version} "
                           f"({layout.kind}); Sen2Cor {ctx.version} reads the {kind} layout",
                           f"re-run 's2l2a dem {ctx.campaign}'")
    if not ctx.jobs:
        return CheckResult("dem", OK, f"{layout.source} DEM in {dem_dir} (no queued products to cover)")
    footprints = footprints_of(j.path for j in ctx.jobs)
    bad = uncovered_products(footprints, layout)
    if bad:
        shown = "; ".join(f"{k}: {v}" for k, v in list(bad.items())[:3])
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        return CheckResult("dem", FAIL, f"the DEM does not cover {len(bad)} of {len(footprints)} queued "
                           f"product(s): {shown}{more}", f"re-run 's2l2a dem {ctx.campaign}'")
    return CheckResult("dem", OK, f"{layout.source} DEM in {dem_dir} covers all {len(footprints)} queued "
                       "product footprint(s)")


def _check_builtin_dem(ctx: _Context) -> CheckResult:
    """Which DEM the built-in processor's jobs will read (the rule of the run: layout.processor_dem)."""
    from s2l2a.processors.builtin.dem import DemError, dem_sources

    setting = ctx.settings.processor_options("builtin").get("dem")
    dem = CampaignLayout.of(ctx.campaign, ctx.settings).processor_dem(setting)
    if dem is None:
        if setting is False:
            return CheckResult("dem", OK, "[builtin] dem = false: the built-in processor corrects flat terrain")
        # flat terrain is the built-in processor's default, not a warning on every run
        return CheckResult("dem", OK, f"no DEM: the built-in processor corrects flat terrain ('s2l2a dem "
                           f"{ctx.campaign}' prepares one for terrain correction)")
    try:
        _, desc = dem_sources(dem)
    except DemError as e:
        return CheckResult("dem", FAIL, f"the built-in processor's DEM: {e}",
                           f"fix [builtin] dem or re-run 's2l2a dem {ctx.campaign}'")
    return CheckResult("dem", OK, f"the built-in processor reads {desc}")


def _dem_kind(version: str) -> str:
    """The DEM layout kind a Sen2Cor version reads (whatever source the campaign used)."""
    from s2l2a.sen2cor.layout import traits

    t = traits(version)
    if t.dem == "copernicus":
        return "copernicus"
    return "srtm-merged" if t.srtm_merge_bug else "srtm"


def _check_gipp(ctx: _Context) -> CheckResult:
    if (r := _not_sen2cor(ctx, "gipp")) is not None:
        return r
    from s2l2a.sen2cor.command import _gipp_args
    from s2l2a.sen2cor.gipp import RECORD, GippSet, validate, verify

    inst = _sen2cor_install(ctx)
    stems = {"--GIP_L2A": "L2A_GIPP", "--GIP_L2A_SC": "L2A_CAL_SC_GIPP", "--GIP_L2A_AC": "L2A_CAL_AC_GIPP",
             "--GIP_L2A_PB": "L2A_PB_GIPP"}
    configured = ctx.settings.sen2cor.get("gipp")
    copies = CampaignLayout.of(ctx.campaign, ctx.settings).gipp
    if configured:
        pairs = _gipp_args(configured)
        record = Path(str(configured)).expanduser()
        if record.is_dir() and (record / RECORD).is_file():
            verify(GippSet.load(record), inst.schemas)
        for flag, path in pairs:
            xsd = inst.schemas.get(stems[flag])
            if xsd is not None:
                validate(path, xsd)
        checked = sum(1 for f, _ in pairs if stems[f] in inst.schemas)
        return CheckResult("gipp", OK, f"{len(pairs)} GIPP file(s) from [sen2cor] gipp; {checked} valid against "
                           f"Sen2Cor {inst.version}'s schemas")
    if (copies / RECORD).is_file():
        verify(GippSet.load(copies), inst.schemas)
        return CheckResult("gipp", WARN, f"the campaign's GIPP copies in {copies} are valid but not used: "
                           "[sen2cor] gipp is not set",
                           f"use them with {_config_hint(ctx.campaign, 'sen2cor.gipp', str(copies))}")
    if inst.package_dir is not None:
        lacking = [m for m in inst.missing if m.startswith("GIPP")]
        if lacking:
            return CheckResult("gipp", FAIL, f"Sen2Cor at {inst.root} lacks {'; '.join(lacking)}",
                               "reinstall Sen2Cor ('s2l2a sen2cor install')")
    return CheckResult("gipp", OK, "Sen2Cor's own GIPP (no campaign copies; 's2l2a sen2cor gipp' writes them)")


# -- resources ------------------------------------------------------------------------------------

def _job_memory(ctx: _Context) -> int:
    return int(ctx.plan.memory_mb or ctx.settings.memory_mb)


def _scheduler_nodes(engine: str, queue: object) -> tuple[int, int, str] | None:
    """(cores, memory MB, " (from <command>)") of the largest node of ``queue`` (a job must fit
    one) as the scheduler reports it (sinfo, lshosts, pbsnodes); None when it does not say."""
    from s2l2a.engines.cluster import make_scheduler
    from s2l2a.engines.scheduler import ClusterOptions

    try:
        told = make_scheduler(engine, ClusterOptions()).read_site(queue if isinstance(queue, str) else None)
    except S2L2AError:  # a plug-in's scheduler that cannot be built without its settings
        return None
    if not (told.largest_cores and told.largest_memory_mb):
        return None
    return told.largest_cores, told.largest_memory_mb, f" (from {told.sources.get('node_cores', engine)})"


def _check_memory(ctx: _Context) -> CheckResult:
    from s2l2a.machine import machine_resources

    engine, s = ctx.plan.engine, ctx.settings
    memory, cores = _job_memory(ctx), int(s.cores_per_job)
    ask = f"{cores} core(s) and {memory} MB per job"
    if engine == "dask":
        return CheckResult("memory", SKIP, f"{ask}; the Dask cluster's workers are not checked from here")
    if engine in scheduler_names():
        node_cores = ctx.plan.node_cores or ctx.cluster.get("node_cores") or 0
        node_mem = ctx.plan.node_memory_mb or ctx.cluster.get("node_memory_mb") or 0
        where = ""
        if not (node_cores and node_mem):  # what the scheduler says about the queue's nodes
            told = _scheduler_nodes(engine, ctx.cluster.get("queue"))
            if told is not None and not (node_cores or node_mem):
                node_cores, node_mem, where = told
        if node_cores and node_mem:
            if cores > int(node_cores) or memory > int(node_mem):
                return CheckResult("memory", FAIL, f"{ask} does not fit a node of {node_cores} cores and "
                                   f"{node_mem} MB{where}", f"lower it with {_config_hint(ctx.campaign, 'resources.memory_mb', 'N')}"
                                   " or ask for bigger nodes")
            return CheckResult("memory", OK, f"{ask} fits a node of {node_cores} cores and {node_mem} MB{where}")
        above = s.above_machine(memory_mb=memory)
        if above:
            return CheckResult("memory", WARN, f"{'; '.join(above)} (this login node); the nodes' size is unknown",
                               "set [cluster] node_cores and node_memory_mb (or --node-cores, --node-memory-mb) "
                               "to check it")
        return CheckResult("memory", OK, f"{ask} (the nodes' size is unknown; fits this machine)")
    machine = machine_resources()
    above = s.above_machine(machine, memory_mb=memory)
    if above:
        return CheckResult("memory", FAIL, "; ".join(above),
                           f"lower it ({_config_hint(ctx.campaign, 'resources.memory_mb', 'N')}, "
                           "resources.cores_per_job) or run on a cluster (--engine slurm|lsf|pbs)")
    return CheckResult("memory", OK, f"{ask} fits this machine ({machine[0]} cores, {machine[1]} MB)")


def free_mb(path: Path | str) -> int:
    """Free space in MB (for this user) on the file system that holds, or would hold, ``path``."""
    return free_bytes(path) // 2**20


def _tree_mb(path: Path) -> float:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                continue
    return total / 2**20


def product_size_mb(done_jobs: Sequence[Any], processor: str | None) -> tuple[int, str]:
    """One product's outputs in MB: the mean of the last done ones, else the documented estimate."""
    sizes = [_tree_mb(Path(j.output_path)) for j in list(done_jobs)[-MEASURE_SAMPLE:]
             if j.output_path and Path(j.output_path).is_dir()]
    if sizes:
        return max(1, round(sum(sizes) / len(sizes))), f"measured on {len(sizes)} done product(s)"
    name = processor if processor in processor_names(auto=False) else "builtin"
    return processor_plugin(name).output_mb, "estimate"


def disk_floor_mb(settings: Any, done_jobs: Sequence[Any], processor: str | None) -> int:
    """Below this much free space a run starts no new job: ``[resources] min_free_mb``, else one
    product's outputs."""
    if settings.min_free_mb is not None:
        return int(settings.min_free_mb)
    return product_size_mb(done_jobs, processor)[0]


def _concurrency(ctx: _Context) -> int:
    n = len(ctx.jobs)
    if ctx.plan.engine in ("local", "dask"):
        from s2l2a.engines.base import plan_capacity

        cap = plan_capacity(int(ctx.settings.cores_per_job), _job_memory(ctx),
                            workers=ctx.plan.workers or ctx.settings.workers or None, n_jobs=n)
        return min(n, cap.slots)
    k = ctx.plan.max_concurrent or ctx.cluster.get("max_concurrent") or 0
    return min(n, int(k)) if k else n


def _gb(mb: float) -> str:
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def _check_disk(ctx: _Context) -> CheckResult:
    from s2l2a.campaign.execute import campaign_staging_root

    n = len(ctx.jobs)
    per_job, how = product_size_mb(ctx.done, ctx.resolved)
    floor = disk_floor_mb(ctx.settings, ctx.done, ctx.resolved)
    output = ctx.settings.output_root(ctx.campaign)
    scratch = campaign_staging_root(ctx.campaign, ctx.settings)
    needs = {"output": (output, n * per_job), "scratch": (scratch, _concurrency(ctx) * per_job)}
    by_device: dict[int, list[tuple[str, Path, int]]] = {}
    for role, (path, need) in needs.items():
        by_device.setdefault(existing_ancestor(path).stat().st_dev, []).append((role, path, need))
    problems, parts = [], []
    for entries in by_device.values():
        where = " and ".join(f"{r} {p}" for r, p, _ in entries)
        need = sum(need for _, _, need in entries) + floor
        free = free_mb(entries[0][1])
        parts.append(f"{where}: {_gb(free)} free, {_gb(need)} needed")
        if free < need:
            problems.append(f"{where}: {_gb(free)} free, but {n} queued job(s) need about {_gb(need)} "
                            f"({_gb(per_job)} per product, {how}; {_gb(floor)} kept free)")
    if problems:
        return CheckResult("disk", FAIL, "; ".join(problems),
                           "free some space, move the outputs or scratch "
                           f"({_config_hint(ctx.campaign, 'campaign.output_dir', 'PATH')}), or run fewer (--limit N)")
    return CheckResult("disk", OK, "; ".join(parts) + f" ({_gb(per_job)} per product, {how})")


def _probe_write(folder: Path) -> str | None:
    """None when a file can be created (and is removed again) in ``folder``, else why not."""
    probe = folder / f".s2l2a-write-probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        return e.strerror or str(e)
    os.close(fd)
    probe.unlink(missing_ok=True)
    return None


def _check_writable(ctx: _Context) -> CheckResult:
    from s2l2a.campaign.execute import campaign_staging_root

    places = {"campaign": ctx.campaign, "logs": CampaignLayout.of(ctx.campaign, ctx.settings).logs,
              "output": ctx.settings.output_root(ctx.campaign),
              "scratch": campaign_staging_root(ctx.campaign, ctx.settings)}
    bad = []
    for role, path in places.items():
        where = existing_ancestor(path)
        if not where.is_dir():
            bad.append(f"{role} {path}: {where} is not a folder")
            continue
        why = _probe_write(where)
        if why:
            bad.append(f"{role} {path}: cannot write in {where} ({why})")
    if bad:
        return CheckResult("writable", FAIL, "; ".join(bad),
                           "fix the permissions or choose other folders "
                           f"({_config_hint(ctx.campaign, 'campaign.scratch_dir', 'PATH')})")
    return CheckResult("writable", OK, "campaign, logs, output and scratch folders can be written")


def _check_scheduler(ctx: _Context) -> CheckResult:
    engine = ctx.plan.engine
    if engine not in scheduler_names():
        return CheckResult("scheduler", SKIP, f"not needed ({engine} engine)")
    commands = get_scheduler(engine).commands
    missing = [c for c in commands if shutil.which(c) is None]
    if missing:
        return CheckResult("scheduler", FAIL, f"{', '.join(missing)} not found on PATH",
                           f"run from a login node of the {engine} cluster (or load its module)")
    return CheckResult("scheduler", OK, f"{', '.join(commands)} found")


_CHECKS = {"processor": _check_processor, "esacci": _check_esacci, "cams": _check_cams, "dem": _check_dem,
           "gipp": _check_gipp,
           "memory": _check_memory, "disk": _check_disk, "writable": _check_writable,
           "scheduler": _check_scheduler}


def symbols() -> dict[str, str]:
    """✓/✗ where standard output can take them (its encoding), plain words otherwise."""
    import sys

    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "✓✗—".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return ASCII_SYMBOLS
    return SYMBOLS
