"""A processor that does no science: it writes a minimal, well-formed L2A SAFE in milliseconds.

A test-only plug-in (entry point ``s2l2a.processors``: ``noop``), not part of s2l2a itself. It
exists so the job machinery (staging, verification, atomic publish, engines, crash recovery) can be
tested and benchmarked without paying for an atmospheric correction. Every image file is the same
tiny GeoTIFF, so the product is readable but its pixels mean nothing. Options (the campaign's
``[noop]`` section, :data:`SECTION`, or a test): ``sleep_s`` per job, ``fail`` (a FailureClass
value) to fail every job, or only the products whose name contains one of ``fail_matching``,
``write_product = false`` to return an empty staging dir (the "exit 0 but no output" case),
``die_matching`` to SIGKILL the very process running the job for matching products (what the OOM
killer does to a worker), ``child_sleep_s`` to wait on a ``sleep`` started in a session of its own
(how Sen2Cor is run), ``alloc_mb`` to hold that much touched memory while the job runs (what the
worker's own measurement of peak memory must see).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from s2l2a import __version__
from s2l2a.campaign.failures import FailureClass
from s2l2a.processors.base import JobSettings, L2AResult, ProcessingFailed
from s2l2a.registry import ProcessorPlugin, Section, Setting, boolean, non_negative_seconds, string_list
from s2l2a.safe.bands import BANDS, L2A_BANDS

if TYPE_CHECKING:
    from s2l2a.safe import L1CProduct

#: layers of a Sen2Cor L2A granule per resolution: the bands, SCL (20 m and 60 m), AOT, WVP, TCI
L2A_LAYERS: dict[int, tuple[str, ...]] = {
    res: bands + (("SCL",) if res != 10 else ()) + ("AOT", "WVP", "TCI") for res, bands in L2A_BANDS.items()}


def _failure_class(label: str, value: object) -> None:
    if value not in {c.value for c in FailureClass}:
        from s2l2a.errors import ConfigError

        raise ConfigError(f"{label}: one of {', '.join(c.value for c in FailureClass)}, not {value!r}")


#: ``[noop]``: the knobs tests turn
SECTION = Section("noop", help="test knobs of the noop processor", settings=(
    Setting("sleep_s", "float", 0.0, check=non_negative_seconds, help="seconds each job takes"),
    Setting("fail", "str", check=_failure_class, help="fail every job (or those of fail_matching) with this class"),
    Setting("fail_matching", "list", check=string_list, help="fail only products whose name holds one of these"),
    Setting("write_product", "bool", True, check=boolean, help="false: exit 'successfully' with no output"),
    Setting("die_matching", "list", check=string_list, help="SIGKILL the process running these products"),
    Setting("child_sleep_s", "float", 0.0, check=non_negative_seconds,
            help="wait on a 'sleep' in a session of its own (how Sen2Cor is run)"),
    Setting("alloc_mb", "float", 0.0, check=non_negative_seconds, help="MB of memory each job holds while it runs"),
))


@lru_cache(maxsize=1)
def _tiny_geotiff() -> bytes:
    """A 2x2 uint16 GeoTIFF, built once per process (GDAL opens it whatever the extension)."""
    import numpy as np
    import rasterio
    from affine import Affine

    buf = io.BytesIO()
    with rasterio.MemoryFile() as mem:
        with mem.open(driver="GTiff", width=2, height=2, count=1, dtype="uint16", crs="EPSG:32756",
                      transform=Affine(60.0, 0.0, 300000.0, 0.0, -60.0, 6900000.0)) as ds:
            ds.write(np.full((1, 2, 2), 1000, dtype="uint16"))
        buf.write(mem.read())
    return buf.getvalue()


class NoopProcessor:
    """Writes ``<staging>/<L2A name>.SAFE`` with the Sen2Cor layout and tiny images."""

    name = "noop"

    def __init__(self, sleep_s: float = 0.0, fail: str | None = None, fail_matching: list[str] | None = None,
                 write_product: bool = True, die_matching: list[str] | None = None,
                 child_sleep_s: float = 0.0, alloc_mb: float = 0.0, **_ignored: Any) -> None:
        self.sleep_s = float(sleep_s)
        self.fail = FailureClass(fail) if fail else None
        self.fail_matching = list(fail_matching or [])
        self.write_product = bool(write_product)
        self.die_matching = list(die_matching or [])
        self.child_sleep_s = float(child_sleep_s)
        self.alloc_mb = float(alloc_mb)

    def version(self) -> str:
        return f"s2l2a-noop {__version__}"

    def process(self, product: L1CProduct, staging_dir: Path, settings: JobSettings,
                log_path: Path) -> L2AResult:
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"noop: {product.name} sleep {self.sleep_s} s\n")
        held = bytearray(int(self.alloc_mb * 2**20))  # zero-filled: every page is touched
        if self.sleep_s > 0:
            time.sleep(self.sleep_s)
        del held
        if self.child_sleep_s > 0:
            child = subprocess.Popen(["sleep", str(self.child_sleep_s)], start_new_session=True)
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(f"noop: child pid {child.pid}\n")
            child.wait()
        if any(m in str(product.name) for m in self.die_matching):
            os.kill(os.getpid(), signal.SIGKILL)
        chosen = any(m in str(product.name) for m in self.fail_matching) if self.fail_matching else True
        if (self.fail is not None or self.fail_matching) and chosen:
            raise ProcessingFailed(f"noop: failing {product.name} on purpose",
                                   self.fail or FailureClass.OTHER, exit_status=1, log_path=log_path)
        l2a_name = str(product.name).replace("_MSIL1C_", "_MSIL2A_")
        out = Path(staging_dir) / f"{l2a_name}.SAFE"
        if self.write_product:
            self._write(product, out, l2a_name, settings)
        return L2AResult(product_dir=out, processor=self.name, processor_version=self.version(),
                         log_path=log_path)

    def _write(self, product: L1CProduct, out: Path, l2a_name: str, settings: JobSettings) -> None:
        tif = _tiny_geotiff()
        sensing = product.sensing_time.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
        resolutions = (10, 20, 60) if settings.resolution in (None, 10) else \
            tuple(r for r in (20, 60) if r >= settings.resolution)
        image_files: list[str] = []
        granule_xml: list[str] = []
        for granule in product.granules:
            gname = Path(granule.path).name.replace("L1C_", "L2A_", 1)
            gdir = out / "GRANULE" / gname
            for res in resolutions:
                rdir = gdir / "IMG_DATA" / f"R{res}m"
                rdir.mkdir(parents=True)
                for layer in L2A_LAYERS[res]:
                    stem = f"T{granule.tile}_{sensing}_{layer}_{res}m"
                    (rdir / f"{stem}.jp2").write_bytes(tif)
                    image_files.append(f"GRANULE/{gname}/IMG_DATA/R{res}m/{stem}")
            for sub in ("QI_DATA", "AUX_DATA"):
                (gdir / sub).mkdir(parents=True, exist_ok=True)
            (gdir / "MTD_TL.xml").write_text(_tile_xml(gname, granule), encoding="utf-8")
            granule_xml.append(gname)
        for sub in ("AUX_DATA", "HTML", "DATASTRIP", "rep_info"):
            (out / sub).mkdir(parents=True, exist_ok=True)
        (out / "MTD_MSIL2A.xml").write_text(_product_xml(l2a_name, product, image_files), encoding="utf-8")


def _tile_xml(granule_name: str, granule: Any) -> str:
    """Tile metadata with the L1C granule's geocoding and a 2x2 sun angle grid (enough to parse)."""
    sizes, geos = [], []
    for res, g in sorted(granule.geoposition.items()):
        sizes.append(f'      <Size resolution="{res}"><NROWS>{g.nrows}</NROWS><NCOLS>{g.ncols}</NCOLS></Size>')
        geos.append(f'      <Geoposition resolution="{res}"><ULX>{g.ulx}</ULX><ULY>{g.uly}</ULY>'
                    f"<XDIM>{g.xdim}</XDIM><YDIM>{g.ydim}</YDIM></Geoposition>")
    zen, az = float(granule.mean_sun_zenith or 30.0), float(granule.mean_sun_azimuth or 150.0)

    def grid(v: float) -> str:
        return ("<COL_STEP unit=\"m\">5000</COL_STEP><ROW_STEP unit=\"m\">5000</ROW_STEP><Values_List>"
                f"<VALUES>{v} {v}</VALUES><VALUES>{v} {v}</VALUES></Values_List>")

    nl = "\n"
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<n1:Level-2A_Tile_ID xmlns:n1=\"https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-2A_Tile_Metadata.xsd\">\n"
            f"  <n1:General_Info><TILE_ID>{granule_name}</TILE_ID></n1:General_Info>\n"
            "  <n1:Geometric_Info>\n    <Tile_Geocoding>\n"
            f"      <HORIZONTAL_CS_NAME>WGS84 / UTM</HORIZONTAL_CS_NAME><HORIZONTAL_CS_CODE>EPSG:{granule.epsg}</HORIZONTAL_CS_CODE>\n"
            f"{nl.join(sizes)}\n{nl.join(geos)}\n"
            "    </Tile_Geocoding>\n    <Tile_Angles>\n"
            f"      <Sun_Angles_Grid><Zenith>{grid(zen)}</Zenith><Azimuth>{grid(az)}</Azimuth></Sun_Angles_Grid>\n"
            f"      <Mean_Sun_Angle><ZENITH_ANGLE unit=\"deg\">{zen}</ZENITH_ANGLE>"
            f"<AZIMUTH_ANGLE unit=\"deg\">{az}</AZIMUTH_ANGLE></Mean_Sun_Angle>\n"
            "    </Tile_Angles>\n  </n1:Geometric_Info>\n"
            "</n1:Level-2A_Tile_ID>\n")


