"""Where every file of a campaign lives, and which folders s2l2a may delete things from.

One object, :class:`CampaignLayout`, names every path of a campaign, so no module spells
``"staging"`` or ``"L2A"`` itself. The same module holds the ownership rule, because the two
belong together: s2l2a deletes only what it created, and it recognises what it created by a
marker file, :data:`OWNED_MARKER` (``.s2l2a-owned``, one line naming the role and the campaign):

- each job's staging folder (``<staging>/<job id>/``) carries the marker from the moment it is
  created; cleanups remove only marked job folders (and, inside the campaign's own default
  ``staging/``, the job-id folders an older s2l2a left without one);
- the output root carries the marker once s2l2a has published into it; half-written products
  (``.partial-*``, ``.replaced-*``), stray ``.source`` markers and ``.tmp`` files are removed only in
  tile folders of a marked output root, never anywhere else;
- links are never followed by a cleanup (a link is removed as a link, or left alone).

:func:`check_paths` is the other half: it refuses settings under which an output or scratch
folder would be the campaign itself, one of its ancestors, one of its own files or folders, the
other one of the two, or a folder already holding things s2l2a did not make.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s2l2a.errors import ConfigError
from s2l2a.fsutil import write_text_atomic

# The names of a campaign's files and folders: the modules that write them import them from here.
SETTINGS_FILE = "s2l2a.toml"   # the settings (campaign.settings)
DB_FILE = "campaign.sqlite"    # the job store (campaign.store)
PROGRESS_FILE = "progress.log"  # the human-readable progress log (campaign.progress)
LOCK_FILE = "run.lock"         # one run at a time (campaign.lock)
LOGS_DIR = "logs"              # one log per job
RESULTS_DIR = "results"        # per-job result files written by cluster elements (campaign.jobspec)
MANIFESTS_DIR = "manifests"    # what each cluster array element runs (campaign.jobspec)
CLUSTER_DIR = "cluster"        # submitted arrays and their scheduler output
STAGING_DIR = "staging"        # default scratch_dir
OUTPUT_DIR = "L2A"             # default output_dir
DERIVED_DIR = "derived"        # indices, SCL, clear masks and quicklooks (s2l2a derive)
STAC_DIR = "stac"              # the STAC catalogue (s2l2a stac)
REPORT_FILE = "report.html"    # the campaign report (s2l2a report)
SEN2COR_DIR = "sen2cor"        # the campaign's GIPP files and install record (s2l2a sen2cor)
AUX_DIR = "aux"                # DEM tiles and ESA-CCI prepared for the campaign
INPUTS_DIR = "inputs"          # CDSE zips unpacked by plan (campaign.planner)
OWNED_MARKER = ".s2l2a-owned"
PARTIAL_PREFIX = ".partial-"
REPLACED_PREFIX = ".replaced-"
SOURCE_SUFFIX = ".source"
TMP_SUFFIX = ".tmp"

#: what the campaign folder holds besides outputs and staging: output_dir and scratch_dir may
#: be none of these, nor lie inside one of them
RESERVED = (SETTINGS_FILE, DB_FILE, f"{DB_FILE}-wal", f"{DB_FILE}-shm", f"{DB_FILE}-journal", PROGRESS_FILE,
            LOCK_FILE, LOGS_DIR, RESULTS_DIR, MANIFESTS_DIR, CLUSTER_DIR, DERIVED_DIR, STAC_DIR, REPORT_FILE,
            SEN2COR_DIR, AUX_DIR, INPUTS_DIR)

_TILE_DIR = re.compile(r"^\d{2}[A-Z]{3}$")
_JOB_DIR = re.compile(r"^\d+$")


@dataclass(frozen=True)
class CampaignLayout:
    """Every path of one campaign, resolved (symlinks followed) once.

    ``scratch`` is ``[campaign] scratch_dir`` as configured; ``staging`` is where this campaign's
    jobs stage: ``scratch`` itself when it lies inside the campaign, else a subfolder of its own
    (``s2l2a-<name>-<hash>``), so campaigns sharing ``/scratch/$USER`` never touch each other.
    """

    root: Path
    output: Path
    scratch: Path
    staging: Path

    @classmethod
    def of(cls, campaign_dir: Path | str, settings: Any = None) -> CampaignLayout:
        """The layout under ``settings`` (a CampaignSettings; None: the defaults)."""
        root = Path(campaign_dir).resolve()
        out_setting = getattr(settings, "output_dir", None) or OUTPUT_DIR
        scratch_setting = getattr(settings, "scratch_dir", None) or STAGING_DIR
        output = _resolve(root, out_setting, "[campaign] output_dir")
        scratch = _resolve(root, scratch_setting, "[campaign] scratch_dir")
        if scratch == root or root in scratch.parents:
            staging = scratch
        else:
            digest = hashlib.sha256(str(root).encode()).hexdigest()[:8]
            staging = scratch / f"s2l2a-{root.name}-{digest}"
        return cls(root=root, output=output, scratch=scratch, staging=staging)

    # -- the campaign's own files ----------------------------------------------------------------

    @property
    def settings_file(self) -> Path:
        return self.root / SETTINGS_FILE

    @property
    def store_file(self) -> Path:
        return self.root / DB_FILE

    @property
    def progress_log(self) -> Path:
        return self.root / PROGRESS_FILE

    @property
    def lock_file(self) -> Path:
        return self.root / LOCK_FILE

    @property
    def logs(self) -> Path:
        return self.root / LOGS_DIR

    @property
    def results(self) -> Path:
        return self.root / RESULTS_DIR

    @property
    def manifests(self) -> Path:
        return self.root / MANIFESTS_DIR

    @property
    def derived(self) -> Path:
        return self.root / DERIVED_DIR

    @property
    def cluster(self) -> Path:
        return self.root / CLUSTER_DIR

    @property
    def stac(self) -> Path:
        return self.root / STAC_DIR

    @property
    def report(self) -> Path:
        return self.root / REPORT_FILE

    @property
    def inputs(self) -> Path:
        return self.root / INPUTS_DIR

    @property
    def aux(self) -> Path:
        return self.root / AUX_DIR

    @property
    def dem(self) -> Path:
        """The DEM prepared for the campaign (``s2l2a dem``)."""
        return self.aux / "dem"

    @property
    def dem_manifest(self) -> Path:
        """Written once ``s2l2a dem`` has laid the DEM out: the folder is complete."""
        from s2l2a.auxdata.dem import MANIFEST

        return self.dem / MANIFEST

    def processor_dem(self, setting: Any = None) -> Path | None:
        """The DEM the built-in processor reads for this campaign (``[builtin] dem``).

        A path (a raster, or a folder ``s2l2a dem`` wrote) is taken relative to the campaign folder;
        ``false`` means flat terrain on purpose; unset means the campaign's own :attr:`dem` when
        ``s2l2a dem`` completed there (its manifest exists), else none. The setting's text is checked
        by :func:`check_paths` when the settings are read.
        """
        if setting is False:
            return None
        if setting is None:
            return self.dem if self.dem_manifest.is_file() else None
        return _resolve(self.root, str(setting), "[builtin] dem")

    @property
    def sen2cor(self) -> Path:
        return self.root / SEN2COR_DIR

    @property
    def gipp(self) -> Path:
        """The campaign's GIPP copies and their record (``s2l2a sen2cor gipp``)."""
        return self.sen2cor / "gipp"

    @property
    def gipp_record(self) -> Path:
        return self.gipp / "gipp.json"

    @property
    def sen2cor_install_record(self) -> Path:
        """Which Sen2Cor the GIPP files were written for (``s2l2a sen2cor install|check``)."""
        return self.sen2cor / "install.json"

    def job_log(self, job_id: int | str) -> Path:
        return self.logs / f"{job_id}.log"

    def derived_tile(self, tile: str) -> Path:
        return self.derived / tile

    def job_staging(self, job_id: int | str) -> Path:
        return self.staging / str(job_id)

    @property
    def default_staging(self) -> bool:
        """Whether staging is the campaign's own ``staging/`` folder (older versions left job
        folders there without a marker; they are recognised by their job-id names)."""
        return self.staging == self.root / STAGING_DIR


