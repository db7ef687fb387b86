"""The public Python API: a campaign as an object.

    import s2l2a

    c = s2l2a.Campaign.create("/data/camp", processor="builtin")
    c.plan(["/data/L1C"])
    summary = c.run()                # local; c.run(engine="slurm", queue="short", wait=True) ...
    c.status()["counts"]             # {"queued": 0, "running": 0, "done": 12, ...}

The command line is one caller of this class, a notebook another: every method does what the
command of the same name does and returns data instead of printing. User mistakes raise
:class:`s2l2a.errors.S2L2AError` subclasses (ConfigError, CampaignError, ProductError), one line
each; nothing here calls ``sys.exit``. See docs/api.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from s2l2a import defaults
from s2l2a.errors import CampaignError, ConfigError

__all__ = ["Campaign", "NothingPlanned", "StacResult"]


class NothingPlanned(CampaignError):
    """A plan found nothing it could use (``report`` says what it saw, e.g. the rejected inputs)."""

    def __init__(self, message: str, report: Any) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class StacResult:
    """What :meth:`Campaign.stac` wrote: the collection file and the products left out (one line each)."""

    collection: Path
    skipped: list[str] = field(default_factory=list)


class Campaign:
    """One campaign directory (``s2l2a.toml``, ``campaign.sqlite``, logs, outputs).

    Make one with :meth:`create` or :meth:`open`. The object holds only the path: every call
    reads the campaign afresh, so several objects (or processes) may look at the same campaign;
    only :meth:`run` takes the run lock.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).resolve()

    def __repr__(self) -> str:
        return f"Campaign({str(self.path)!r})"

    # -- creating and opening -----------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path | str, processor: str = "auto", *, memory_mb: int = defaults.MEMORY_MB,
               cores_per_job: int = defaults.CORES_PER_JOB, timeout_s: float = defaults.TIMEOUT_S,
               sen2cor: Path | str | None = None, name: str | None = None, force: bool = False) -> Campaign:
        """Create a campaign in ``path`` (settings file, job database, log folder).

        ``processor``: auto (Sen2Cor when configured or found, else built-in), builtin or sen2cor;
        ``sen2cor``: Sen2Cor's L2A_Process or its installation folder. An existing campaign is
        refused unless ``force`` (its settings are then rewritten, its jobs kept).
        """
        from s2l2a.campaign.settings import SETTINGS_FILE, CampaignSettings
        from s2l2a.campaign.store import CampaignStore

        path = Path(path)
        if (path / SETTINGS_FILE).exists() and not force:
            raise CampaignError(f"a campaign exists here ({SETTINGS_FILE}); change a setting with 's2l2a config "
                                f"{path} KEY VALUE', or use --force to overwrite them all", path)
        if path.exists() and not path.is_dir():
            raise CampaignError("exists and is not a directory", path)
        timeout = int(timeout_s) if float(timeout_s).is_integer() else timeout_s
        settings = CampaignSettings(name=name or path.resolve().name, processor=processor, memory_mb=memory_mb,
                                    cores_per_job=cores_per_job, timeout_s=timeout)
        if sen2cor is not None:
            settings.sen2cor["l2a_process"] = str(Path(sen2cor).resolve())
        settings.validate()
        require_sen2cor(settings, "--sen2cor", "give --sen2cor PATH")
        created = not path.exists()
        path.mkdir(parents=True, exist_ok=True)
        try:
            settings.save(path)
        except BaseException:
            if created:  # leave nothing behind for a refused create (rmdir: only while still empty)
                with contextlib.suppress(OSError):
                    path.rmdir()
            raise
        from s2l2a.campaign.layout import CampaignLayout

        CampaignLayout.of(path).logs.mkdir(exist_ok=True)
        CampaignStore.open(path, create=True).close()
        return cls(path)

    @classmethod
    def open(cls, path: Path | str) -> Campaign:
        """An existing campaign; ConfigError (one line) when ``path`` is none or its settings are invalid."""
        from s2l2a.campaign.settings import CampaignSettings

        CampaignSettings.load(path)
        return cls(path)

    # -- settings -----------------------------------------------------------------------------------

    @property
    def settings(self) -> Any:
        """The campaign's settings (a CampaignSettings, read now)."""
        from s2l2a.campaign.settings import CampaignSettings

        return CampaignSettings.load(self.path)

    def config(self, key: str | None = None, value: Any = None, *, unset: bool = False) -> Any:
        """Read or change settings, checked like :meth:`create` before anything is saved.

        ``config()``: every setting as ``{"section.key": value}``; ``config("memory_mb")``: one
        (bare keys of [campaign] and [resources] allowed); ``config("resources.memory_mb", 2048)``
        or ``config("sen2cor.gipp", unset=True)`` change one and return the new value (None: unset).
        """
        from s2l2a.campaign.settings import SETTINGS_FILE, CampaignSettings

        settings = self.settings
        data = settings.to_dict()
        if key is None:
            if unset or value is not None:
                raise ConfigError("config: give the KEY to change")
            return dict(_flatten(data))
        from s2l2a.campaign.settings import setting_key

        path = setting_key(key)
        if value is None and not unset:
            found, current = _get(data, path)
            if not found:
                raise ConfigError(f"{'.'.join(path)} is not set", self.path / SETTINGS_FILE)
            return current
        if value is not None and unset:
            raise ConfigError("config: give either a value or unset=True")
        if unset:
            _delete(data, path)
        else:
            check_declared(path, value)
            _put(data, path, value)
        new = CampaignSettings.from_dict(data, source=self.path / SETTINGS_FILE)
        if ".".join(path) in ("campaign.processor", "sen2cor.l2a_process"):
            require_sen2cor(new, "sen2cor.l2a_process",
                            f"set it first with 's2l2a config {self.path} sen2cor.l2a_process PATH'")
        new.save(self.path)
        return _get(new.to_dict(), path)[1]

    # -- the work -----------------------------------------------------------------------------------

    def plan(self, roots: Iterable[Path | str], *, workers: int | None = None,
             on_progress: Callable[[int, int], None] | None = None) -> Any:
        """Find the L1C products under ``roots`` and plan one job each (safe to repeat); returns the
        PlanReport (``added``, ``already_planned``, ``rejected``, ..., ``to_dict()``).

        A root that does not exist is a CampaignError; a plan that found nothing usable raises
        NothingPlanned (its ``report`` holds the rejected inputs). Nothing new is not an error.
        ``on_progress(done, total)`` is called after each product read.
        """
        from s2l2a.campaign.planner import check_roots, plan

        roots = list(roots)
        check_roots(roots)  # a typo is an error, not "nothing found"
        report = plan(self.path, roots, workers=workers, on_progress=on_progress)
        if not report.changed and not report.already_planned:
            where = ", ".join(map(str, roots))
            if report.rejected:
                raise NothingPlanned(f"nothing planned: every input under {where} was rejected (reasons in "
                                     f"report.rejected, also in 's2l2a status {self.path}')", report)
            raise NothingPlanned(f"no L1C product found under {where}; give the folder holding "
                                 "S2*_MSIL1C_*.SAFE folders or their .zip", report)
        return report

    def check(self, engine: str = "local", *, processor: str | None = None, memory_mb: int | None = None,
              node_cores: int | None = None, node_memory_mb: int | None = None,
              skip: Sequence[str] = ()) -> list[Any]:
        """The preflight checks of a run on ``engine`` (CheckResult: name, status, message, fix)."""
        from s2l2a.campaign.check import RunPlan, run_checks
        from s2l2a.campaign.store import CampaignStore

        settings = self.settings
        plan = RunPlan(engine=engine, processor=processor, memory_mb=memory_mb, node_cores=node_cores,
                       node_memory_mb=node_memory_mb, skip=tuple(skip))
        with CampaignStore.open(self.path) as store:
            return run_checks(self.path, settings, store, plan)

    def run(self, engine: str = "local", *, progress: Any = None, **options: Any) -> Any:
        """Run the queued jobs and return a RunSummary (``done``, ``failed``, ``exit_code``, ...).

        ``engine``: local, dask (``scheduler_address="tcp://host:8786"``) or a scheduler (slurm,
        lsf, pbs; ``dry_run``, ``wait``, ``queue``, ``account``, ``run_limit`` ("4h"),
        ``max_concurrent``, ``placement``, ``node_cores``, ``node_memory_mb``, ``exclusive``).
        Other options: ``processor``, ``workers``, ``memory_mb``, ``job_ids``, ``limit``,
        ``skip_checks``, and what to derive: ``derive`` (["ndvi"]), ``formulas``,
        ``derive_resolution``, ``clear_classes``, ``keep``, ``delete_l1c``.
        ``progress``: None (a bar on a terminal, lines off it), "lines", "quiet", or a callable
        that receives every :class:`s2l2a.campaign.progress.RunEvent`.
        """
        from s2l2a.campaign.run import CLUSTER_OVERRIDES, RunOptions, run_campaign

        known = {f.name for f in fields(RunOptions)} - {"engine", "cluster"}
        cluster: dict[str, Any] = {}
        kw: dict[str, Any] = {}
        for key, value in options.items():
            if key == "run_limit":
                from s2l2a.engines.cluster import parse_duration

                key, value = "run_limit_s", None if value is None else parse_duration(value, "run_limit")
            if key in CLUSTER_OVERRIDES:
                cluster[key] = value
            elif key in known:
                kw[key] = value
            else:
                raise ConfigError(f"run: unknown option {key!r} (known: "
                                  f"{', '.join(sorted(known | set(CLUSTER_OVERRIDES) | {'run_limit'}))})")
        for key in ("job_ids", "skip_checks", "formulas"):
            if key in kw:
                kw[key] = tuple(kw[key] or ())
        return run_campaign(self.path, RunOptions(engine=engine, cluster=cluster, **kw), progress=progress)

    # -- where it stands ----------------------------------------------------------------------------

    def status(self, *, log_tail: int = 5) -> dict[str, Any]:
        """Everything ``s2l2a status --json`` prints: counts, per tile, failures with their log
        tail, running jobs, rejected inputs, throughput and ETA, and (arrays submitted) per array
        the scheduler's states next to the result files. Folds what clusters sent back first."""
        from s2l2a.campaign.cluster import has_arrays, status_view
        from s2l2a.campaign.store import CampaignStore

        cluster: list[dict[str, Any]] = []
        with CampaignStore.open(self.path) as store:
            if has_arrays(self.path):  # arrays were submitted: fold results, ask the scheduler
                cluster = status_view(self.path, store)
            summary = store.summary(log_tail=log_tail)
        if cluster:
            summary["cluster"] = cluster
        return summary

    def verify(self) -> list[tuple[int, str]]:
        """Check every done output against its manifest (and open each raster); requeue those gone
        or incomplete. Returns (job id, problem) per requeued job. Refused while a run holds the
        campaign (CampaignLocked)."""
        from s2l2a.campaign.lock import RunLock
        from s2l2a.campaign.manifest import requeue_vanished
        from s2l2a.campaign.store import CampaignStore

        with CampaignStore.open(self.path) as store, RunLock(self.path):
            return requeue_vanished(self.path, store, full=True)

    def jobs(self, state: str | None = None) -> list[Any]:
        """The campaign's jobs (Job records), optionally only those in ``state``."""
        from s2l2a.campaign.store import CampaignStore

        with CampaignStore.open(self.path) as store:
            return store.jobs(states=state)

    def retry(self, *, failure_class: str | None = None, job_ids: Sequence[int] = ()) -> int:
        """Put failed jobs back in the queue (all, only ``failure_class``, or only ``job_ids``);
        returns how many. An unknown job id is a CampaignError; ids not failed are left alone."""
        from s2l2a.campaign.store import CampaignStore

        if failure_class is not None:
            from s2l2a.campaign.failures import FailureClass

            if failure_class not in {c.value for c in FailureClass}:
                raise ConfigError(f"retry: {failure_class!r} is not a failure class "
                                  f"({', '.join(c.value for c in FailureClass)})")
        with CampaignStore.open(self.path) as store:
            for jid in job_ids:
                store.job(int(jid))  # unknown id: one-line error
            return store.requeue(job_ids=[int(j) for j in job_ids] or None, failure_class=failure_class)

    # -- outputs ------------------------------------------------------------------------------------

    def derive(self, indices: Sequence[str] = ("ndvi",), *, formulas: Sequence[str] = (), resolution: int = 10,
               clear_classes: Sequence[int] | None = None, keep: str = "all", delete_l1c: bool = False,
               force: bool = False, threads: int = 1) -> list[Any]:
        """Indices, SCL and an optional clear-sky mask as COGs for every done product, into
        ``<campaign>/derived/<tile>/``, then the keep policy; one ProductDeriveOutcome each
        (``error`` set for a product that failed). Formulas are checked before any product.
        ``threads``: cores the COG compression may use."""
        from s2l2a.campaign.exports import derive_campaign
        from s2l2a.outputs.derive import DeriveSpec

        if keep == "l2a":
            raise ConfigError("keep 'l2a' derives nothing; use 'all' or 'derived'")
        spec = DeriveSpec(indices=tuple(i for i in indices if i.strip()), formulas=tuple(formulas),
                          resolution=int(resolution),
                          clear_classes=tuple(int(c) for c in clear_classes) if clear_classes else None)
        if not spec.parsed():  # a bad formula fails here, before any product is touched
            raise ConfigError("nothing to derive: give indices and/or formulas")
        return derive_campaign(self.path, spec, keep, delete_l1c=delete_l1c, force=force, threads=threads)

    def stac(self, out_dir: Path | str | None = None) -> StacResult:
        """A validated STAC collection with one item per converted product (default ``<campaign>/stac``)."""
        from s2l2a.campaign.exports import write_campaign_stac

        skipped: list[str] = []
        path = write_campaign_stac(self.path, out_dir, skipped=skipped)
        return StacResult(Path(path), skipped)

    def cube(self, out: Path | str, index: str | None = None, *, progress: Any = None, **options: Any) -> Any:
        """A cloud-masked index cube (Zarr) of the done products, or the dates done since appended to it;
        ``options`` are :class:`s2l2a.outputs.cube.CubeSpec` fields (aoi, resolution, crs, clear_classes,
        start, end, tile, time_chunk, workers, netcdf ...). Returns a CubeResult. See docs/cube.md."""
        from s2l2a.campaign.cubes import build_campaign_cube
        from s2l2a.outputs.cube import CubeSpec

        known = {f.name for f in fields(CubeSpec)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"cube: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return build_campaign_cube(self.path, out, CubeSpec(index=index, **options), progress=progress)

    def report(self, out: Path | str | None = None) -> Path:
        """One self-contained HTML page of the campaign (default ``<campaign>/report.html``)."""
        from s2l2a.campaign.exports import write_report

        if out is not None:
            parent = Path(out).absolute().parent
            if not parent.is_dir():
                raise ConfigError(f"-o: the folder {parent} does not exist; create it first or choose another path")
        return Path(write_report(self.path, out))

    # -- job arrays ---------------------------------------------------------------------------------

    def cancel(self, *, on_cancel: Callable[[Any], None] | None = None) -> tuple[list[Any], Any]:
        """Cancel every unfinished job array and record its jobs as killed; returns the cancelled
        ArrayRecords and the reconciliation (``lost``: the killed jobs)."""
        from s2l2a.campaign.cluster import cancel_arrays
        from s2l2a.campaign.lock import RunLock
        from s2l2a.campaign.store import CampaignStore

        with RunLock(self.path), CampaignStore.open(self.path) as store:
            return cancel_arrays(self.path, store, on_cancel=on_cancel)

    def extend(self, run_limit: float | str) -> list[Any]:
        """Raise the run limit of every unfinished array (seconds or "8h"); returns the arrays changed."""
        from s2l2a.campaign.cluster import extend_arrays
        from s2l2a.engines.cluster import parse_duration
        from s2l2a.engines.directives import refuse

        seconds = parse_duration(run_limit, "--run-limit")
        if seconds < 60:
            raise refuse("--run-limit", f"{seconds} s is less than one minute")
        return extend_arrays(self.path, seconds)


# -- helpers shared with the command line ----------------------------------------------------------

def require_sen2cor(settings: Any, option: str, how: str) -> None:
    """Refuse, in one line, settings that name a Sen2Cor that cannot be found.

    ``processor = "sen2cor"`` needs one (configured, ``$SEN2COR_BIN`` or on PATH), and a configured
    ``l2a_process`` must lead to an executable whatever the processor ("auto" would silently fall
    back to the built-in one). Used by :meth:`Campaign.create`, :meth:`Campaign.config` and ``s2l2a config``.
    """
    from s2l2a.processors import find_sen2cor

    configured = settings.sen2cor.get("l2a_process")
    if find_sen2cor(settings.sen2cor) is not None:
        return
    if configured:
        raise ConfigError(f"{option} {configured}: no executable Sen2Cor L2A_Process there (give the "
                          "L2A_Process file or the Sen2Cor install folder)")
    if settings.processor == "sen2cor":
        raise ConfigError("processor sen2cor: no Sen2Cor L2A_Process found (none configured, no $SEN2COR_BIN, "
                          f"none on PATH); {how}, or choose the built-in processor")


def check_declared(path: tuple[str, ...], value: Any) -> None:
    """The declared check of one key (s2l2a.registry), also where reading the file leaves values to
    their user (``[cluster]``: e.g. ``lsf_unit``; the chosen scheduler's name rules still apply at run time)."""
    from s2l2a import registry

    if len(path) == 2 and path[0] in registry.section_names():
        declared = registry.section(path[0])
        setting = declared.get(path[1]) if declared else None
        if setting is not None:
            setting.check_value(f"[{path[0]}] {path[1]}", value)


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in data.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out += _flatten(v, name + ".")
        elif not isinstance(v, dict):
            out.append((name, v))
    return out


def _get(data: dict[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    node: Any = data
    for p in path:
        if not isinstance(node, dict) or p not in node:
            return False, None
        node = node[p]
    return True, node


def _put(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = data
    for p in path[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"{'.'.join(path)}: {p} is a value, not a table")
        node = nxt
    if isinstance(node.get(path[-1]), dict):
        raise ConfigError(f"{'.'.join(path)} is a table; set one of its keys")
    node[path[-1]] = value


def _delete(data: dict[str, Any], path: tuple[str, ...]) -> None:
    node: Any = data
    for p in path[:-1]:
        node = node.get(p, {}) if isinstance(node, dict) else {}
    if isinstance(node, dict):
        node.pop(path[-1], None)
