"""``s2l2a check DIR`` and the preflight of ``s2l2a run`` (issue 10 item 9), through the console script.

Sen2Cor installs are laid out as ESA's installer leaves them (``sen2cor_setup``'s ``make_install``,
real cfg templates and XSDs); where a run must really convert, bin/L2A_Process is the project's
Sen2Cor stand-in. Each failing check is shown to stop ``run`` before any job starts (every job
stays queued, nothing is written) and ``--skip-check NAME`` to let it through.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from s2l2a.auxdata.dem import DemLayout, footprints_of
from s2l2a.auxdata.dem_tiles import tiles_for
from s2l2a.campaign.settings import CampaignSettings
from s2l2a.campaign.store import CampaignStore
from s2l2a.sen2cor.layout import LAND_COVER, SNOW_COND_NEW, SNOW_COND_OLD, WATER_BODIES
from sample_clones import clone_sample
from sen2cor_setup.conftest import make_install, write_raster

from .conftest import STANDIN

S2L2A = Path(sys.executable).with_name("s2l2a")


def s2l2a(*args: object, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([str(S2L2A), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=env)


def campaign_with(tmp_path: Path, baselines: tuple[str, ...] = ("02.06",), **settings: object) -> Path:
    """A planned campaign of clones of the sample, one acquisition (day) per baseline."""
    l1c = tmp_path / "l1c"
    for day, b in enumerate(baselines):
        clone_sample(l1c, day=day, baseline=b)
    camp = tmp_path / "camp"
    assert s2l2a("init", camp, "--processor", "builtin", "--memory-mb", 256).returncode == 0
    s = CampaignSettings.load(camp)
    for k, v in settings.items():
        setattr(s, k, v)
    s.save(camp)
    r = s2l2a("plan", camp, l1c)
    assert r.returncode == 0, r.stderr
    return camp


def lines_by_check(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.splitlines():
        mark, rest = line.split(" ", 1)
        out[rest.split(":", 1)[0]] = f"{mark} {rest}"
    return out


def sen2cor_install(root: Path, version: str, *, esacci: bool, standin: bool = False) -> Path:
    """An install tree; with ``esacci`` its aux_data holds the ESA-CCI items this version reads;
    with ``standin`` bin/L2A_Process really converts (the project's stand-in, 2.8.0 banner)."""
    make_install(root, version)
    aux = next(root.glob("lib/python*/site-packages/sen2cor")) / "aux_data"
    if esacci:
        (aux / LAND_COVER).write_bytes(b"tif")
        (aux / WATER_BODIES).write_bytes(b"tif")
        (aux / (SNOW_COND_NEW if tuple(map(int, version.split("."))) >= (2, 10) else SNOW_COND_OLD)).mkdir()
    if standin:
        exe = root / "bin" / "L2A_Process"
        exe.write_text(f"#!/bin/sh\nexec '{sys.executable}' '{STANDIN}' \"$@\"\n")
    return root / "bin" / "L2A_Process"


def use_sen2cor(camp: Path, exe: Path, **extra: object) -> None:
    s = CampaignSettings.load(camp)
    s.processor = "sen2cor"
    s.sen2cor = {"l2a_process": str(exe), **extra}
    s.save(camp)


def assert_untouched(camp: Path, n: int) -> None:
    """A refused run started nothing: every job queued, no attempt, no output."""
    with CampaignStore.open(camp) as store:
        assert store.counts()["queued"] == n and store.attempts() == []
    assert not (camp / "L2A").exists() or not any((camp / "L2A").rglob("*.SAFE"))


def test_builtin_campaign_passes_every_check(tmp_path: Path) -> None:
    camp = campaign_with(tmp_path)
    r = s2l2a("check", camp)
    assert r.returncode == 0, r.stdout + r.stderr
    checks = lines_by_check(r.stdout)
    assert list(checks) == ["processor", "esacci", "cams", "dem", "gipp", "memory", "disk", "writable", "scheduler"]
    assert checks["processor"].startswith("✓ processor: built-in processor")
    assert checks["esacci"].startswith("- esacci: not needed")
    for name in ("memory", "disk", "writable"):
        assert checks[name].startswith("✓"), checks[name]
    assert "(2.5 GB per product, estimate)" in checks["disk"]


def test_missing_sen2cor_fails_check_and_run_names_it(tmp_path: Path) -> None:
    camp = campaign_with(tmp_path)
    s = CampaignSettings.load(camp)
    s.processor = "sen2cor"
    s.save(camp)
    env = {k: v for k, v in os.environ.items() if k != "SEN2COR_BIN"}
    env["PATH"] = str(Path(sys.executable).parent)   # s2l2a's own, no L2A_Process
    r = s2l2a("check", camp, env=env)
    assert r.returncode == 1
    line = lines_by_check(r.stdout)["processor"]
    assert line.startswith("✗ processor: no Sen2Cor L2A_Process was found")
    assert f"'s2l2a config {camp} sen2cor.l2a_process PATH'" in line
    run = s2l2a("run", camp, env=env)
    assert run.returncode == 1 and run.stderr.count("\n") == 1
    assert run.stderr.startswith("Error: check failed: processor: no Sen2Cor") and "--skip-check processor" in run.stderr
    assert_untouched(camp, 1)


def test_esacci_missing_stops_run_and_skip_check_lets_it_through(tmp_path: Path) -> None:
    camp = campaign_with(tmp_path)
    exe = sen2cor_install(tmp_path / "Sen2Cor-02.08.00-Linux64", "2.8.0", esacci=False, standin=True)
    use_sen2cor(camp, exe)
    r = s2l2a("check", camp)
    assert r.returncode == 1
    checks = lines_by_check(r.stdout)
    assert checks["processor"].startswith(f"✓ processor: Sen2Cor 02.08.00 at {exe}; fits baseline 02.06")
    assert checks["esacci"].startswith("✗ esacci: 3 ESA-CCI item(s) missing in ") and LAND_COVER in checks["esacci"]
    assert "'s2l2a sen2cor aux --esacci FILE --sen2cor " in checks["esacci"]
    assert checks["dem"].startswith("! dem: no DEM prepared")        # a warning: flat terrain is legal
    assert checks["gipp"].startswith("✓ gipp: Sen2Cor's own GIPP")

    refused = s2l2a("run", camp)
    assert refused.returncode == 1
    err = refused.stderr.splitlines()
    assert err[-1].startswith("Error: check failed: esacci: 3 ESA-CCI item(s) missing")
    assert "--skip-check esacci runs anyway" in err[-1]
    assert any(line.startswith("note: ! dem:") for line in err)
    assert_untouched(camp, 1)

    ok = s2l2a("run", camp, "--skip-check", "esacci")
    assert ok.returncode == 0, ok.stderr
    assert "1 done, 0 failed of 1" in ok.stdout
    with CampaignStore.open(camp) as store:
        assert store.counts()["done"] == 1


def test_complete_install_passes_and_old_sen2cor_refuses_new_baselines(tmp_path: Path) -> None:
    camp = campaign_with(tmp_path, ("02.06", "05.00"))
    exe = sen2cor_install(tmp_path / "Sen2Cor-02.08.00-Linux64", "2.8.0", esacci=True)
    use_sen2cor(camp, exe)
    r = s2l2a("check", camp)
    checks = lines_by_check(r.stdout)
    assert r.returncode == 1 and checks["esacci"].startswith("✓ esacci")
    assert checks["processor"].startswith(f"✗ processor: Sen2Cor 02.08.00 at {exe} predates processing baseline "
                                          "04.00") and "1 queued product(s) are 04.00 or later" in checks["processor"]
    new = sen2cor_install(tmp_path / "Sen2Cor-02.11.00-Linux64", "2.11.0", esacci=True)
    use_sen2cor(camp, new)
    r = s2l2a("check", camp)
    checks = lines_by_check(r.stdout)
    assert r.returncode == 0, r.stdout
    assert checks["processor"] == f"✓ processor: Sen2Cor 02.11.00 at {new}; fits baselines 02.06..05.00"
    assert checks["esacci"].startswith("✓ esacci: ESA-CCI land cover, water bodies and snow condition")


def test_dem_must_cover_every_queued_footprint(tmp_path: Path) -> None:
    camp = campaign_with(tmp_path)
    exe = sen2cor_install(tmp_path / "Sen2Cor-02.11.00-Linux64", "2.11.0", esacci=True)
    use_sen2cor(camp, exe)
    with CampaignStore.open(camp) as store:
        footprints = footprints_of(j.path for j in store.jobs())
    (fp,) = footprints.values()
    tiles, _ = tiles_for(fp, "cop90")
    dem_dir = camp / "aux" / "dem"
    dem_dir.mkdir(parents=True)
    files = {t.name: str(write_raster(dem_dir / f"{t.name}.tif", t.box.bounds, value=120)) for t in tiles}
    layout = DemLayout(directory=dem_dir, kind="copernicus", source="cop90", version="2.11.0",
                       dem_reference="x", tiles=files)
    layout.save()
    ok = lines_by_check(s2l2a("check", camp).stdout)["dem"]
    assert ok == f"✓ dem: cop90 DEM in {dem_dir} covers all 1 queued product footprint(s)"
    missing = tiles[0].name
    layout.tiles = {k: v for k, v in files.items() if k != missing}
    layout.save()
    r = s2l2a("check", camp)
    line = lines_by_check(r.stdout)["dem"]
    assert r.returncode == 1 and line.startswith("✗ dem: the DEM does not cover 1 of 1 queued product(s)")
    assert f"DEM tiles not prepared: {missing}" in line and f"re-run 's2l2a dem {camp}'" in line
    # a DEM laid out for another Sen2Cor (SRTM zips for 2.8) is refused as well
    layout.kind, layout.version = "srtm", "2.8.0"
    layout.save()
    line = lines_by_check(s2l2a("check", camp).stdout)["dem"]
    assert line.startswith("✗ dem: the DEM in") and "Sen2Cor 2.11.0 reads the copernicus layout" in line


def test_invalid_gipp_fails(tmp_path: Path) -> None:
    camp = campaign_with(tmp_path)
    exe = sen2cor_install(tmp_path / "Sen2Cor-02.08.00-Linux64", "2.8.0", esacci=True)
    bad = tmp_path / "L2A_GIPP.xml"
    bad.write_text("<Level-2A_Ground_Image_Processing_Parameter><Common_Section/>"
                   "</Level-2A_Ground_Image_Processing_Parameter>")
    use_sen2cor(camp, exe, gipp=str(bad))
    r = s2l2a("check", camp)
    line = lines_by_check(r.stdout)["gipp"]
    assert r.returncode == 1 and line.startswith(f"✗ gipp: {bad}: invalid against L2A_GIPP.xsd")


def test_memory_above_the_machine(tmp_path: Path) -> None:
    camp = campaign_with(tmp_path)
    r = s2l2a("check", camp, "--memory-mb", 64 * 1024 * 1024)   # 64 TiB: no machine has it
    line = lines_by_check(r.stdout)["memory"]
    assert r.returncode == 1 and line.startswith("✗ memory: memory_mb = 67108864 is more than this machine's")
    # for a cluster the nodes decide: unknown size is a warning, a known smaller node a failure
    # (no Slurm command reachable here, so sinfo cannot tell the nodes' size either)
    no_slurm = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"} | {"PATH": str(S2L2A.parent)}
    r = s2l2a("check", camp, "--engine", "slurm", "--memory-mb", 64 * 1024 * 1024, env=no_slurm)
    assert lines_by_check(r.stdout)["memory"].startswith("! memory: ")
    # what sinfo reports for the partition counts like --node-cores/--node-memory-mb
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "sinfo").write_text("#!/bin/sh\necho 'n1|8|16000|idle'\n")
    (fake / "scontrol").write_text("#!/bin/sh\necho 'PartitionName=batch Default=YES MaxTime=UNLIMITED State=UP'\n")
    for f in fake.iterdir():
        f.chmod(0o755)
    r = s2l2a("check", camp, "--engine", "slurm", "--memory-mb", 32000, env={**no_slurm, "PATH": f"{fake}:{S2L2A.parent}"})
    assert lines_by_check(r.stdout)["memory"].startswith(
        "✗ memory: 1 core(s) and 32000 MB per job does not fit a node of 8 cores and 16000 MB (from sinfo -N -p batch)")
    r = s2l2a("check", camp, "--engine", "slurm", "--memory-mb", 8192, "--node-cores", 4,
              "--node-memory-mb", 4096)
    assert lines_by_check(r.stdout)["memory"] == (
        "✗ memory: 1 core(s) and 8192 MB per job does not fit a node of 4 cores and 4096 MB — lower it with "
        f"'s2l2a config {camp} resources.memory_mb N' or ask for bigger nodes")