def _resolve(root: Path, text: Any, key: str) -> Path:
    """``text`` taken relative to ``root``, links followed; a ``~user`` naming nobody or a loop of
    links is a one-line ConfigError, not a traceback."""
    try:
        return (root / Path(text).expanduser()).resolve()
    except (RuntimeError, OSError) as e:
        raise ConfigError(f"{key} = {str(text)!r}: cannot be resolved: {e}") from None


# -- ownership markers ---------------------------------------------------------------------------

def is_owned(folder: Path) -> bool:
    """Whether ``folder`` is a real folder (not a link) carrying s2l2a's marker file."""
    marker = folder / OWNED_MARKER
    try:
        if folder.is_symlink() or not folder.is_dir() or marker.is_symlink() or not marker.is_file():
            return False
        with open(marker, encoding="utf-8") as f:
            return f.read(6) == "s2l2a "
    except OSError:
        return False


def mark_owned(folder: Path, role: str, campaign: Path | str | None = None) -> None:
    """Write the marker into ``folder`` (atomically; writing it twice is harmless)."""
    where = f" of campaign {Path(campaign).resolve()}" if campaign is not None else ""
    write_text_atomic(folder / OWNED_MARKER, f"s2l2a {role}{where}\n")


def make_job_staging(path: Path, campaign: Path | str | None = None) -> Path:
    """Create a job's staging folder with its marker (the parents as needed); it must not exist."""
    path.mkdir(parents=True)
    mark_owned(path, "job staging", campaign)
    return path


