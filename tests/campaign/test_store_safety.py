"""A damaged, emptied or lost store, a full disk under it, and a deleted run.lock, met the way a
user meets them: through the commands (issue 10, item 3).

Every command refuses a damaged store in one line naming ``s2l2a rebuild``; ``rebuild`` brings
back the same campaign (job ids, states, failures, rejected inputs) from progress.log and the
outputs, keeping the broken file aside. The disk tests mount a small tmpfs in a private mount
namespace (``unshare -m``; skipped where that is not allowed).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from s2l2a.campaign import store as store_module
from s2l2a.campaign.progress import ProgressLog
from s2l2a.campaign.store import DB_FILE, AttemptOutcome, CampaignStore, ProductRecord
from s2l2a.cli import main
from s2l2a.errors import CampaignError
from sample_clones import clone_sample

S2L2A = Path(sys.executable).with_name("s2l2a")
NOOP_FAIL = '\n[noop]\nfail = "dem_error"\nfail_matching = ["20180701T"]\n'


def s2l2a(*args: object, timeout: float = 120, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(S2L2A), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          **kw)  # type: ignore[call-overload]


def cli(*args: object) -> object:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def worked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A campaign that has done work: 3 done, 1 failed, 1 skipped duplicate, 1 rejected input."""
    base = tmp_path_factory.mktemp("worked")
    l1c = base / "l1c"
    for day in range(4):
        clone_sample(l1c, day=day)
    clone_sample(l1c, baseline="05.00", generation="20220101T000000")   # wins day 0
    (l1c / "junk.SAFE").mkdir()
    camp = base / "camp"
    assert s2l2a("init", camp, "--processor", "builtin").returncode == 0
    with open(camp / "s2l2a.toml", "a", encoding="utf-8") as f:
        f.write(NOOP_FAIL)
    assert s2l2a("plan", camp, l1c).returncode == 0
    r = s2l2a("run", camp, "--processor", "noop")
    assert r.returncode == 3, r.stderr                                  # finished, one job failed
    return camp


