"""Campaigns of cloned real L2A products for the cube tests.

The clones start from the two real L2A test products (tests/data/outputs, tile 29RKH, real pixels of
2020-02-19 at baseline 02.14 and the same reflectances encoded as 05.00 with BOA_ADD_OFFSET -1000).
A clone is another acquisition day, optionally another tile id with a shifted geotransform (what the
real neighbouring tile shows in the overlap), and a scene classification the test chooses, so the
masking and the mosaic rule can be checked pixel by pixel. Like tests/sample_clones.py, a clone
copies the product and rewrites its identity in names and metadata.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from s2l2a.campaign.settings import CampaignSettings
from s2l2a.campaign.store import AttemptOutcome, CampaignStore, ProductRecord

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "outputs"
FIXTURES = {
    "02.14": DATA / "S2A_MSIL2A_20200219T112111_N0214_R037_T29RKH_20200219T123947.SAFE",
    "05.00": DATA / "S2A_MSIL2A_20200219T112111_N0500_R037_T29RKH_20230401T101010.SAFE",
}
DAY0 = date(2020, 2, 19)
ULX, ULY = 257580.0, 2800020.0   # the fixture's upper-left corner (EPSG:32629)

SclFn = Callable[[tuple[int, int], Affine], np.ndarray]


def clone_l2a(dest_root: Path, *, day: int = 0, baseline: str = "02.14", tile: str = "29RKH",
              shift: tuple[float, float] = (0.0, 0.0), scl: SclFn | None = None) -> Path:
    """The real L2A of ``baseline`` as acquisition ``day`` days after 2020-02-19 over ``tile``, its
    images moved by ``shift`` metres (east, north); ``scl(shape, transform)`` gives its SCL classes."""
    src = FIXTURES[baseline]
    d = DAY0 + timedelta(days=day)
    d8, d10 = f"{d:%Y%m%d}", f"{d:%Y-%m-%d}"

    def rename(text: str) -> str:
        return text.replace("20200219", d8).replace("2020-02-19", d10).replace("29RKH", tile)

    dest = dest_root / rename(src.name)
    for dirpath, _dirs, files in os.walk(src):
        rel = Path(rename(str(Path(dirpath).relative_to(src))))
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for f in files:
            s, t = Path(dirpath) / f, dest / rel / rename(f)
            if f.endswith(".xml"):
                text = rename(s.read_text(encoding="utf-8"))
                text = text.replace(f"<ULX>{ULX:.0f}</ULX>", f"<ULX>{ULX + shift[0]:.0f}</ULX>")
                text = text.replace(f"<ULY>{ULY:.0f}</ULY>", f"<ULY>{ULY + shift[1]:.0f}</ULY>")
                t.write_text(text, encoding="utf-8")
            else:
                shutil.copyfile(s, t)
    for tif in dest.rglob("*.tif"):
        if shift != (0.0, 0.0) or (scl is not None and "_SCL_" in tif.name):
            with rasterio.open(tif, "r+") as ds:
                a = ds.transform
                ds.transform = Affine(a.a, a.b, a.c + shift[0], a.d, a.e, a.f + shift[1])
                if scl is not None and "_SCL_" in tif.name:
                    ds.write(scl((ds.height, ds.width), ds.transform).astype(np.uint8), 1)
    return dest


def make_campaign(root: Path, products: list[dict]) -> Path:
    """A campaign whose jobs are done with the given clones (``clone_l2a`` keyword dicts, plus
    ``processor``/``version``); L1C folders are placeholders, as in tests/outputs."""
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "s2l2a.toml").exists():
        CampaignSettings(name="cube-test").save(root)
    add_products(root, products)
    return root


def add_products(root: Path, products: list[dict]) -> list[Path]:
    """Clone and record more done products (what a later run of the campaign adds)."""
    l1c_root = root / "L1C"
    l1c_root.mkdir(exist_ok=True)
    made = []
    with CampaignStore.open(root, create=True) as store:
        for p in products:
            p = dict(p)
            processor, version = p.pop("processor", "sen2cor"), p.pop("version", "2.11.0")
            tile = p.get("tile", "29RKH")
            l2a = clone_l2a(root / "L2A" / tile, **p)
            l1c_name = l2a.name.removesuffix(".SAFE").replace("MSIL2A", "MSIL1C")
            l1c = l1c_root / f"{l1c_name}.SAFE"
            l1c.mkdir()
            d = DAY0 + timedelta(days=p.get("day", 0))
            [(job_id, _new)] = store.add_products([ProductRecord(
                path=l1c, name=l1c_name, tile=tile, sensing_time=f"{d:%Y-%m-%d}T11:21:11Z",
                baseline=p.get("baseline", "02.14"), mission="S2A")])
            store.start_attempt(job_id, "node1", 100 + job_id, str(root / "logs" / f"{job_id}.log"))
            store.finish_attempt(job_id, AttemptOutcome("done", output_path=str(l2a), processor=processor,
                                                        processor_version=version))
            made.append(l2a)
    return made


def scl_all(value: int) -> SclFn:
    return lambda shape, _t: np.full(shape, value, dtype=np.uint8)


def scl_box(inside: int, outside: int, x0: float, x1: float, y0: float, y1: float) -> SclFn:
    """Class ``inside`` for pixels whose centre lies in [x0, x1) x [y0, y1) (UTM metres), else ``outside``."""
    def f(shape: tuple[int, int], t: Affine) -> np.ndarray:
        rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
        x = t.c + (cols + 0.5) * t.a
        y = t.f + (rows + 0.5) * t.e
        return np.where((x >= x0) & (x < x1) & (y >= y0) & (y < y1), inside, outside).astype(np.uint8)
    return f
