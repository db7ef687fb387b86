"""The engine contracts: an engine only knows how to start jobs and say what became of them.

Two kinds, after what production calls (:mod:`s2l2a.campaign.run` is the only caller):

- :class:`Engine` (local, Dask): ``run(campaign_dir, specs)`` yields a JobOutcome per spec as it
  arrives; ``on_start(spec)`` lets the caller mark a job running just before it is handed out.
- :class:`BatchEngine` (Slurm, LSF, PBS): ``submit(script) -> id``, ``states(id)``, ``cancel(id)``,
  ``extend(id, walltime_s)``; outcomes come back as result files, folded by the campaign side.

Retry policy, state bookkeeping and the SQLite store live in ``campaign/``; engines take ready
:class:`~s2l2a.campaign.jobspec.JobSpec` objects (the caller turns job ids into specs, so an
engine never opens the store) and every job they start runs
:func:`s2l2a.campaign.execute.run_job`, locally or as ``s2l2a worker`` on a cluster node.

Attempt protocol (what makes folding idempotent): the submitting side calls
``store.start_attempt(job_id, ...)`` when it hands a job out and puts the returned number into
``JobSpec.attempt``; the outcome carries it back, and ``execute.fold_outcome`` records an outcome
only while the store still shows that very attempt running. A repeated result file, or one
from an attempt since closed as interrupted, changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from s2l2a.campaign.jobspec import JobOutcome, JobSpec
from s2l2a.machine import machine_resources


@runtime_checkable
class Engine(Protocol):
    """Runs jobs from this process (a LocalCluster, an existing Dask cluster)."""

    name: str

    def start(self) -> Any:
        """Connect or start workers (idempotent)."""
        ...

    def run(self, campaign_dir: Path, specs: Sequence[JobSpec],
            on_start: Callable[[JobSpec], bool | None] | None = None) -> Iterator[JobOutcome]:
        """Run the specs, yielding each outcome as it arrives; ``on_start(spec)`` False skips one."""
        ...

    def close(self) -> None:
        """Stop (or disconnect from) the workers; jobs still running are killed with them."""
        ...


@runtime_checkable
class BatchEngine(Protocol):
    """Job arrays on a batch scheduler, addressed by the scheduler's id of an array."""

    name: str

    def submit(self, script: Path, cwd: Path) -> str:
        """Submit one array script from ``cwd``; the scheduler's id of the array."""
        ...

    def states(self, job_id: str) -> Any:
        """``{element index: ElementState}``; None when the scheduler could not be asked."""
        ...

    def cancel(self, job_id: str) -> None:
        """Cancel the whole array."""
        ...

    def extend(self, job_id: str, walltime_s: int) -> None:
        """Raise the array's run limit."""
        ...


@dataclass(frozen=True)
class Capacity:
    """How many conversions run at once on one machine, and why (shown to the user)."""

    slots: int
    machine_cores: int
    machine_memory_mb: int
    job_cores: int
    job_memory_mb: int
    limited_by: str          # "cores" | "memory" | "--workers" | "jobs"

    def describe(self) -> str:
        return (f"{self.slots} at a time ({self.machine_cores} cores, {self.machine_memory_mb} MB; "
                f"{self.job_cores} core(s) and {self.job_memory_mb} MB per job; limited by {self.limited_by})")


def plan_capacity(job_cores: int, job_memory_mb: int, *, workers: int | None = None, n_jobs: int | None = None,
                  machine: tuple[int, int] | None = None) -> Capacity:
    """Parallel conversions = min(cores / cores per job, memory / memory per job), never more.

    ``workers`` can only lower that; a job bigger than the machine still runs, one at a time
    (refusing would leave the campaign stuck; the OOM killer's verdict is then recorded).
    """
    cores, memory_mb = machine or machine_resources()
    by_cores = cores // max(job_cores, 1)
    by_memory = memory_mb // max(job_memory_mb, 1)
    slots, why = (by_cores, "cores") if by_cores <= by_memory else (by_memory, "memory")
    if workers and workers < slots:
        slots, why = workers, "--workers"
    if n_jobs is not None and 0 < n_jobs < slots:
        slots, why = n_jobs, "jobs"
    return Capacity(slots=max(slots, 1), machine_cores=cores, machine_memory_mb=memory_mb,
                    job_cores=job_cores, job_memory_mb=job_memory_mb, limited_by=why)


def with_spare_cores(cap: Capacity) -> Capacity:
    """Fewer jobs than slots (one image on a laptop): the cores no job would use go to the jobs that
    run, so a single conversion decodes on every core instead of leaving all but one idle (the
    built-in's deliverable run on a full tile: 91.6 s on 1 core, 54.8 s on 2). Only then: a machine
    full of jobs, or one held back by ``--workers``, keeps ``cores_per_job``."""
    if cap.limited_by != "jobs":
        return cap
    return replace(cap, job_cores=max(cap.job_cores, cap.machine_cores // max(cap.slots, 1)))
