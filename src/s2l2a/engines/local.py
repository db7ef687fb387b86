"""The local engine: conversions in parallel on this machine with a Dask ``LocalCluster``.

Each worker is a separate process (a crashing or leaking conversion takes down one worker, not
the run) declaring a share of the machine as Dask resources; each job asks for its cores and
memory, so Dask never starts more conversions than the machine holds. Jobs are fed through a
window of as many futures as there are slots: a job is "running" in the store exactly when it has
been handed to a worker, and on Ctrl-C nothing beyond the window needs cancelling.

Outcomes come back to the submitting process, which is the only writer of the store.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from s2l2a.campaign.execute import run_job
from s2l2a.campaign.failures import FailureClass
from s2l2a.campaign.jobspec import JobOutcome, JobSpec
from s2l2a.clock import utcnow
from s2l2a.engines.base import Capacity

_DASK_LOGGERS = ("distributed", "distributed.scheduler", "distributed.worker", "distributed.nanny",
                 "distributed.core", "distributed.comm", "distributed.batched", "tornado", "bokeh")


class LocalEngine:
    """Runs jobs on a LocalCluster sized by :func:`plan_capacity`: ``start``, ``run`` (specs in,
    outcomes out), ``close``; or use as a context manager."""

    name = "local"

    def __init__(self, capacity: Capacity, log_file: Path | None = None, timeout_grace_s: float = 120.0,
                 watch_s: float = 5.0) -> None:
        self.capacity = capacity
        self.log_file = log_file
        self.timeout_grace_s = timeout_grace_s
        self.watch_s = watch_s
        self._started: dict[str, float] = {}
        self._cluster: Any = None
        self._client: Any = None
        self._log_handler: logging.Handler | None = None

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> LocalEngine:
        """Start the cluster quietly: Dask's logs go to ``log_file``, never to the terminal."""
        if self._client is not None:
            return self
        import dask
        from distributed import Client, LocalCluster

        self._route_logs()
        warnings.filterwarnings("ignore", category=UserWarning, module=r"distributed(\..*)?$")
        cap = self.capacity
        # worker processes start with a fresh interpreter; they read their config from the env and
        # log to the terminal's stderr, which they share. On Ctrl-C every process of the group gets
        # SIGINT and a worker logs its lost heartbeat as an ERROR with a traceback: only critical
        # messages may reach the terminal. Job failures travel as outcomes, worker deaths are
        # logged by the nanny in this process (to log_file), so nothing is lost.
        os.environ["DASK_DISTRIBUTED__LOGGING__DISTRIBUTED"] = "critical"
        os.environ.setdefault("DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES", "0")
        dask.config.set({
            "distributed.scheduler.allowed-failures": 0,      # a job that kills its worker fails once
            "distributed.worker.daemon": False,                # processors may start processes
            "distributed.admin.tick.limit": "1h",             # no "event loop unresponsive" chatter
        })
        # workers must not see the terminal's Ctrl-C: the submitting process stops them in order
        # (an ignored SIGINT is inherited by the worker processes and by processors they start)
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGINT) if in_main else None
        try:
            if previous is not None:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            self._cluster = LocalCluster(
                n_workers=cap.slots, threads_per_worker=cap.job_cores, processes=True,
                dashboard_address=None, memory_limit=0, silence_logs=False,  # logs go to log_file
                # the scheduler's HTTP server (metrics) starts even without a dashboard: put it on
                # a free port so a second cluster on the machine causes no "port in use" warning
                scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                resources={"memory_mb": max(cap.machine_memory_mb // cap.slots, cap.job_memory_mb),
                           "cores": max(cap.machine_cores // cap.slots, cap.job_cores)},
                host="127.0.0.1",
            )
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        self._client = Client(self._cluster, set_as_default=False)
        return self

    def close(self) -> None:
        """Stop workers and scheduler; running conversions are killed with their worker, and so
        are the programs they started in sessions of their own (Sen2Cor), which would otherwise
        outlive their worker as orphans."""
        if self._client is not None:
            try:
                self._client.run(kill_descendants)
            except Exception:  # noqa: BLE001 - a worker already gone has nothing left to kill
                pass
        client, cluster, self._client, self._cluster = self._client, self._cluster, None, None
        self._disconnect(client, cluster)

    def _disconnect(self, *things: Any) -> None:
        """Close the client (and the cluster, when it is ours) and give Dask's loggers back."""
        for thing in things:
            if thing is None:
                continue
            try:
                thing.close(timeout=10)
            except Exception:  # noqa: BLE001 - shutting down; nothing useful to report
                pass
        if self._log_handler is not None:
            for name in _DASK_LOGGERS:
                logging.getLogger(name).removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None

    def __enter__(self) -> LocalEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _route_logs(self) -> None:
        handler: logging.Handler
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(self.log_file, encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        else:
            handler = logging.NullHandler()
        self._log_handler = handler
        for name in _DASK_LOGGERS:
            lg = logging.getLogger(name)
            for h in list(lg.handlers):
                if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                    lg.removeHandler(h)
            lg.addHandler(handler)
            lg.propagate = False
        logging.getLogger("distributed").setLevel(logging.WARNING)

    # -- the Engine contract ----------------------------------------------------------------------

    def _submit_one(self, campaign_dir: Path, spec: JobSpec) -> Any:
        cap = self.capacity
        return self._client.submit(
            run_job, str(campaign_dir), spec, key=f"s2l2a-job-{spec.job_id}-a{spec.attempt}-{os.urandom(3).hex()}",
            pure=False, resources={"memory_mb": cap.job_memory_mb, "cores": cap.job_cores})

    def run(self, campaign_dir: Path, specs: Sequence[JobSpec],
            on_start: Callable[[JobSpec], bool | None] | None = None) -> Iterator[JobOutcome]:
        """Run ``specs`` with at most ``slots`` in flight, yielding each outcome as it arrives.

        ``on_start(spec)`` is called just before a job is handed to a worker (the caller marks it
        running and sets ``spec.attempt``; returning False skips the job). Closing the iterator
        early (Ctrl-C in the caller) cancels what is in flight.
        """
        self.start()
        campaign_dir = Path(campaign_dir)
        todo = list(reversed(specs))
        flying: dict[Any, JobSpec] = {}
        finished: queue.SimpleQueue[Any] = queue.SimpleQueue()  # futures, filled by Dask's callbacks

        def feed() -> None:
            while todo and len(flying) < self.capacity.slots:
                spec = todo.pop()
                if on_start is not None and on_start(spec) is False:
                    continue  # the caller could not start it (e.g. no longer queued)
                resubmit(spec)

        def resubmit(spec: JobSpec) -> None:
            fut = self._submit_one(campaign_dir, spec)
            self._started[fut.key] = time.monotonic()
            flying[fut] = spec
            fut.add_done_callback(finished.put)

        timed_out: set[Any] = set()
        collateral: set[Any] = set()
        try:
            feed()
            while flying:
                try:
                    fut = finished.get(timeout=self.watch_s)
                except queue.Empty:
                    self._enforce_timeouts(flying, timed_out, collateral)
                    continue
                if fut in flying:
                    spec = flying.pop(fut)
                    self._started.pop(fut.key, None)
                    if fut in collateral and fut.status == "error":
                        # it only waited on a worker we restarted for another job: run it again
                        collateral.discard(fut)
                        resubmit(spec)
                        continue
                    outcome = _outcome_of(fut, spec, campaign_dir, timed_out=fut in timed_out)
                    feed()  # hand out the next job before the caller spends time on this one
                    yield outcome
                self._enforce_timeouts(flying, timed_out, collateral)
        finally:
            if flying and self._client is not None:
                self._client.cancel(list(flying), force=True)

    def _enforce_timeouts(self, flying: dict[Any, JobSpec], timed_out: set[Any], collateral: set[Any]) -> None:
        """Backstop for processors that cannot time themselves out (in-process code stuck in C):
        a job running longer than its ``timeout_s`` plus a grace gets its worker process restarted,
        which fails the job (as timeout) and gives the slot back."""
        now = time.monotonic()
        late = [f for f, s in flying.items() if f not in timed_out and
                now - self._started.get(f.key, now) > s.job_settings().timeout_s + self.timeout_grace_s]
        if not late:
            return
        processing = self._client.processing()
        late_keys = {f.key for f in late}
        workers = {addr for addr, keys in processing.items() if late_keys & set(keys)}
        doomed = {k for addr in workers for k in processing[addr]} - late_keys
        collateral.update(f for f in flying if f.key in doomed)
        timed_out.update(late)
        if workers:
            try:
                self._client.run(kill_descendants, workers=list(workers))
            except Exception:  # noqa: BLE001 - restarting is what matters
                pass
            self._client.restart_workers(list(workers), raise_for_error=False)


def kill_descendants() -> int:
    """Run inside a worker process: SIGKILL every process it started, at any depth (a processor's
    program in its own session included). Returns how many were signalled."""
    import psutil

    try:
        kids = psutil.Process().children(recursive=True)
    except psutil.Error:
        return 0
    for k in kids:
        try:
            k.kill()
        except psutil.Error:
            pass
    return len(kids)


def _outcome_of(fut: Any, spec: JobSpec, campaign_dir: Path, timed_out: bool = False) -> JobOutcome:
    """The job's outcome, or a failed one when the worker died under it (OOM killer, signal)."""
    try:
        return fut.result()
    except Exception as e:  # noqa: BLE001 - the worker, not the job, failed
        from distributed import KilledWorker

        from s2l2a.campaign.execute import job_log_path

        now = utcnow()
        if timed_out:
            limit = spec.job_settings().timeout_s
            cls, msg = FailureClass.TIMEOUT, f"no result within the {limit:.0f} s limit; its worker process was restarted"
        elif isinstance(e, KilledWorker):
            cls, msg = FailureClass.KILLED, "the worker process died while converting (killed by a signal or the OOM killer)"
        else:
            cls, msg = FailureClass.OTHER, f"{type(e).__name__}: {e}"
        label = spec.product_name or Path(spec.product_path).name
        return JobOutcome(job_id=spec.job_id, state="failed", attempt=spec.attempt, failure_class=cls.value,
                          message=" ".join(f"{label}: {msg}".split()), start=now, end=now,
                          log_path=str(job_log_path(campaign_dir, spec.job_id)), processor=spec.processor,
                          host=socket.gethostname())
