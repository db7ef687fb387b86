"""What one job is (``JobSpec``) and what became of it (``JobOutcome``), as plain JSON.

Both cross process and machine boundaries: a spec travels to a Dask worker or into a cluster
manifest, an outcome comes back as a return value or as ``results/<job_id>.json``. Keeping them
flat JSON (no pickled objects) means a worker of another package version, or a person with
``cat``, can still read them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from s2l2a import fsutil
from s2l2a.campaign.failures import FailureClass
from s2l2a.campaign.layout import MANIFESTS_DIR, RESULTS_DIR
from s2l2a.errors import CampaignError
from s2l2a.processors.base import JobSettings


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """Only the keys the dataclass knows: a newer writer's extra fields must not break a reader."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass
class JobSpec:
    """Everything a worker needs to run one conversion, without opening the store."""

    job_id: int | str
    product_path: str                      # the L1C SAFE directory
    tile: str | None = None                # "56JMM"; output goes to <output_dir>/<tile>/
    product_name: str | None = None        # for messages before the product is opened
    processor: str = "auto"                # "sen2cor" | "builtin" | "auto" | "noop"
    processor_options: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)  # JobSettings as a dict
    attempt: int = 1
    output_dir: str | None = None          # absolute; None: <campaign>/L2A
    staging_dir: str | None = None         # absolute root of staging dirs; None: <campaign>/staging
    # derive right after publishing: {"indices": [...], "formulas": [...], "resolution": 10,
    # "clear_classes": [...], "keep": "all|derived|l2a", "delete_l1c": false}; None: no derive
    derive: dict[str, Any] | None = None

    def job_settings(self) -> JobSettings:
        """The JobSettings this spec carries (defaults for missing keys)."""
        return JobSettings(**_known(JobSettings, self.settings))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        return cls(**_known(cls, data))


@dataclass
class JobOutcome:
    """The result of one attempt: ``state`` is "done" or "failed" (never anything else)."""

    job_id: int | str
    state: str
    attempt: int = 1
    failure_class: str | None = None       # a FailureClass value when failed
    message: str = ""                      # one line: what and where
    exit_status: int | None = None
    start: str | None = None               # ISO UTC
    end: str | None = None
    duration_s: float | None = None
    output_path: str | None = None
    log_path: str | None = None
    processor: str | None = None
    processor_version: str | None = None
    host: str | None = None
    pid: int | None = None
    derived_path: str | None = None        # <campaign>/derived/<tile>/<product> when derived
    derive_error: str | None = None        # one line; the conversion itself still counts as done
    gipp_sha256: dict[str, str] | None = None  # Sen2Cor: hash of each GIPP file the run was given
    cpu_s: float | None = None             # CPU seconds of the job and its child processes (campaign.usage)
    peak_mb: float | None = None           # peak resident memory while it ran, MB (campaign.usage)
    # unique per attempt: folding the same result file twice is recognisable as a repeat
    outcome_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def ok(self) -> bool:
        return self.state == "done"

    @property
    def failure(self) -> FailureClass | None:
        return FailureClass(self.failure_class) if self.failure_class else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobOutcome:
        return cls(**_known(cls, data))


# -- campaign JSON files ------------------------------------------------------------------------

def write_json_atomic(path: Path, data: Any) -> Path:
    """A campaign JSON file (result, manifest, array record): sorted keys, parent folders made, and
    written so readers see the old file or the whole new one (:mod:`s2l2a.fsutil`)."""
    return fsutil.write_json_atomic(path, data, sort_keys=True, mkdir=True)


def result_path(campaign_dir: Path, job_id: int | str) -> Path:
    return Path(campaign_dir) / RESULTS_DIR / f"{job_id}.json"


def write_result(campaign_dir: Path, outcome: JobOutcome) -> Path:
    """``results/<job_id>.json``: the worker's word on one attempt, folded into the store later."""
    return write_json_atomic(result_path(campaign_dir, outcome.job_id), outcome.to_dict())


def read_result(path: Path) -> JobOutcome:
    """One result file; a torn or foreign file is a CampaignError naming it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or "job_id" not in data or "state" not in data:
            raise ValueError("not a job result")
        return JobOutcome.from_dict(data)
    except (OSError, ValueError, TypeError) as e:
        raise CampaignError(f"unreadable job result: {e}", path) from None


# -- manifests (cluster engines write them at submit time, `s2l2a worker` reads them) -------------

@dataclass
class Manifest:
    """One submitted array: element N (1-based, like scheduler array indices) runs
    ``elements[N-1]``, ``parallel`` products at a time (1 per element unless whole-node placement).
    """

    name: str
    elements: list[list[JobSpec]]
    parallel: int = 1

    def element(self, index: int) -> list[JobSpec]:
        if not 1 <= index <= len(self.elements):
            raise CampaignError(f"array index {index} is outside 1..{len(self.elements)} of manifest {self.name}")
        return self.elements[index - 1]


def write_manifest(campaign_dir: Path, name: str, elements: list[JobSpec] | list[list[JobSpec]],
                   parallel: int = 1) -> Path:
    """``manifests/<name>.json``; ``elements`` is one spec per element or a list of specs each."""
    groups = [[e] if isinstance(e, JobSpec) else list(e) for e in elements]
    path = Path(campaign_dir) / MANIFESTS_DIR / f"{name}.json"
    return write_json_atomic(path, {"name": name, "parallel": int(parallel),
                                    "elements": [[s.to_dict() for s in g] for g in groups]})


def newest_manifest(campaign_dir: Path) -> Path:
    """The most recently written manifest (what a just-submitted array refers to)."""
    mdir = Path(campaign_dir) / MANIFESTS_DIR
    found = sorted(mdir.glob("*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name)) if mdir.is_dir() else []
    if not found:
        raise CampaignError("no job manifest (nothing was submitted to a cluster)", mdir)
    return found[-1]


def read_manifest(path: Path) -> Manifest:
    """A manifest file; a torn or foreign one is a CampaignError naming it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        elements = [[JobSpec.from_dict(d) for d in group] for group in data["elements"]]
        return Manifest(name=str(data.get("name", Path(path).stem)), elements=elements,
                        parallel=max(int(data.get("parallel", 1)), 1))
    except FileNotFoundError:
        raise CampaignError("no such job manifest", path) from None
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise CampaignError(f"unreadable job manifest: {e}", path) from None
