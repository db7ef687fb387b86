"""Engines start jobs (locally or on a cluster) and report on them; see ``engines/base.py``.

Engine modules are imported on demand: the local engine pulls in Dask, cluster engines need none.
"""

from __future__ import annotations

from s2l2a.engines.base import Capacity, Engine, machine_resources, plan_capacity

__all__ = ["Capacity", "Engine", "machine_resources", "plan_capacity"]
