"""The built-in processor's atmospheric look-up table: loading and vectorised interpolation.

Model (6S convention, see docs/lut.md)::

    rho_toa = t_gas * (path_reflectance + t_down * t_up * rho / (1 - s_albedo * rho))

``path_reflectance`` is gas-coupled: ``t_gas * path_reflectance`` is exactly 6S's apparent reflectance
of a black surface (6S absorbs the path radiance by only part of the water vapour), so the model
reproduces 6S without us re-deriving 6S's coupling.

Interpolation is multilinear, in coordinates that make the quantities nearly linear between nodes:
AOT as is, sun zenith as tan, view zenith as sin, relative azimuth as -cos (first azimuth harmonic),
elevation as 1 - exp(-z / 8 km) (pressure), water vapour as sqrt(wv) (strong-line absorption) on
log-ratios. Inputs outside the grid are CLIPPED to its edge (no extrapolation): AOT > max, SZA > max,
elevation < 0, ... get the edge node's values. :meth:`AtmLUT.out_of_range` tells a caller which
pixels were clipped.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from s2l2a.processors.builtin.srf import srf_mission

ArrayLike = Any  # numbers or numpy arrays, broadcast together
DEFAULT_AEROSOL = "continental"
_CHUNK = 1 << 18  # pixels per interpolation chunk: bounds the temporaries (~20 MB)


@dataclass(frozen=True)
class Coefficients:
    """Per-pixel atmospheric coefficients of one band (float32 arrays of the broadcast input shape)."""

    path_reflectance: np.ndarray
    t_gas: np.ndarray
    t_down: np.ndarray
    t_up: np.ndarray
    s_albedo: np.ndarray


@dataclass(frozen=True)
class Optics:
    """Optical depths and upward diffuse transmittances of one band (float32, broadcast shape).

    ``tau_rayleigh``, ``tau_aerosol``: extinction optical depths of the column above the surface (the
    direct beam is ``exp(-(tau_rayleigh + tau_aerosol) / mu)``); ``diffuse_up_rayleigh`` and
    ``diffuse_up_aerosol``: 6S's Rayleigh and aerosol scattering transmittances towards a nadir sensor
    minus their direct parts (the weights of 6S's two environment functions).
    """

    tau_rayleigh: np.ndarray
    tau_aerosol: np.ndarray
    diffuse_up_rayleigh: np.ndarray
    diffuse_up_aerosol: np.ndarray

    @property
    def tau(self) -> np.ndarray:
        return self.tau_rayleigh + self.tau_aerosol


def _t_aot(x: np.ndarray) -> np.ndarray:
    return x


def _t_zenith(x: np.ndarray) -> np.ndarray:
    # tan: like the angle near zenith (where the azimuth-dependent scattering term grows like sin),
    # like the air mass 1/cos towards the horizon (where transmittances follow exp(-tau / cos)).
    return np.tan(np.radians(x))


def _t_vza(x: np.ndarray) -> np.ndarray:
    # Sentinel-2 views within 12 deg of nadir: the air mass hardly changes (1/cos 12 = 1.022) but
    # the azimuth-dependent scattering term grows like sin(vza), i.e. linearly in the angle.
    return np.sin(np.radians(x))


def _t_raa(x: np.ndarray) -> np.ndarray:
    return -np.cos(np.radians(x))


def _t_elev(x: np.ndarray) -> np.ndarray:
    return 1.0 - np.exp(-x / 8.0)


def _t_wv(x: np.ndarray) -> np.ndarray:
    return np.sqrt(x)


def fold_raa(raa: ArrayLike) -> np.ndarray:
    """Relative azimuth folded into [0, 180] degrees (0 = sensor on the sun's side, backscatter)."""
    r = np.mod(np.asarray(raa, dtype=np.float64), 360.0)
    return np.where(r > 180.0, 360.0 - r, r)


class _Axis:
    """One interpolation axis: node values, and the coordinate transform used for the weights."""

    def __init__(self, nodes: np.ndarray, transform: Callable[[np.ndarray], np.ndarray]) -> None:
        self.nodes = np.asarray(nodes, dtype=np.float64)
        self.transform = transform
        self.t_nodes = transform(self.nodes)

    def locate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower node index and upper weight of ``x`` (clipped to the node range)."""
        n = self.nodes.size
        if n == 1:
            return np.zeros(x.shape, dtype=np.intp), np.zeros(x.shape)
        xc = np.clip(x, self.nodes[0], self.nodes[-1])
        i0 = np.clip(np.searchsorted(self.nodes, xc, side="right") - 1, 0, n - 2)
        t0 = self.t_nodes[i0]
        w = np.clip((self.transform(xc) - t0) / (self.t_nodes[i0 + 1] - t0), 0.0, 1.0)
        return i0, w


def _multilinear(table: np.ndarray, axes: list[_Axis], coords: list[np.ndarray]) -> np.ndarray:
    """Interpolate ``table`` (axes..., nq) at 1-D coordinate arrays; returns (npix, nq).

    Gathers the 2**d cell corners from the flattened table at ``base + constant offset`` and builds
    the corner weights as a running outer product (2 + 4 + ... multiplications, not d per corner).
    """
    dims = table.shape[:-1]
    flat = table.reshape(-1, table.shape[-1])
    strides = np.cumprod((1,) + dims[:0:-1])[::-1]
    base = np.zeros(coords[0].size, dtype=np.intp)
    corners: list[tuple[int, np.ndarray]] = [(0, np.ones(coords[0].size))]
    for d, (ax, c) in enumerate(zip(axes, coords, strict=True)):
        i0, w = ax.locate(c)
        base += i0 * int(strides[d])
        if dims[d] == 1:
            continue
        step = int(strides[d])
        corners = [item for off, wt in corners for item in ((off, wt * (1.0 - w)), (off + step, wt * w))]
    out = np.zeros((coords[0].size, flat.shape[1]))
    for off, wt in corners:
        out += np.take(flat, base + off, axis=0) * wt[:, None]
    return out


class AtmLUT:
    """A 6S look-up table for one mission's spectral responses (see :func:`load_lut`)."""

    def __init__(self, data: dict[str, np.ndarray], mission: str = "S2A",
                 provenance: dict[str, Any] | None = None) -> None:
        self.mission = mission.upper()
        self.provenance = provenance or {}
        self.bands: tuple[str, ...] = tuple(str(b) for b in data["bands"])
        self.wv_ref = float(data["wv_ref"])
        self.ozone_ref = float(data["ozone"])
        self.axes: dict[str, np.ndarray] = {
            "aot": np.array(data["aot"], dtype=float),
            "sza": np.array(data["sza"], dtype=float),
            "vza": np.array(data["vza"], dtype=float),
            "raa": np.array(data["raa"], dtype=float),
            "elevation_km": np.array(data["elevation"], dtype=float),
            "wv": np.array(data["wv"], dtype=float),
        }
        self.wv_bands = frozenset(str(b) for b in data["wv_bands"])
        main = np.array(data["main"], dtype=np.float64)
        src = srf_mission(self.mission)
        if src != "S2A":
            main = self._mission_corrected(main, data, src)
        self._main = main  # (band, aot, sza, vza, raa, elev, q)
        self._wv = np.array(data["wv_lnratio"], dtype=np.float64)  # (band, aot', sza, vza, elev, wv, 2)
        if src != "S2A" and f"mission_wv_lnratio_{src}" in data:
            self._wv = self._wv + self._mission_wv(data, src)
        self._main_axes = [_Axis(data["aot"], _t_aot), _Axis(data["sza"], _t_zenith),
                           _Axis(data["vza"], _t_vza), _Axis(data["raa"], _t_raa),
                           _Axis(data["elevation"], _t_elev)]
        key = f"optics_{src}" if f"optics_{src}" in data else "optics_S2A"
        self._optics = np.array(data[key], dtype=np.float64) if key in data else None
        self._optics_axes = [_Axis(data["aot"], _t_aot), _Axis(data["elevation"], _t_elev)]
        self._wv_axes = [_Axis(data["wv_aot"], _t_aot), _Axis(data["sza"], _t_zenith),
                         _Axis(data["vza"], _t_vza), _Axis(data["elevation"], _t_elev),
                         _Axis(data["wv"], _t_wv)]

    @staticmethod
    def _mission_corrected(main: np.ndarray, data: dict[str, np.ndarray], src: str) -> np.ndarray:
        key = f"mission_lnratio_{src}"
        if key not in data:
            raise ValueError(f"table has no spectral-response correction for {src}")
        lr = np.asarray(data[key], dtype=np.float64)  # (band, aot_m, sza_m, q)
        axes = [_Axis(data["mission_aot"], _t_aot), _Axis(data["mission_sza"], _t_zenith)]
        aa, ss = np.meshgrid(np.asarray(data["aot"], float), np.asarray(data["sza"], float), indexing="ij")
        out = main.copy()
        for ib in range(main.shape[0]):
            corr = _multilinear(lr[ib], axes, [aa.ravel(), ss.ravel()]).reshape(aa.shape + (lr.shape[-1],))
            out[ib] *= np.exp(corr)[:, :, None, None, None, :]
        return out

    @staticmethod
    def _mission_wv(data: dict[str, np.ndarray], src: str) -> np.ndarray:
        """Water-vapour dependence of the mission correction, on the wv table's (sza, wv) nodes."""
        mw = np.asarray(data[f"mission_wv_lnratio_{src}"], dtype=np.float64)  # (band, sza_m, wv, 2)
        ax = _Axis(data["mission_sza"], _t_zenith)
        sza = np.asarray(data["sza"], dtype=float)
        i0, w = ax.locate(sza)
        i1 = np.minimum(i0 + 1, mw.shape[1] - 1)
        at_sza = mw[:, i0] * (1.0 - w)[None, :, None, None] + mw[:, i1] * w[None, :, None, None]
        # -> (band, 1 aot', sza, 1 vza, 1 elev, wv, 2)
        return at_sza[:, None, :, None, None, :, :]

    @property
    def has_optics(self) -> bool:
        """Whether the table carries the optics arrays (``lutgen --optics``) terrain/adjacency need."""
        return self._optics is not None

    def optics(self, band: str, aot: ArrayLike, elevation_km: ArrayLike = 0.0) -> Optics:
        """Optical depths and Rayleigh/aerosol diffuse upward transmittances of ``band`` (see Optics).

        Multilinear on the table's AOT x elevation nodes, clipped like :meth:`coefficients`.
        """
        if self._optics is None:
            raise KeyError("look-up table has no optics arrays (add them with python -m "
                           "s2l2a.processors.builtin.lutgen --optics TABLE.npz)")
        ib = self.bands.index(band)
        a, z = np.broadcast_arrays(np.asarray(aot, np.float64), np.asarray(elevation_km, np.float64))
        q = _multilinear(self._optics[ib], self._optics_axes, [a.ravel(), z.ravel()])
        tau_r, tau_a, tu_r, tu_a = (q[:, k].reshape(a.shape) for k in range(4))
        d_r = np.maximum(tu_r - np.exp(-tau_r), 0.0)
        d_a = np.maximum(tu_a - np.exp(-tau_a), 0.0)
        return Optics(*(np.asarray(v, np.float32) for v in (tau_r, tau_a, d_r, d_a)))

    def out_of_range(self, aot: ArrayLike, sza: ArrayLike, vza: ArrayLike, elevation_km: ArrayLike,
                     wv: ArrayLike) -> np.ndarray:
        """Boolean mask of inputs the table clips (outside its node range on some axis)."""
        mask = np.zeros(np.broadcast_shapes(*(np.shape(v) for v in (aot, sza, vza, elevation_km, wv))),
                        dtype=bool)
        for name, v in (("aot", aot), ("sza", sza), ("vza", vza), ("elevation_km", elevation_km), ("wv", wv)):
            nodes = self.axes[name]
            a = np.asarray(v, dtype=float)
            mask |= (a < nodes[0]) | (a > nodes[-1])
        return mask

    def coefficients(self, band: str, aot: ArrayLike, sza: ArrayLike, vza: ArrayLike, raa: ArrayLike,
                     elevation_km: ArrayLike = 0.0, wv: ArrayLike | None = None,
                     ozone: ArrayLike | None = None) -> Coefficients:
        """Coefficients of ``band`` at the given (broadcastable) conditions.

        aot: AOT at 550 nm of the column above the surface; sza/vza: zenith angles (deg); raa: relative
        azimuth |sun_az - view_az| (deg, any range; folded to [0, 180]); elevation_km: surface height;
        wv: water-vapour column above the surface (g/cm2; None = the table's reference); ozone: column
        in cm-atm (None = the table's 0.30), applied as Beer-Lambert scaling of the ozone transmittance.
        """
        if band not in self.bands:
            raise KeyError(f"band {band!r} not in table (bands: {', '.join(self.bands)})")
        ib = self.bands.index(band)
        wv_in = self.wv_ref if wv is None else wv
        arrays = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in
                                       (aot, sza, vza, raa, elevation_km, wv_in,
                                        self.ozone_ref if ozone is None else ozone)))
        shape = arrays[0].shape
        flat = [a.ravel() for a in arrays]
        flat[3] = fold_raa(flat[3])
        n = flat[0].size
        out = np.empty((5, n), dtype=np.float32)
        use_wv = band in self.wv_bands
        for s in range(0, max(n, 1), _CHUNK):
            sl = slice(s, min(s + _CHUNK, n))
            c = [f[sl] for f in flat]
            q = _multilinear(self._main[ib], self._main_axes, c[:5])
            a, tg = q[:, 0], q[:, 1]
            if use_wv:
                lr = _multilinear(self._wv[ib], self._wv_axes, [c[0], c[1], c[2], c[4], c[5]])
                a = a * np.exp(lr[:, 0])
                tg = tg * np.exp(lr[:, 1])
            if ozone is not None:
                # Ozone sits above the scatterers: it absorbs the path and the surface signal alike.
                f = q[:, 5] ** (c[6] / self.ozone_ref - 1.0)
                a, tg = a * f, tg * f
            out[0, sl] = a / tg
            out[1, sl] = tg
            out[2, sl] = q[:, 2]
            out[3, sl] = q[:, 3]
            out[4, sl] = q[:, 4]
        return Coefficients(*(o.reshape(shape) for o in out))