def test_disk_too_small_for_the_queue(tmp_path: Path) -> None:
    camp = campaign_with(tmp_path, min_free_mb=1024 ** 3)    # keep 1 EiB free: no disk has it
    r = s2l2a("check", camp)
    line = lines_by_check(r.stdout)["disk"]
    assert r.returncode == 1 and line.startswith("✗ disk: output ")
    assert "but 1 queued job(s) need about" in line and "1048576.0 GB kept free" in line
    run = s2l2a("run", camp)
    assert run.returncode == 1 and run.stderr.startswith("Error: check failed: disk: ")
    assert_untouched(camp, 1)


def test_unwritable_scratch(tmp_path: Path) -> None:
    camp = campaign_with(tmp_path)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the scratch folder's parent should be")
    text = (camp / "s2l2a.toml").read_text().replace('output_dir = "L2A"',
                                                     f'output_dir = "L2A"\nscratch_dir = "{blocker}/scratch"')
    (camp / "s2l2a.toml").write_text(text)
    r = s2l2a("check", camp)
    if r.returncode == 1 and r.stderr.startswith("Error: "):
        pytest.skip(f"the settings refuse this scratch_dir already: {r.stderr.strip()}")
    line = lines_by_check(r.stdout)["writable"]
    assert r.returncode == 1 and line.startswith("✗ writable: scratch ") and f"{blocker} is not a folder" in line


