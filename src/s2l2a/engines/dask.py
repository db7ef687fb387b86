"""An existing Dask cluster (``--engine dask --scheduler-address tcp://host:8786``).

The same windowed submission, timeout backstop and outcome folding as the local engine
(:class:`~s2l2a.engines.local.LocalEngine` is reused as is); only the cluster differs: we connect
to a scheduler somebody else runs instead of starting a LocalCluster, size the window from the
threads its workers offer, and leave the cluster running on close. Workers must see the campaign
directory and the L1C paths at the same paths (a shared file system), like cluster nodes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from s2l2a.engines.base import Capacity
from s2l2a.engines.local import LocalEngine
from s2l2a.errors import ConfigError


class DaskEngine(LocalEngine):
    """Runs jobs on the Dask cluster at ``address``; use as a context manager."""

    name = "dask"

    def __init__(self, address: str, capacity: Capacity, connect_timeout_s: float = 30.0, **kw: Any) -> None:
        super().__init__(capacity, **kw)
        self.address = address
        self.connect_timeout_s = connect_timeout_s
        self._uses_resources = False

    def start(self) -> DaskEngine:
        """Connect; the window is the cluster's total threads (or its declared resources)."""
        if self._client is not None:
            return self
        from distributed import Client

        self._probe()
        self._route_logs()
        try:
            self._client = Client(self.address, timeout=self.connect_timeout_s, set_as_default=False)
        except OSError as e:
            raise ConfigError(f"no Dask scheduler answers at {self.address}: {e}") from None
        workers = self._client.scheduler_info().get("workers", {})
        threads = sum(int(w.get("nthreads", 1)) for w in workers.values())
        # workers started with --resources "memory_mb=...,cores=..." get jobs packed by memory too
        self._uses_resources = bool(workers) and all(
            {"memory_mb", "cores"} <= set(w.get("resources", {})) for w in workers.values())
        if self._uses_resources:
            slots = sum(min(int(w["resources"]["memory_mb"]) // max(self.capacity.job_memory_mb, 1),
                            int(w["resources"]["cores"]) // max(self.capacity.job_cores, 1))
                        for w in workers.values())
            why = "the workers' declared resources"
        else:
            slots = threads // max(self.capacity.job_cores, 1)
            why = "the cluster's worker threads"
        self.capacity = replace(self.capacity, slots=max(slots, 1), limited_by=why)
        return self

    def _probe(self) -> None:
        """Fail in a second when nothing listens (distributed retries for the whole timeout)."""
        import socket
        from urllib.parse import urlsplit

        parts = urlsplit(self.address if "://" in self.address else f"tcp://{self.address}")
        if parts.scheme not in ("tcp", "tls") or not parts.hostname:
            return  # other transports: let distributed judge
        try:
            socket.create_connection((parts.hostname, parts.port or 8786), timeout=self.connect_timeout_s).close()
        except OSError as e:
            raise ConfigError(f"no Dask scheduler answers at {self.address}: {e}") from None

    def close(self) -> None:
        """Disconnect; the cluster belongs to somebody else and keeps running."""
        client, self._client = self._client, None
        self._disconnect(client)

    def _submit_one(self, campaign_dir: Any, spec: Any) -> Any:
        if self._uses_resources:
            return super()._submit_one(campaign_dir, spec)
        import os

        from s2l2a.campaign.execute import run_job

        return self._client.submit(run_job, str(campaign_dir), spec, pure=False,
                                   key=f"s2l2a-job-{spec.job_id}-a{spec.attempt}-{os.urandom(3).hex()}")