def staging_is_ours(path: Path, default_staging: bool = False) -> bool:
    """Whether a job staging folder may be deleted: it is marked, or it is a job-id folder in the
    campaign's own default ``staging/`` (left by an older s2l2a)."""
    if path.is_symlink() or not path.is_dir():
        return False
    return is_owned(path) or (default_staging and bool(_JOB_DIR.match(path.name)))


def claim_output(output: Path, campaign: Path | str | None = None) -> bool:
    """Create the output root, or adopt an existing one that is empty or holds only tile folders,
    and mark it; returns whether it is (now) s2l2a's. A folder with anything else in it is left
    unmarked: no cleanup ever touches it."""
    if output.is_symlink() and not output.exists():
        return False
    if is_owned(output):
        return True
    try:
        output.mkdir(parents=True, exist_ok=True)
        if _foreign_entry(output, _tile_entry) is not None:
            return False
        mark_owned(output, "output", campaign)
    except OSError:
        return False
    return True


# -- path validation ------------------------------------------------------------------------------

def _tile_entry(entry: os.DirEntry[str]) -> bool:
    return bool(_TILE_DIR.match(entry.name)) and entry.is_dir(follow_symlinks=False)


def _job_entry(default_staging: bool) -> Any:
    def ours(entry: os.DirEntry[str]) -> bool:
        return staging_is_ours(Path(entry.path), default_staging)
    return ours


def _foreign_entry(folder: Path, ours: Any) -> str | None:
    """The name of the first entry of ``folder`` that ``ours`` does not accept (None: all ours)."""
    with os.scandir(folder) as it:
        for entry in it:
            if entry.name != OWNED_MARKER and not ours(entry):
                return entry.name
    return None


