"""A synthetic L1C over rugged terrain with known BOA, forward-modelled with terrain and adjacency.

The bundled real sample's metadata (angle grids, ECMWF aux: a winter sun ~57 deg from zenith) with
synthetic pixels over a small area (the 10 m grid has ``px10`` m pixels): a fractal DEM (spectral
synthesis, power-law spectrum, seeded), a vegetation/soil mixture draped over it, a flat lake in the
lowest valley, aerosol growing west to east and water vapour, both with the vertical profiles of
levels.py. Each band is forwarded on its own grid with the physics the processor inverts, computed
here per pixel straight from the look-up table at the pixel's height (not through the processor's
level stack or cell grid): terrain illumination from the DEM on that grid, cast shadows, sky view,
and the adjacency term from 6S's environment functions on that grid. The DEM is written as a
GeoTIFF at the 10 m grid for the processor to reproject.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from s2l2a.processors.builtin.adjacency import EnvironmentOperator
from s2l2a.processors.builtin.geometry import geometry_on_grid
from s2l2a.processors.builtin.invert import apparent_reflectance, irradiance_factor
from s2l2a.processors.builtin.levels import aot_factor, wv_factor
from s2l2a.processors.builtin.pipeline import NATIVE
from s2l2a.processors.builtin.priors import read_priors
from s2l2a.processors.builtin.terrain import cast_shadow, gradients, incidence_cosine, sky_view
from s2l2a.safe import open_l1c

from .synth import BANDS, SAMPLE, SPECTRA

ULX, ULY = 399960.0, 6700000.0


def fractal_dem(n: int, pixel_m: float, relief_m: float, seed: int = 7, beta: float = 4.0,
                min_wavelength_m: float = 1200.0) -> np.ndarray:
    """A seeded fractal surface (power spectrum ~ k^-beta), cut below ``min_wavelength_m``, 0..relief."""
    rng = np.random.default_rng(seed)
    ky = np.fft.fftfreq(n, d=pixel_m)[:, None]
    kx = np.fft.rfftfreq(n, d=pixel_m)[None, :]
    k = np.hypot(ky, kx)
    amp = np.where(k > 0, k, np.inf) ** (-beta / 2)
    amp[k > 1.0 / min_wavelength_m] = 0.0
    spec = amp * (rng.normal(size=k.shape) + 1j * rng.normal(size=k.shape))
    z = np.fft.irfft2(spec, s=(n, n))
    z = (z - z.min()) / (z.max() - z.min())
    return (z * relief_m).astype(np.float64)


@dataclass
class TerrainTruth:
    """What the synthetic terrain product is made of (fields on the 10 m grid)."""

    n10: int
    px10: float
    dem: np.ndarray          # m, 10 m grid
    veg: np.ndarray          # vegetation fraction (rest: soil; lake: water)
    lake: np.ndarray
    aot_sl: tuple[float, float]
    wv_sl: float

    def _on(self, a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        f = a.shape[0] // shape[0]
        if f == 1:
            return a
        return a.reshape(shape[0], f, shape[1], f).mean(axis=(1, 3))

    def dem_on(self, shape: tuple[int, int]) -> np.ndarray:
        return self._on(self.dem, shape)

    def boa(self, band: str, shape: tuple[int, int]) -> np.ndarray:
        i = BANDS.index(band)
        v = self._on(self.veg, shape)
        w = self._on(self.lake.astype(float), shape)
        land = v * SPECTRA["vegetation"][i] + (1 - v) * SPECTRA["soil"][i]
        return (1 - w) * land + w * SPECTRA["water"][i]

    def aot(self, shape: tuple[int, int]) -> np.ndarray:
        cols = (np.arange(shape[1]) + 0.5) / shape[1]
        return np.broadcast_to(self.aot_sl[0] + (self.aot_sl[1] - self.aot_sl[0]) * cols, shape).copy()

    def clear(self, shape: tuple[int, int]) -> np.ndarray:
        return np.ones(shape, bool)


def make_terrain_product(dest: Path, lut, n10: int = 240, px10: float = 30.0, relief_m: float = 1200.0,
                         aot_sl: tuple[float, float] = (0.10, 0.25), wv_sl: float = 1.6,
                         adjacency: bool = True) -> tuple[Path, Path, TerrainTruth]:
    """Write the product and its DEM under ``dest``; returns (SAFE, DEM GeoTIFF, truth)."""
    safe = dest / SAMPLE.name
    shutil.copytree(SAMPLE, safe, ignore=shutil.ignore_patterns("*_B??.jp2", "QI_DATA", "*.gml"))
    product = open_l1c(SAMPLE)
    granule = product.granules[0]
    gdir = safe / "GRANULE" / granule.granule_id / "IMG_DATA"
    pri = read_priors(granule.aux_files)
    shift = 8.0 * np.log(1013.25 / pri.pressure_hpa)
    # the DEM is smooth at the scale of the bands' pixels (shortest wavelength 1.2 km, as a DEM resolves
    # the terrain, not its 10 m detail); every band's truth terrain is its block mean on the band's grid
    crs = f"EPSG:{granule.epsg}"
    dem = fractal_dem(n10, px10, relief_m) + 200.0
    floor = np.percentile(dem, 6)
    dem = np.maximum(dem, floor)  # a flat lake surface in the lowest valleys
    lake = dem <= floor
    dem_path = dest / "dem.tif"
    with rasterio.open(dem_path, "w", driver="GTiff", width=n10, height=n10, count=1, dtype="float32",
                       crs=crs, transform=Affine(px10, 0, ULX, 0, -px10, ULY)) as ds:
        ds.write(dem.astype(np.float32), 1)
    veg = np.clip(fractal_dem(n10, px10, 1.0, seed=3, beta=3.0, min_wavelength_m=300) * 1.6 - 0.3, 0, 1)
    # dense forest patches (dark dense vegetation) among fields of at most 55 % cover: only pure forest
    # passes the dark-target test, as the DDV relation (red = B12 / 2) holds for it alone
    veg = np.where(veg > 0.55, 1.0, veg)
    truth = TerrainTruth(n10, px10, dem, veg, lake, aot_sl, wv_sl)
    sun = (float(granule.mean_sun_zenith), float(granule.mean_sun_azimuth))
    for band in BANDS:
        n = n10 * 10 // NATIVE[band]
        shape = (n, n)
        px = px10 * n10 / n
        geom = geometry_on_grid(granule.angles, shape, granule.mean_sun_zenith, granule.mean_sun_azimuth)
        if band == "B10":
            toa = np.full(shape, 0.0015)
        else:
            toa = _forward(lut, band, truth, shape, px, geom, sun, shift, pri.ozone_du / 1000.0, adjacency)
        dn = np.clip(np.rint(toa * 10000), 1, 65534).astype(np.uint16)
        with rasterio.open(gdir / f"T56JMM_20180629T000241_{band}.jp2", "w", driver="JP2OpenJPEG", width=n,
                           height=n, count=1, dtype="uint16", crs=crs,
                           transform=Affine(px, 0, ULX, 0, -px, ULY), quality=100, reversible="YES") as ds:
            ds.write(dn, 1)
    return safe, dem_path, truth


def _forward(lut, band: str, truth: TerrainTruth, shape: tuple[int, int], px: float, geom, sun, shift: float,
             ozone: float, adjacency: bool) -> np.ndarray:
    z_km = truth.dem_on(shape) / 1000.0
    aot = truth.aot(shape) * aot_factor(z_km)
    wv = truth.wv_sl * wv_factor(z_km)
    vza, raa = geom.band(band)
    ze = np.maximum(z_km + shift, 0.0)
    c = lut.coefficients(band, aot, geom.sza, vza, raa, ze, wv, ozone=ozone)
    o = lut.optics(band, aot, ze)
    mus, muv = np.cos(np.radians(geom.sza)), np.cos(np.radians(vza))
    dsum = o.diffuse_up_rayleigh + o.diffuse_up_aerosol
    w_r = np.where(dsum > 1e-6, o.diffuse_up_rayleigh / np.maximum(dsum, 1e-6), 1.0).astype(np.float32)
    q = np.stack([c.path_reflectance, c.t_gas, c.t_down, c.t_up, c.s_albedo, np.exp(-o.tau / mus),
                  np.exp(-o.tau / muv), mus]).astype(np.float32)
    dem = truth.dem_on(shape)
    gx, gy = gradients(dem, px, px)
    ci = incidence_cosine(gx, gy, geom.sza, geom.saa)
    ci = np.clip(ci, 0.0, 1.0)
    ci[cast_shadow(dem, px, *sun)] = 0.0
    v = sky_view(dem, px)
    rho = truth.boa(band, shape).astype(np.float32)
    op = EnvironmentOperator(shape, px, np.ones(shape, bool)) if adjacency else None
    # the surroundings' reflected light and the pixel's irradiance depend on each other: iterate
    env = rho * q[2]
    for _ in range(8):
        m = rho * irradiance_factor(q, env, ci, v)
        env = op.apply(m, w_r) if adjacency else m
    return apparent_reflectance(m, q, env).astype(np.float64)