def test_scheduler_commands_absent(tmp_path: Path) -> None:
    camp = campaign_with(tmp_path)
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))
    r = s2l2a("check", camp, "--engine", "pbs", env=env)
    assert r.returncode == 1
    assert lines_by_check(r.stdout)["scheduler"] == (
        "✗ scheduler: qsub, qstat, qdel not found on PATH — run from a login node of the pbs cluster "
        "(or load its module)")
    run = s2l2a("run", camp, "--engine", "pbs", env=env)
    assert run.returncode == 1 and run.stderr.startswith("Error: check failed: scheduler: qsub")
    skipped = s2l2a("check", camp, "--engine", "pbs", "--skip-check", "scheduler", env=env)
    assert skipped.returncode == 0 and "- scheduler: skipped (--skip-check)" in skipped.stdout
    # a dry run submits nothing: it shows the failed check as a note and still prints its scripts
    dry = s2l2a("run", camp, "--engine", "pbs", "--dry-run", "--run-limit", "1h", env=env)
    assert dry.returncode == 0 and "#PBS" in dry.stdout
    assert "note: ✗ scheduler: qsub, qstat, qdel not found on PATH" in dry.stderr


def test_auto_with_a_vanished_sen2cor_warns(tmp_path: Path) -> None:
    camp = campaign_with(tmp_path)
    exe = sen2cor_install(tmp_path / "Sen2Cor-02.11.00-Linux64", "2.11.0", esacci=True)
    use_sen2cor(camp, exe)
    s = CampaignSettings.load(camp)
    s.processor = "auto"
    s.save(camp)
    exe.unlink()
    r = s2l2a("check", camp)
    assert r.returncode == 0
    assert lines_by_check(r.stdout)["processor"].startswith(f"! processor: auto: no executable Sen2Cor at the "
                                                            f"configured {exe}, so the built-in processor runs")


def test_plain_symbols_where_the_output_cannot_take_unicode(tmp_path: Path) -> None:
    camp = campaign_with(tmp_path)
    r = s2l2a("check", camp, "--skip-check", "dem", env=dict(os.environ, PYTHONIOENCODING="ascii"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("ok processor: ") and "skip dem: skipped" in r.stdout
