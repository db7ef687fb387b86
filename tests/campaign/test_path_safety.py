"""Settings can never make s2l2a delete what it did not make (issue 10, item 1).

Each dangerous ``output_dir`` / ``scratch_dir`` is tried the way a user would: a campaign is
initialised, planned and run through the console script, then ``s2l2a.toml`` is edited and
``s2l2a run`` started again. Every such run must stop with one ``Error:`` line naming the key and
a non-zero exit, and every file that was there before must still be there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w

from s2l2a.campaign.execute import clean_leftovers
from s2l2a.campaign.layout import OWNED_MARKER, CampaignLayout, check_paths, claim_output, make_job_staging
from s2l2a.campaign.settings import CampaignSettings
from s2l2a.errors import ConfigError
from sample_clones import clone_sample

S2L2A = Path(sys.executable).with_name("s2l2a")


def s2l2a(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(S2L2A), *map(str, args)], capture_output=True, text=True, timeout=180)


def snapshot(*roots: Path) -> set[Path]:
    """Every path under ``roots`` (links not followed)."""
    out: set[Path] = set()
    for root in roots:
        for dirpath, dirs, files in os.walk(root):
            out.update(Path(dirpath) / n for n in dirs + files)
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A converted campaign ``top/C`` beside a shared folder holding other programs' files."""
    top = tmp_path_factory.mktemp("safety")
    for day in range(2):
        clone_sample(top / "in", day=day)
    camp = top / "C"
    for args in (("init", camp, "--processor", "builtin", "--memory-mb", "256"), ("plan", camp, top / "in"),
                 ("run", camp, "--processor", "noop")):
        r = s2l2a(*args)
        assert r.returncode == 0, r.stderr
    shared = top / "shared"
    (shared / "tool").mkdir(parents=True)
    for name in (".config", ".partial-3-cache", "notes.txt", "56JMM/.tmp"):
        (shared / name).parent.mkdir(parents=True, exist_ok=True)
        (shared / name).write_text("not s2l2a's\n")
    (top / "sibling.txt").write_text("beside the campaign\n")
    for name, target in (("link-campaign", camp), ("link-parent", top), ("link-l2a", camp / "L2A"),
                         ("link-staging", camp / "staging"), ("link-shared", shared), ("link-logs", camp / "logs")):
        (top / name).symlink_to(target, target_is_directory=True)
    return {"top": top, "camp": camp, "shared": shared}


DANGEROUS = [
    ("scratch_dir", "."), ("scratch_dir", ".."), ("scratch_dir", "L2A"), ("scratch_dir", "{top}"),
    ("scratch_dir", "/"), ("scratch_dir", "logs"), ("scratch_dir", "results"), ("scratch_dir", "L2A/56JMM"),
    ("scratch_dir", "{top}/link-campaign"), ("scratch_dir", "{top}/link-parent"), ("scratch_dir", "{top}/link-l2a"),
    ("scratch_dir", "{top}/link-logs"),
    ("output_dir", "."), ("output_dir", ".."), ("output_dir", "staging"), ("output_dir", "{top}"),
    ("output_dir", "{shared}"), ("output_dir", "{top}/link-shared"), ("output_dir", "{top}/link-campaign"),
    ("output_dir", "{top}/link-parent"), ("output_dir", "{top}/link-staging"), ("output_dir", "logs"),
    ("output_dir", "campaign.sqlite"),
]


@pytest.mark.parametrize(("key", "value"), DANGEROUS)
def test_dangerous_path_is_refused_and_nothing_is_deleted(world: dict[str, Path], key: str, value: str) -> None:
    camp, top = world["camp"], world["top"]
    value = value.format(top=top, shared=world["shared"])
    toml = camp / "s2l2a.toml"
    original = toml.read_text()
    before = snapshot(top)
    outputs = sorted((camp / "L2A").glob("*/*.SAFE"))
    assert len(outputs) == 2
    try:
        data = tomllib.loads(original)
        data["campaign"][key] = value
        toml.write_text(tomli_w.dumps(data))
        r = s2l2a("run", camp, "--processor", "noop")
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1, (r.stdout, r.stderr)
        assert len(lines) == 1 and lines[0].startswith("Error: ") and f"[campaign] {key}" in lines[0], lines
        assert "leftover" not in r.stdout + r.stderr
    finally:
        toml.write_text(original)
    assert snapshot(top) == before  # nothing deleted, nothing created
    assert all(p.is_dir() for p in outputs)
    assert (world["shared"] / ".config").read_text() == "not s2l2a's\n"


def test_the_campaign_still_runs_after_the_refusals(world: dict[str, Path]) -> None:
    r = s2l2a("run", world["camp"], "--processor", "noop")
    assert r.returncode == 0 and "nothing to run: 2 done" in r.stdout, r.stderr