def _product_xml(l2a_name: str, product: L1CProduct, image_files: list[str]) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    files = "\n".join(f"            <IMAGE_FILE>{f}</IMAGE_FILE>" for f in image_files)
    offsets = "\n".join(f"        <BOA_ADD_OFFSET band_id=\"{i}\">0</BOA_ADD_OFFSET>" for i in range(len(BANDS)))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-2A_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd">
  <n1:General_Info>
    <Product_Info>
      <PRODUCT_START_TIME>{product.sensing_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")}</PRODUCT_START_TIME>
      <GENERATION_TIME>{now}</GENERATION_TIME>
      <PRODUCT_URI>{l2a_name}.SAFE</PRODUCT_URI>
      <PROCESSING_LEVEL>Level-2A</PROCESSING_LEVEL>
      <PRODUCT_TYPE>S2MSI2A</PRODUCT_TYPE>
      <PROCESSING_BASELINE>{product.baseline or "99.99"}</PROCESSING_BASELINE>
      <Product_Organisation>
        <Granule_List>
          <Granule imageFormat="JPEG2000">
{files}
          </Granule>
        </Granule_List>
      </Product_Organisation>
    </Product_Info>
  </n1:General_Info>
  <n1:Product_Image_Characteristics>
    <QUANTIFICATION_VALUES_LIST>
      <BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE>
      <AOT_QUANTIFICATION_VALUE unit="none">1000.0</AOT_QUANTIFICATION_VALUE>
      <WVP_QUANTIFICATION_VALUE unit="cm">1000.0</WVP_QUANTIFICATION_VALUE>
    </QUANTIFICATION_VALUES_LIST>
    <BOA_ADD_OFFSET_VALUES_LIST>
{offsets}
    </BOA_ADD_OFFSET_VALUES_LIST>
  </n1:Product_Image_Characteristics>
</n1:Level-2A_User_Product>
"""


PLUGIN = ProcessorPlugin(name="noop", factory=NoopProcessor, section=SECTION, output_mb=20, test_only=True,
                         summary="the test processor: writes placeholder outputs in milliseconds")
