"""Build the small L2A SAFE products under tests/data/outputs/ from real data (run once, output committed).

Why: the derive/STAC/quicklook tests need L2A products with real pixels at two encodings, the one
before processing baseline 04.00 (reflectance = DN / 10000) and the one since (reflectance =
(DN - 1000) / 10000). The only real L2A pixels we hold are Earth Search COGs of baseline 02.14
(tile 29RKH, 2020-02-19); this script crops them and writes

- ``N0214``: the real DN values under real 02.14 product metadata (template: ESA T22HBD 02.14),
- ``N0500``: the same pixels encoded as ESA's Collection-1 reprocessing (baseline 05.00) encodes
  them: DN + 1000 where DN > 0, under real 04.00 product metadata carrying BOA_ADD_OFFSET -1000
  (template: ESA T33XWJ 04.00).

So both products hold the same reflectances: an NDVI computed correctly is identical on both, and
one computed on raw DN is not. Run: ``.venv/bin/python tests/outputs/make_fixtures.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import rasterio
from lxml import etree
from pyproj import Transformer
from rasterio.transform import Affine
from rasterio.windows import Window

REPO = Path(__file__).resolve().parents[2]
SRC = REPO.parent / "shared" / "realdata" / "pixels" / "riotilerpds-earthsearch-L2A-COG-29RKH-20200219-decimated"
META = REPO / "tests" / "data" / "safe" / "l2a_metadata" / "stactools-sentinel2"
TEMPLATES = {
    "02.14": META / "esa_S2B_MSIL2A_20210122T133229_N0214_R081_T22HBD_20210122T155500.SAFE" / "MTD_MSIL2A.xml",
    "05.00": META / "S2B_MSIL2A_20220413T150759_N0400_R025_T33XWJ_20220414T082126.SAFE" / "MTD_MSIL2A.xml",
}
OUT = REPO / "tests" / "data" / "outputs"
NAMES = {
    "02.14": "S2A_MSIL2A_20200219T112111_N0214_R037_T29RKH_20200219T123947",
    "05.00": "S2A_MSIL2A_20200219T112111_N0500_R037_T29RKH_20230401T101010",
}
GRANULE = "L2A_T29RKH_A024344_20200219T112111"
STEM = "T29RKH_20200219T112111"
# crop in the 10 m-level grid (100 m pixels in the decimated source): rows 0-96, cols 576-672
ROW0, COL0, SIZE = 0, 576, 96
LAYERS = {
    10: ("B02", "B03", "B04", "B08", "AOT", "WVP", "TCI"),
    20: ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12", "SCL", "AOT", "WVP", "TCI"),
    60: ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B09", "B11", "B12", "SCL", "AOT", "WVP", "TCI"),
}
FACTOR = {10: 1, 20: 2, 60: 6}  # fixture pixel = source 10 m-level pixel x factor


def _read_level(layer: str, res: int) -> tuple[np.ndarray, Affine, object]:
    """The crop of ``layer`` on the grid of ``res`` (block mean / nearest from the closest source)."""
    with rasterio.open(SRC / f"{layer}.tif") as ds:
        src_factor = round(ds.transform.a / 100.0)  # 1, 2 or 6
        f = FACTOR[res]
        n = SIZE // f
        cat = layer in ("SCL", "TCI", "AOT")
        if src_factor <= f:
            step = f // src_factor
            win = Window(COL0 // src_factor, ROW0 // src_factor, n * step, n * step)
            a = ds.read(window=win)
            if step > 1:
                if cat:  # classes and colours: take a sample, never average
                    a = a[:, ::step, ::step]
                else:
                    a = a.reshape(a.shape[0], n, step, n, step).astype(np.float64).mean(axis=(2, 4))
                    a = np.rint(a).astype(ds.dtypes[0])
        else:  # coarser source than target (AOT at 600 m into 10/20 m): replicate
            rep = src_factor // f
            win = Window(COL0 // src_factor, ROW0 // src_factor, n // rep, n // rep)
            a = ds.read(window=win).repeat(rep, axis=1).repeat(rep, axis=2)
        t = ds.transform
        transform = Affine(100.0 * f, 0, t.c + COL0 * 100.0, 0, -100.0 * f, t.f - ROW0 * 100.0)
        return a, transform, ds.crs


def _write(path: Path, a: np.ndarray, transform: Affine, crs: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=a.shape[2], height=a.shape[1], count=a.shape[0],
                       dtype=a.dtype, crs=crs, transform=transform, nodata=0, compress="deflate",
                       predictor=2) as ds:
        ds.write(a)


def _tile_xml(transform: dict[int, Affine], epsg: int, zenith: float, azimuth: float) -> str:
    sizes = "".join(f'<Size resolution="{r}"><NROWS>{SIZE // FACTOR[r]}</NROWS><NCOLS>{SIZE // FACTOR[r]}</NCOLS></Size>'
                    for r in (10, 20, 60))
    geos = "".join(f'<Geoposition resolution="{r}"><ULX>{t.c:.0f}</ULX><ULY>{t.f:.0f}</ULY>'
                   f"<XDIM>{t.a:.0f}</XDIM><YDIM>{t.e:.0f}</YDIM></Geoposition>" for r, t in transform.items())

    def grid(v: float) -> str:
        return ('<COL_STEP unit="m">5000</COL_STEP><ROW_STEP unit="m">5000</ROW_STEP><Values_List>'
                f"<VALUES>{v} {v}</VALUES><VALUES>{v} {v}</VALUES></Values_List>")

    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<n1:Level-2A_Tile_ID xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-2A_Tile_Metadata.xsd">\n'
            "<n1:General_Info><TILE_ID>S2A_OPER_MSI_L2A_TL_MPS__20200219T123947_A024344_T29RKH_N02.14</TILE_ID>"
            "<SENSING_TIME>2020-02-19T11:34:25.405Z</SENSING_TIME></n1:General_Info>\n"
            "<n1:Geometric_Info><Tile_Geocoding><HORIZONTAL_CS_NAME>WGS84 / UTM zone 29N</HORIZONTAL_CS_NAME>"
            f"<HORIZONTAL_CS_CODE>EPSG:{epsg}</HORIZONTAL_CS_CODE>{sizes}{geos}</Tile_Geocoding>\n"
            f"<Tile_Angles><Sun_Angles_Grid><Zenith>{grid(zenith)}</Zenith><Azimuth>{grid(azimuth)}</Azimuth>"
            f'</Sun_Angles_Grid><Mean_Sun_Angle><ZENITH_ANGLE unit="deg">{zenith}</ZENITH_ANGLE>'
            f'<AZIMUTH_ANGLE unit="deg">{azimuth}</AZIMUTH_ANGLE></Mean_Sun_Angle></Tile_Angles>'
            "</n1:Geometric_Info>\n</n1:Level-2A_Tile_ID>\n")


def _product_xml(template: Path, name: str, baseline: str, files: list[str], footprint: str) -> bytes:
    root = etree.parse(str(template), etree.XMLParser(resolve_entities=False, no_network=True)).getroot()

    def set_text(tag: str, value: str) -> None:
        for el in root.iter(tag):
            el.text = value

    set_text("PRODUCT_URI", f"{name}.SAFE")
    set_text("PRODUCT_START_TIME", "2020-02-19T11:21:11.024Z")
    set_text("PRODUCT_STOP_TIME", "2020-02-19T11:21:11.024Z")
    set_text("DATATAKE_SENSING_START", "2020-02-19T11:21:11.024Z")
    set_text("PROCESSING_BASELINE", baseline)
    set_text("SPACECRAFT_NAME", "Sentinel-2A")
    set_text("SENSING_ORBIT_NUMBER", "37")
    set_text("SENSING_ORBIT_DIRECTION", "DESCENDING")
    gen = name.rsplit("_", 1)[1]
    set_text("GENERATION_TIME", f"{gen[:4]}-{gen[4:6]}-{gen[6:8]}T{gen[9:11]}:{gen[11:13]}:{gen[13:15]}.000000Z")
    set_text("EXT_POS_LIST", footprint)
    for dt in root.iter("Datatake"):
        dt.set("datatakeIdentifier", f"GS2A_20200219T112111_024344_N{baseline}")
    granules = list(root.iter("Granule"))
    for g in granules[1:]:
        g.getparent().remove(g)
    g = granules[0]
    g.set("granuleIdentifier", f"S2A_OPER_MSI_L2A_TL_MPS__20200219T123947_A024344_T29RKH_N{baseline}")
    g.set("datastripIdentifier", f"S2A_OPER_MSI_L2A_DS_MPS__20200219T123947_S20200219T113105_N{baseline}")
    g.set("imageFormat", "GeoTIFF")
    for child in list(g):
        g.remove(child)
    for f in files:
        etree.SubElement(g, "IMAGE_FILE").text = f
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def main() -> None:
    item = json.loads((SRC / "S2A_29RKH_20200219_0_L2A.json").read_text())
    zenith = round(90.0 - item["properties"]["view:sun_elevation"], 6)
    azimuth = round(item["properties"]["view:sun_azimuth"], 6)
    if OUT.exists():
        for p in OUT.glob("*.SAFE"):
            shutil.rmtree(p)
    for baseline, name in NAMES.items():
        prod = OUT / f"{name}.SAFE"
        gdir = prod / "GRANULE" / GRANULE
        files: list[str] = []
        transforms: dict[int, Affine] = {}
        crs = None
        for res, layers in LAYERS.items():
            for layer in layers:
                a, transform, crs = _read_level(layer, res)
                transforms[res] = transform
                if baseline != "02.14" and layer.startswith("B"):
                    a = np.where(a > 0, a.astype(np.uint32) + 1000, 0).astype(np.uint16)
                rel = f"GRANULE/{GRANULE}/IMG_DATA/R{res}m/{STEM}_{layer}_{res}m"
                _write(prod / f"{rel}.tif", a, transform, crs)
                files.append(rel)
        for sub in ("QI_DATA", "AUX_DATA"):
            (gdir / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("AUX_DATA", "DATASTRIP", "HTML", "rep_info"):
            (prod / sub).mkdir(exist_ok=True)
        for d in list(prod.rglob("*")):  # git keeps no empty folders
            if d.is_dir() and not any(d.iterdir()):
                (d / ".keep").write_text("")
        epsg = crs.to_epsg()  # type: ignore[union-attr]
        (gdir / "MTD_TL.xml").write_text(_tile_xml(transforms, epsg, zenith, azimuth), encoding="utf-8")
        t = transforms[10]
        x0, y1 = t.c, t.f
        x1, y0 = x0 + SIZE * 100.0, y1 - SIZE * 100.0
        tr = Transformer.from_crs(epsg, 4326, always_xy=True)
        ring = [(x0, y1), (x1, y1), (x1, y0), (x0, y0), (x0, y1)]
        pos = " ".join(f"{lat:.8f} {lon:.8f}" for lon, lat in (tr.transform(x, y) for x, y in ring))
        (prod / "MTD_MSIL2A.xml").write_bytes(_product_xml(TEMPLATES[baseline], name, baseline, files, pos))
        print(prod, sum(f.stat().st_size for f in prod.rglob("*") if f.is_file()), "bytes")


if __name__ == "__main__":
    main()