def _data_dir() -> Path:
    return Path(str(resources.files("s2l2a.processors.builtin") / "data"))


def table_path(aerosol: str = DEFAULT_AEROSOL) -> Path:
    """Path of the shipped table for ``aerosol`` (its provenance sits next to it as .json)."""
    return _data_dir() / f"lut_{aerosol}.npz"


def read_lut(path: Path, mission: str = "S2A") -> AtmLUT:
    """Load a table file (e.g. one made by ``lutgen --assemble``) for ``mission``'s responses."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: look-up table not found (make one with "
                                "python -m s2l2a.processors.builtin.lutgen)")
    with np.load(path, allow_pickle=False) as npz:
        data = {k: npz[k] for k in npz.files}
    prov_path = path.with_suffix(".json")
    prov = json.loads(prov_path.read_text()) if prov_path.exists() else {}
    return AtmLUT(data, mission, prov)


@functools.lru_cache(maxsize=8)
def _load_cached(mission: str, aerosol: str) -> AtmLUT:
    return read_lut(table_path(aerosol), mission)


def load_lut(mission: str = "S2A", aerosol: str = DEFAULT_AEROSOL) -> AtmLUT:
    """The shipped table for a mission ("S2A", "S2B", "S2C" = S2B responses), cached per process."""
    srf_mission(mission)  # validates the name
    return _load_cached(mission.upper(), aerosol)
