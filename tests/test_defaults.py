"""One set of resource defaults: settings, a processor's job, cluster options, sizing and init agree."""

from __future__ import annotations

import inspect

from click.testing import CliRunner

from s2l2a import defaults
from s2l2a.campaign.settings import CampaignSettings
from s2l2a.cli import main
from s2l2a.engines.scheduler import ClusterOptions
from s2l2a.engines.sizing import plan_arrays
from s2l2a.processors.base import JobSettings


def test_every_place_starts_from_the_same_defaults() -> None:
    s = CampaignSettings()
    assert (s.memory_mb, s.cores_per_job, s.timeout_s, s.max_attempts) == (
        defaults.MEMORY_MB, defaults.CORES_PER_JOB, defaults.TIMEOUT_S, defaults.MAX_ATTEMPTS)
    js = s.job_settings("builtin")
    assert (js.memory_mb, js.cores, js.timeout_s) == (defaults.MEMORY_MB, defaults.CORES_PER_JOB, defaults.TIMEOUT_S)
    assert (JobSettings().memory_mb, JobSettings().cores, JobSettings().timeout_s) == (
        defaults.MEMORY_MB, defaults.CORES_PER_JOB, defaults.TIMEOUT_S)
    assert (ClusterOptions().memory_mb, ClusterOptions().cores_per_job) == (defaults.MEMORY_MB, defaults.CORES_PER_JOB)
    sig = inspect.signature(plan_arrays).parameters
    assert (sig["memory_mb_per_job"].default, sig["cores_per_job"].default) == (defaults.MEMORY_MB,
                                                                               defaults.CORES_PER_JOB)


def test_init_writes_the_defaults(tmp_path) -> None:
    r = CliRunner().invoke(main, ["init", str(tmp_path / "c"), "--processor", "builtin"])
    assert r.exit_code == 0, r.output
    s = CampaignSettings.load(tmp_path / "c")
    assert (s.memory_mb, s.cores_per_job, s.timeout_s) == (defaults.MEMORY_MB, defaults.CORES_PER_JOB,
                                                           defaults.TIMEOUT_S)