@pytest.fixture
def camp(worked: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "camp"
    shutil.copytree(worked, dest, symlinks=True)
    # the copy's store still names the original outputs; point them at the copy's own
    db = sqlite3.connect(dest / DB_FILE)
    db.execute("UPDATE jobs SET output_path = replace(output_path, ?, ?)", (str(worked), str(dest)))
    db.commit()
    db.close()
    log = dest / "progress.log"
    log.write_text(log.read_text().replace(str(worked), str(dest)))
    return dest


def status_json(camp: Path) -> dict:
    r = cli("status", camp, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def jobs_view(camp: Path) -> list[tuple]:
    with CampaignStore.open(camp) as store:
        return [(j.id, j.name, j.path, j.state.value, j.attempts, j.failure_class, j.skip_reason,
                 str(j.output_path) if j.output_path else None) for j in store.jobs()]


def damage(camp: Path, how: str) -> None:
    db = camp / DB_FILE
    if how == "page":            # random bytes over the data pages, the header intact
        with open(db, "r+b") as f:
            f.seek(2 * 4096)
            f.write(os.urandom(4096))
    elif how == "index":         # an index page only: reads may even succeed
        with open(db, "r+b") as f:
            f.seek(3 * 4096)
            f.write(os.urandom(4096))
    elif how == "truncated":
        os.truncate(db, 6000)
    elif how == "random":
        db.write_bytes(os.urandom(20000))
    elif how == "empty":
        db.write_bytes(b"")
    elif how == "missing":
        db.unlink()


COMMANDS = [("status",), ("plan", "{l1c}"), ("report",), ("run", "--processor", "noop"), ("retry",)]


@pytest.mark.parametrize("how", ["page", "index", "truncated", "random", "empty", "missing"])
def test_every_command_refuses_a_damaged_or_lost_store_in_one_line(camp: Path, worked: Path, how: str) -> None:
    damage(camp, how)
    before = sorted(p.name for p in camp.iterdir())
    size = (camp / DB_FILE).stat().st_size if (camp / DB_FILE).exists() else None
    for cmd in COMMANDS:
        args = [a.format(l1c=worked.parent / "l1c") for a in cmd[1:]]
        r = cli(cmd[0], camp, *args)
        assert r.exit_code == 1, (how, cmd, r.output)
        assert r.stdout == "" and r.stderr.count("\n") == 1, (how, cmd, r.stderr)
        line = r.stderr
        assert line.startswith("Error: ") and f"run 's2l2a rebuild {camp}'" in line, (how, cmd, line)
        assert "nothing was changed" in line
    # nothing was changed indeed: no new store, no file written beside it
    assert sorted(p.name for p in camp.iterdir()) == before
    assert ((camp / DB_FILE).stat().st_size if (camp / DB_FILE).exists() else None) == size


def test_an_empty_store_without_history_is_still_a_new_campaign(tmp_path: Path) -> None:
    camp = tmp_path / "c"
    assert cli("init", camp).exit_code == 0
    (camp / DB_FILE).write_bytes(b"")
    r = cli("status", camp, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["total"] == 0


@pytest.mark.parametrize("how", ["page", "empty", "missing"])
def test_rebuild_brings_back_the_same_campaign_and_done_stays_done(camp: Path, how: str) -> None:
    want_status, want_jobs = status_json(camp), jobs_view(camp)
    assert want_status["counts"] == {"queued": 0, "running": 0, "done": 3, "failed": 1, "skipped": 1}
    assert len(want_status["rejected"]) == 1
    original = (camp / DB_FILE).read_bytes()
    damage(camp, how)
    damaged = (camp / DB_FILE).read_bytes() if (camp / DB_FILE).exists() else None

    r = s2l2a("rebuild", camp)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    kept = sorted(camp.glob(f"{DB_FILE}.broken-*"))
    if damaged is None:
        assert kept == []
    else:   # the broken file is kept aside, byte for byte
        assert [p.read_bytes() for p in kept if not p.name.endswith(("-wal", "-shm"))] == [damaged]
        assert damaged != original
    assert jobs_view(camp) == want_jobs                   # ids, paths, states, attempts, failures, outputs
    got = status_json(camp)
    for key in ("counts", "skipped", "tiles", "rejected"):
        assert got[key] == want_status[key], key
    assert [(f["job_id"], f["failure_class"], f["message"]) for f in got["failures"]] == [
        (f["job_id"], f["failure_class"], f["message"]) for f in want_status["failures"]]
    with CampaignStore.open(camp) as store:
        assert all(a.state in ("done", "failed") for a in store.attempts())
    # done products stay done: the next run converts nothing again
    r = s2l2a("run", camp, "--processor", "noop")
    assert r.returncode == 0, r.stderr
    assert "nothing to run: 3 done, 1 failed" in r.stdout
    assert jobs_view(camp) == want_jobs


def test_rebuild_corrects_the_log_by_the_outputs_and_requeues_what_was_running(camp: Path) -> None:
    out_of = {name: Path(out) for _, name, _, state, _, _, _, out in jobs_view(camp) if state == "done"}
    gone, unlogged, lost = sorted(out_of)
    shutil.rmtree(out_of[gone])                                        # an output deleted behind its back
    shutil.rmtree(out_of[lost])
    log = (camp / "progress.log").read_text().splitlines(keepends=True)
    dropped = [ln for ln in log if f"{unlogged}  56JMM  done  " in ln or f"{lost}  56JMM  done  " in ln]
    assert len(dropped) == 2                                           # done lines lost (disk trouble)
    (camp / "progress.log").write_text("".join(ln for ln in log if ln not in dropped))
    damage(camp, "empty")
    r = s2l2a("rebuild", camp)
    assert r.returncode == 0, r.stderr
    assert "1 job(s) done by their output on disk" in r.stdout        # unlogged: its output says done
    assert "1 job(s) recorded done whose output is gone: queued again" in r.stdout   # gone
    assert "0 unread result(s) recorded, 1 interrupted job(s) requeued" in r.stdout   # lost: left running
    states = {name: state for _, name, _, state, *_ in jobs_view(camp)}
    assert (states[gone], states[unlogged], states[lost]) == ("queued", "done", "queued")
    with CampaignStore.open(camp) as store:
        assert store.counts()["running"] == 0


def test_rebuild_from_an_older_log_without_paths_takes_them_from_the_roots(camp: Path, worked: Path) -> None:
    want = jobs_view(camp)
    log = camp / "progress.log"
    lines = []
    for ln in log.read_text().splitlines(keepends=True):   # what an older s2l2a wrote: "planned"
        head, sep, detail = ln.partition("  queued  planned as job ")
        lines.append(f"{head}  queued  planned\n" if sep else ln)
    log.write_text("".join(lines))
    damage(camp, "random")
    r = s2l2a("rebuild", camp)
    assert r.returncode == 0 and "5 product(s) without a known path were not restored" in r.stdout
    damage(camp, "random")
    r = s2l2a("rebuild", camp, worked.parent / "l1c")
    assert r.returncode == 0, r.stderr
    assert "without a known path" not in r.stdout
    assert jobs_view(camp) == want                          # ids by planning order, paths from the roots


def test_rebuild_refuses_a_healthy_store_and_a_running_campaign(camp: Path) -> None:
    r = s2l2a("rebuild", camp)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "is healthy (5 job(s))" in r.stderr
    assert not list(camp.glob(f"{DB_FILE}.broken-*"))
    from s2l2a.campaign.lock import RunLock

    damage(camp, "page")
    with RunLock(camp):
        r = s2l2a("rebuild", camp)
    assert r.returncode == 1 and "another s2l2a run holds" in r.stderr
    assert not list(camp.glob(f"{DB_FILE}.broken-*"))
    assert s2l2a("rebuild", camp, "--force").returncode == 0


def test_an_unclean_close_gets_the_full_integrity_check(camp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a writer killed mid-transaction leaves its WAL behind; the next open checks the whole file
    child = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('PRAGMA journal_mode = WAL'); db.execute('BEGIN IMMEDIATE')\n"
        "db.execute(\"UPDATE jobs SET message = 'x'\"); db.execute('COMMIT')\n"
        "print('ok', flush=True); time.sleep(60)\n"), str(camp / DB_FILE)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ok"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert (camp / f"{DB_FILE}-wal").stat().st_size > 0
    seen: list[str] = []
    real = CampaignStore._check

    def spy(self: CampaignStore, full: bool = False) -> None:
        seen.append("integrity_check" if full else "quick_check")
        real(self, full)

    monkeypatch.setattr(CampaignStore, "_check", spy)
    with CampaignStore.open(camp) as store:
        assert {j.message for j in store.jobs()} == {"x"}    # the committed WAL content is there
    with CampaignStore.open(camp):
        pass
    assert seen == ["integrity_check", "quick_check"]         # closed cleanly the first time


# -- a full disk -----------------------------------------------------------------------------------

def test_a_full_store_is_retried_then_one_line_and_the_job_stays_running_for_recovery(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    camp = tmp_path / "c"
    assert cli("init", camp).exit_code == 0
    monkeypatch.setattr(store_module, "FULL_RETRY_S", (0.01, 0.01))
    with CampaignStore.open(camp) as store:
        store.add_products([ProductRecord(path=tmp_path / f"p{i}.SAFE", name=f"P{i}", tile="56JMM",
                                          sensing_time=f"2020-01-0{i}T00:00:00Z") for i in range(1, 4)])
        store.start_attempt(1, "h", 1, None)
        pages = store._read("PRAGMA page_count")[0][0]
        store._db.execute(f"PRAGMA max_page_count = {pages}")   # SQLite's own "database or disk is full"
        tries: list[str] = []
        store._db.set_trace_callback(lambda sql: tries.append(sql) if sql == "BEGIN IMMEDIATE" else None)
        with pytest.raises(CampaignError) as exc:
            store.finish_attempt(1, AttemptOutcome("done", message="x" * 50_000))
        assert len(tries) == 3                                 # the first try and two retries
        text = str(exc.value)
        assert "\n" not in text and "the disk holding it is full" in text and "requeued by the next" in text
        assert store.job(1).state.value == "running"           # nothing half-written
        tries.clear()
        with pytest.raises(CampaignError, match="the disk holding it is full"):
            store.start_attempt(2, "h", 1, "y" * 50_000)
        assert len(tries) == 1                                 # still full: no second round of retries
    # the next run's recovery (same calls as `s2l2a run`) requeues it
    with CampaignStore.open(camp) as store:
        assert store.requeue_stale("the run driving this attempt stopped") == [1]
        assert store.counts() == {"queued": 3, "running": 0, "done": 0, "failed": 0, "skipped": 0}


def _in_tmpfs(mount: Path, size: str, script: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (sh) with a ``size`` tmpfs on ``mount``, in a private mount namespace."""
    mount.mkdir(parents=True, exist_ok=True)
    inner = f"mount -t tmpfs -o size={size} s2l2a-test {shlex.quote(str(mount))} || exit 97\n{script}"
    return subprocess.run(["unshare", "-m", "sh", "-c", inner], capture_output=True, text=True, timeout=600,
                          cwd=cwd)


@pytest.fixture(scope="module")
def tmpfs(tmp_path_factory: pytest.TempPathFactory) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    probe = _in_tmpfs(tmp_path_factory.mktemp("probe"), "1m", "true")
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a private namespace here: {probe.stderr.strip()}")


def test_run_and_status_on_an_already_full_disk_are_one_line(worked: Path, tmp_path: Path, tmpfs: None) -> None:
    mnt = tmp_path / "full"
    c = mnt / "camp"
    q = shlex.quote
    script = (f"cp -a {q(str(worked))} {q(str(c))} && rm -f {q(str(c / 'run.lock'))} || exit 98\n"
              f"dd if=/dev/zero of={q(str(mnt / 'filler'))} bs=4k 2>/dev/null\n"
              f"{q(str(S2L2A))} run {q(str(c))} --processor noop --skip-check disk; echo rc=$?\n"
              f"{q(str(S2L2A))} status {q(str(c))}; echo rc=$?\n")
    r = _in_tmpfs(mnt, "2m", script)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["rc=1", "rc=1"]
    assert r.stderr.splitlines() == [
        f"Error: {c / 'run.lock'}: cannot write the run lock: No space left on device (the disk holding the "
        "campaign is full; free space and try again)",
        f"Error: {c / DB_FILE}: cannot open the campaign store: the disk holding it is full (disk I/O error); "
        "free space and run the command again"]


def test_a_full_disk_under_the_derived_outputs_is_one_line_and_gdal_speaks_in_the_job_log(
        tmp_path: Path, tmpfs: None) -> None:
    """The built-in's deliverable run (--keep derived) writing its COGs onto a full disk: GDAL's own
    "No space left on device" lines go to the job's log, not the terminal; the failure names the
    full disk; nothing half-written stays."""
    sample = Path(__file__).resolve().parents[2] / "data" / "sample"
    mnt = tmp_path / "disk"
    c = mnt / "camp"
    q = shlex.quote
    exe = q(str(S2L2A))
    script = (f"{exe} init {q(str(c))} --processor builtin >/dev/null || exit 98\n"
              f"{exe} plan {q(str(c))} {q(str(sample))} >/dev/null || exit 98\n"
              f"{exe} config {q(str(c))} resources.min_free_mb 1 >/dev/null || exit 98\n"
              f"{exe} run {q(str(c))} --derive ndvi --keep derived --skip-check disk >run.out 2>&1; "
              f"echo rc=$?\n"
              f"cp {q(str(c / 'logs' / '1.log'))} {q(str(tmp_path))}\n"
              f"find {q(str(c))} -name '.partial*' -o -name '*.tif' -o -name '*.u16'\n"
              f"{exe} retry {q(str(c))} >/dev/null || exit 98\n"  # the full L2A path: a short write
              f"{exe} run {q(str(c))} --skip-check disk >/dev/null 2>&1; echo full=$?\n"
              f"{exe} status {q(str(c))} >{q(str(tmp_path / 'full.out'))} 2>&1\n")
    r = _in_tmpfs(mnt, "1600k", script, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.split() == ["rc=3", "full=3"], r.stdout + r.stderr  # nothing half-written
    shown = (tmp_path / "run.out").read_text()
    assert "No space left" not in shown and "_tiff" not in shown, shown  # nothing native on the terminal
    failures = [ln for ln in shown.splitlines() if ln.startswith("job 1:")]
    assert failures and all("disk_full" in ln and "no space left on device" in ln for ln in failures), shown
    assert "No space left on device" in (tmp_path / "1.log").read_text()  # GDAL's own words, with the job
    full = [ln for ln in (tmp_path / "full.out").read_text().splitlines() if "[disk_full]" in ln]
    assert full and "failed: OSError" in full[0] and "(disk full: " in full[0] and " MB free on " in full[0], full


def test_a_disk_filling_during_a_run_leaves_no_traceback_and_no_job_running(tmp_path: Path, tmpfs: None) -> None:
    n = 10
    l1c = tmp_path / "l1c"
    for day in range(n):
        clone_sample(l1c, day=day)
    src = tmp_path / "src"
    assert s2l2a("init", src, "--processor", "builtin").returncode == 0
    toml = src / "s2l2a.toml"   # no free-space floor: let the store itself meet the full disk
    toml.write_text(toml.read_text().replace("[resources]\n", "[resources]\nmin_free_mb = 0\n"))
    assert s2l2a("plan", src, l1c).returncode == 0
    mnt = tmp_path / "disk"
    c = mnt / "camp"
    q = shlex.quote
    exe = q(str(S2L2A))
    runs = f"{exe} run {q(str(c))} --processor noop --workers 1 --skip-check disk"
    script = (f"cp -a {q(str(src))} {q(str(c))} || exit 98\n"
              f"{runs} >first.out 2>first.err; echo first=$?\n"
              f"mount -o remount,size=64m {q(str(mnt))} || exit 96\n"      # space is freed
              f"{runs} >second.out 2>second.err; echo second=$?\n"
              f"{exe} retry {q(str(c))} >/dev/null; {runs} >/dev/null 2>&1; echo third=$?\n"
              f"{exe} status {q(str(c))} --json\n")
    r = _in_tmpfs(mnt, "700k", script, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    first_err = (tmp_path / "first.err").read_text()
    assert "Traceback" not in first_err and "Traceback" not in (tmp_path / "second.err").read_text()
    assert r.stdout.split("first=")[1].split()[0] == "1", first_err   # the disk did fill: an error ...
    assert first_err.strip().splitlines()[-1].startswith("Error: "), first_err   # ... in one line
    assert "the disk holding it is full" in first_err or "No space left on device" in first_err, first_err
    status = json.loads(r.stdout[r.stdout.index("{"):])
    assert status["counts"]["running"] == 0 and status["counts"]["done"] == n, status["counts"]


# -- the run lock ----------------------------------------------------------------------------------

def test_a_deleted_run_lock_lets_no_second_run_in(tmp_path: Path) -> None:
    l1c = tmp_path / "l1c"
    for day in range(3):
        clone_sample(l1c, day=day)
    c = tmp_path / "camp"
    assert s2l2a("init", c, "--processor", "builtin").returncode == 0
    with open(c / "s2l2a.toml", "a", encoding="utf-8") as f:
        f.write("\n[noop]\nsleep_s = 1.5\n")
    assert s2l2a("plan", c, l1c).returncode == 0
    first = subprocess.Popen([str(S2L2A), "run", str(c), "--processor", "noop", "--workers", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not any(e.state == "running" for e in ProgressLog(c / "progress.log").read()):
            assert time.monotonic() < deadline and first.poll() is None, first.communicate()
            time.sleep(0.05)
        (c / "run.lock").unlink()                                    # deleted behind the run's back
        second = s2l2a("run", c, "--processor", "noop")
        assert second.returncode == 1, second.stdout + second.stderr
        assert second.stderr.count("\n") == 1 and second.stderr.startswith(f"Error: another s2l2a run holds {c} ")
        assert f"pid {first.pid};" in second.stderr and "run.lock was removed" in second.stderr
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert first.returncode == 0, err
    assert "3 done, 0 failed of 3" in out
    with CampaignStore.open(c) as store:                             # the first run was not disturbed
        assert store.counts()["done"] == 3
        assert [(a.n, a.state) for a in store.attempts()] == [(1, "done")] * 3
    assert "interrupted" not in (c / "progress.log").read_text()