def test_shared_scratch_keeps_other_programs_files(tmp_path: Path) -> None:
    """A scratch folder shared with others is fine: the campaign stages in a marked subfolder of its own."""
    shared = tmp_path / "scratch"
    shared.mkdir()
    (shared / ".hidden").write_text("x")
    (shared / "7").mkdir()  # looks like a job folder, but is not s2l2a's
    (shared / "7" / "data").write_text("keep")
    clone_sample(tmp_path / "in", day=0)
    camp = tmp_path / "C"
    assert s2l2a("init", camp, "--processor", "builtin", "--memory-mb", "256").returncode == 0
    toml = camp / "s2l2a.toml"
    toml.write_text(toml.read_text().replace("[campaign]\n", f"[campaign]\nscratch_dir = {str(shared)!r}\n", 1))
    assert s2l2a("plan", camp, tmp_path / "in").returncode == 0
    r = s2l2a("run", camp, "--processor", "noop")
    assert r.returncode == 0, r.stderr
    assert (shared / ".hidden").read_text() == "x" and (shared / "7" / "data").read_text() == "keep"
    (sub,) = [p for p in shared.iterdir() if p.name.startswith("s2l2a-C-")]
    assert list(sub.iterdir()) == []  # the job folder went with the job


@pytest.mark.parametrize("value", ["0", "nan", "a'quote", "new/deeper", "x\ty"])
def test_odd_but_harmless_names_are_accepted(tmp_path: Path, value: str) -> None:
    camp = tmp_path / "C"
    camp.mkdir()
    layout = check_paths(camp, CampaignSettings(output_dir=value, scratch_dir=value + "-scratch"))
    assert layout.output == camp.resolve() / value


@pytest.mark.parametrize("value", [".", "..", "s2l2a.toml", "results/x"])
def test_save_refuses_what_load_refuses(tmp_path: Path, value: str) -> None:
    camp = tmp_path / "C"
    camp.mkdir()
    with pytest.raises(ConfigError, match=r"\[campaign\] scratch_dir") as e:
        CampaignSettings(scratch_dir=value).save(camp)
    assert "\n" not in str(e.value)
    assert not (camp / "s2l2a.toml").exists()


def test_output_with_foreign_hidden_file_is_refused_but_empty_or_tile_folders_are_fine(tmp_path: Path) -> None:
    camp = tmp_path / "C"
    camp.mkdir()
    out = tmp_path / "out"
    (out / "56JMM").mkdir(parents=True)
    check_paths(camp, CampaignSettings(output_dir=str(out)))  # an L2A tree: tile folders only
    (out / ".DS_Store").write_text("")
    with pytest.raises(ConfigError, match=r"holds '\.DS_Store', which s2l2a did not make"):
        check_paths(camp, CampaignSettings(output_dir=str(out)))
    assert not claim_output(out) and not (out / OWNED_MARKER).exists()
    (out / ".DS_Store").unlink()
    assert claim_output(out)
    (out / ".DS_Store").write_text("")  # added later by someone else: the marked root is still s2l2a's
    check_paths(camp, CampaignSettings(output_dir=str(out)))


def test_cleanup_removes_only_marked_things(tmp_path: Path) -> None:
    """What a killed run leaves is cleaned; look-alikes in folders s2l2a does not own are not."""
    camp = tmp_path / "C"
    layout = CampaignLayout.of(camp)
    make_job_staging(layout.job_staging(3), camp)
    (layout.job_staging(3) / "x.SAFE").mkdir()
    (layout.staging / "notes").mkdir()           # not a job folder: stays
    (layout.staging / "link").symlink_to(tmp_path, target_is_directory=True)  # never followed
    foreign_out = tmp_path / "foreign"
    (foreign_out / "56JMM" / ".partial-1-A.SAFE").mkdir(parents=True)
    (foreign_out / "56JMM" / ".x.tmp").write_text("")
    assert clean_leftovers(camp, layout.staging, foreign_out) == [layout.job_staging(3)]
    assert (foreign_out / "56JMM" / ".partial-1-A.SAFE").is_dir() and (foreign_out / "56JMM" / ".x.tmp").exists()
    assert sorted(p.name for p in layout.staging.iterdir()) == ["link", "notes"] and tmp_path.is_dir()
    # a marked output root: its tile folders' half-written things go, products and links stay
    tile = layout.output / "56JMM"
    for name in (".partial-1-A.SAFE", ".replaced-1-B.SAFE", "C.SAFE"):
        (tile / name).mkdir(parents=True)
    (tile / ".C.SAFE.source").write_text("L1C\n")
    (tile / ".gone.SAFE.source").write_text("L1C\n")
    assert claim_output(layout.output, camp)
    (layout.output / "99XXX").symlink_to(foreign_out / "56JMM", target_is_directory=True)
    removed = clean_leftovers(camp, layout.staging, layout.output)
    assert sorted(p.name for p in removed) == [".gone.SAFE.source", ".partial-1-A.SAFE", ".replaced-1-B.SAFE"]
    assert sorted(p.name for p in tile.iterdir()) == [".C.SAFE.source", "C.SAFE"]
    assert (foreign_out / "56JMM" / ".partial-1-A.SAFE").is_dir()  # behind a link: untouched


def test_inputs_folder_is_reserved(tmp_path: Path) -> None:
    """plan unpacks CDSE zips into <campaign>/inputs: never an output or scratch folder."""
    from s2l2a.campaign.layout import RESERVED

    assert "inputs" in RESERVED


@pytest.mark.parametrize("key", ["output_dir", "scratch_dir"])
def test_a_home_of_nobody_is_one_line(tmp_path: Path, key: str) -> None:
    camp = tmp_path / "C"
    camp.mkdir()
    with pytest.raises(ConfigError, match=rf"\[campaign\] {key} = '~nosuchuser/x': cannot be resolved") as e:
        CampaignSettings(**{key: "~nosuchuser/x"}).save(camp)
    assert "\n" not in str(e.value) and str(e.value).startswith(str(camp / "s2l2a.toml"))