def check_paths(campaign_dir: Path | str, settings: Any, source: Path | str | None = None) -> CampaignLayout:
    """Refuse, in one line naming the key, an output or scratch folder s2l2a could do harm in.

    Neither may be the campaign folder, one of its parents, one of its own files or folders
    (``logs``, ``results``, ...), the other one, or inside the other. An existing folder must be
    empty, marked as s2l2a's, or hold only what s2l2a puts there (tile folders in an output root,
    job folders in a staging root). Symlinks are resolved before comparing.
    """
    try:
        layout = CampaignLayout.of(campaign_dir, settings)
    except ConfigError as e:  # an output or scratch folder that cannot be resolved
        raise ConfigError(e.message, source if source is not None else Path(campaign_dir) / SETTINGS_FILE) from None
    source = source if source is not None else layout.settings_file
    root = layout.root
    out_key, scratch_key = "[campaign] output_dir", "[campaign] scratch_dir"
    out_text = getattr(settings, "output_dir", None) or OUTPUT_DIR
    scratch_text = getattr(settings, "scratch_dir", None) or STAGING_DIR

    def bad(key: str, text: str, what: str) -> ConfigError:
        return ConfigError(f"{key} = {text!r}: {what}", source)

    for key, text, path in ((out_key, out_text, layout.output), (scratch_key, scratch_text, layout.scratch)):
        if path == root:
            raise bad(key, text, f"is the campaign folder itself ({root}); give a folder of its own")
        if path in root.parents:
            raise bad(key, text, f"is {path}, a parent of the campaign folder; give a folder of its own")
        for name in RESERVED:
            own = root / name
            if path == own or own in path.parents:
                raise bad(key, text, f"is the campaign's own {name!r}; give a folder of its own")
    if layout.output == layout.staging or layout.output == layout.scratch:
        raise bad(out_key, out_text, f"is the same folder as {scratch_key} = {scratch_text!r} ({layout.output}); "
                                     "give each a folder of its own")
    if layout.staging in layout.output.parents:
        raise bad(out_key, out_text, f"lies inside the scratch folder {layout.staging}")
    if layout.output in layout.staging.parents or layout.output in layout.scratch.parents:
        raise bad(scratch_key, scratch_text, f"lies inside the output folder {layout.output}")
    for key, text, path, ours in ((out_key, out_text, layout.output, _tile_entry),
                                  (scratch_key, scratch_text, layout.staging, _job_entry(layout.default_staging))):
        if not os.path.lexists(path) or is_owned(path):
            continue
        if not path.is_dir():
            raise bad(key, text, f"{path} exists and is not a folder")
        try:
            foreign = _foreign_entry(path, ours)
        except OSError as e:
            raise bad(key, text, f"cannot list {path}: {e.strerror}") from None
        if foreign is not None:
            raise bad(key, text, f"{path} holds {foreign!r}, which s2l2a did not make; "
                                 "give an empty or new folder")
    builtin = (getattr(settings, "sections", None) or {}).get("builtin")
    if isinstance(builtin, dict):
        check_dem_setting(layout, builtin.get("dem"), source)
    return layout


def check_dem_setting(layout: CampaignLayout, value: Any, source: Path | str | None = None) -> None:
    """Refuse, in one line, a ``[builtin] dem`` that cannot name a DEM: not text (``false`` is
    allowed: flat), empty, with quotes or control characters (a newline would split the job log's
    and report's one-line records), or the campaign folder, one of its parents or one of its own
    files and folders (``aux`` excepted: the campaign's DEM lives there)."""
    if value is None or value is False:
        return

    def bad(what: str) -> ConfigError:
        return ConfigError(f"[builtin] dem = {value!r}: {what}", source)

    hint = f"name a DEM raster or the folder 's2l2a dem' wrote ({layout.dem})"
    if not isinstance(value, str) or not value.strip():
        raise bad(f"must be a path ({hint}) or false for flat terrain")
    if any(c in "'\"" or ord(c) < 32 or ord(c) == 127 for c in value):
        raise bad("quotes and control characters (newline, tab) are not allowed in the path")
    root = layout.root
    try:
        path = layout.processor_dem(value)
    except ConfigError as e:
        raise ConfigError(e.message, source) from None
    if path == root:
        raise bad(f"is the campaign folder itself ({root}); {hint}")
    if path is not None and path in root.parents:
        raise bad(f"is {path}, a parent of the campaign folder; {hint}")
    for name in RESERVED:
        own = root / name
        if name != AUX_DIR and path is not None and (path == own or own in path.parents):
            raise bad(f"is the campaign's own {name!r}; {hint}")
