"""Names and metadata of the L2A product: MTD_MSIL2A.xml and the granule's MTD_TL.xml.

The L2A metadata is derived from the L1C's own MTD_MSIL1C.xml (footprint, spectral information,
solar irradiances, datatake stay true for the L2A) with the level-specific parts replaced: product
URI/type/level, baseline, generation time, granule image list, and the reflectance convention
(BOA_QUANTIFICATION_VALUE 10000 and BOA_ADD_OFFSET -1000 per band, as ESA since baseline 04.00).
The processor's own name and version are recorded so an L2A never passes for Sen2Cor's.

What readers of ESA's L2A take from it is written as ESA does: the image list (GDAL's SENTINEL2
driver opens ``<IMAGE_FILE>.jp2``), the Scene_Classification_List (the driver's SCL category names),
the cloud cover and class shares counted on this product's own SCL (not the L1C's estimate), and
in MTD_TL.xml the size of each resolution's grid as written (the decimated test products are
smaller than a real tile; the driver sizes its mosaic from these numbers).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from affine import Affine
from lxml import etree

from s2l2a.safe import scl as sclmod
from s2l2a.safe.bands import BANDS

from .radiometry import AOT_QUANTIFICATION, BOA_ADD_OFFSET, BOA_QUANTIFICATION, WVP_QUANTIFICATION

L2A_NS = "https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd"
L2A_TILE_NS = "https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-2A_Tile_Metadata.xsd"
_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False)


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _find(root: etree._Element, name: str) -> etree._Element | None:
    for el in root.iter():
        if _local(el) == name:
            return el
    return None


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrib: str) -> etree._Element:
    el = etree.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


def write_product_metadata(l1c_mtd: Path, out_path: Path, *, product_name: str, baseline: str,
                           generated: datetime, granule_identifier: str, datastrip_identifier: str,
                           image_files: list[str], image_format: str, processor: str, version: str,
                           l1c_uri: str, bands: tuple[str, ...] = BANDS,
                           scl_percent: dict[int, float] | None = None,
                           nodata_percent: float | None = None) -> Path:
    """Write MTD_MSIL2A.xml from the L1C's MTD_MSIL1C.xml (``image_files`` without extension).

    ``scl_percent``: share of each SCL class 1-11 among the pixels with data, ``nodata_percent``:
    share of the tile without data (Image_Content_QI, Cloud_Coverage_Assessment)."""
    root = etree.fromstring(Path(l1c_mtd).read_bytes(), _SAFE_PARSER)
    old_ns = etree.QName(root).namespace
    root.tag = f"{{{L2A_NS}}}Level-2A_User_Product"
    for el in root.iter():
        if isinstance(el.tag, str) and old_ns and etree.QName(el).namespace == old_ns:
            el.tag = f"{{{L2A_NS}}}{etree.QName(el).localname}"
    xsi = "http://www.w3.org/2001/XMLSchema-instance"
    root.set(f"{{{xsi}}}schemaLocation", L2A_NS)
    etree.cleanup_namespaces(root)
    new = etree.Element(root.tag, nsmap={"n1": L2A_NS, "xsi": xsi}, attrib=dict(root.attrib))
    new.extend(list(root))
    root = new

    def set_text(name: str, value: str) -> etree._Element | None:
        el = _find(root, name)
        if el is not None:
            el.text = value
        return el

    set_text("PRODUCT_URI", f"{product_name}.SAFE")
    set_text("PROCESSING_LEVEL", "Level-2A")
    set_text("PRODUCT_TYPE", "S2MSI2A")
    pb = set_text("PROCESSING_BASELINE", baseline)
    set_text("GENERATION_TIME", generated.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    info = _find(root, "Product_Info")
    if info is not None:
        anchor = pb if pb is not None else info[0]
        idx = list(info).index(anchor) + 1 if anchor is not None and anchor.getparent() is info else 0
        extra = [("PRODUCT_URI_1C", f"{l1c_uri}.SAFE" if not l1c_uri.endswith(".SAFE") else l1c_uri),
                 ("PROCESSOR_NAME", processor), ("PROCESSOR_VERSION", version)]
        for k, (tag, value) in enumerate(extra):
            el = etree.Element(tag)
            el.text = value
            info.insert(idx + k, el)
    # granule list (identifiers relabelled from the L1C's: level and baseline)
    old_granule = _find(root, "Granule")
    if old_granule is not None:
        def relabel(ident: str) -> str:
            return re.sub(r"_N\d\d\.\d\d$", f"_N{baseline}", ident.replace("_L1C_", "_L2A_"))

        granule_identifier = relabel(old_granule.get("granuleIdentifier") or granule_identifier)
        datastrip_identifier = relabel(old_granule.get("datastripIdentifier") or datastrip_identifier)
    org = _find(root, "Product_Organisation")
    if org is not None:
        for child in list(org):
            org.remove(child)
        gl = _sub(org, "Granule_List")
        g = _sub(gl, "Granule", datastripIdentifier=datastrip_identifier,
                 granuleIdentifier=granule_identifier, imageFormat=image_format)
        for rel in image_files:
            _sub(g, "IMAGE_FILE", rel)
    # reflectance convention
    chars = _find(root, "Product_Image_Characteristics")
    if chars is not None:
        for name in ("QUANTIFICATION_VALUE", "Radiometric_Offset_List", "QUANTIFICATION_VALUES_LIST",
                     "BOA_ADD_OFFSET_VALUES_LIST"):
            el = _find(chars, name)
            while el is not None:
                chars.remove(el) if el.getparent() is chars else el.getparent().remove(el)
                el = _find(chars, name)
        pos = 0
        for i, child in enumerate(chars):
            if _local(child) == "Image_Display_Order":
                pos = i + 1
        q = etree.Element("QUANTIFICATION_VALUES_LIST")
        _sub(q, "BOA_QUANTIFICATION_VALUE", f"{BOA_QUANTIFICATION:.0f}", unit="none")
        _sub(q, "AOT_QUANTIFICATION_VALUE", f"{AOT_QUANTIFICATION:.1f}", unit="none")
        _sub(q, "WVP_QUANTIFICATION_VALUE", f"{WVP_QUANTIFICATION:.1f}", unit="cm")
        off = etree.Element("BOA_ADD_OFFSET_VALUES_LIST")
        for i, _band in enumerate(bands):
            _sub(off, "BOA_ADD_OFFSET", f"{BOA_ADD_OFFSET:.0f}", band_id=str(i))
        chars.insert(pos, q)
        chars.insert(pos + 1, off)
        old_list = _find(chars, "Scene_Classification_List")
        if old_list is not None:
            old_list.getparent().remove(old_list)
        classes = _sub(chars, "Scene_Classification_List")
        for code, (text, _qi) in sorted(sclmod.MTD_NAMES.items()):
            cid = _sub(classes, "Scene_Classification_ID")
            _sub(cid, "SCENE_CLASSIFICATION_TEXT", text)
            _sub(cid, "SCENE_CLASSIFICATION_INDEX", str(code))
    if scl_percent:
        _write_quality(root, scl_percent, nodata_percent)
    etree.indent(root, space="    ")
    etree.ElementTree(root).write(str(out_path), xml_declaration=True, encoding="UTF-8",
                                  standalone=False, pretty_print=True)
    return out_path


def cloud_cover(scl_percent: dict[int, float]) -> float:
    """Cloud_Coverage_Assessment as ESA counts it: medium and high probability cloud and thin cirrus."""
    return round(sum(float(scl_percent.get(c, 0.0)) for c in sclmod.CLOUDY), 6)


def _write_quality(root: etree._Element, scl_percent: dict[int, float], nodata_percent: float | None) -> None:
    """Cloud_Coverage_Assessment and Image_Content_QI of Quality_Indicators_Info from this product's SCL."""
    qii = _find(root, "Quality_Indicators_Info")
    if qii is None:
        return
    cca = _find(qii, "Cloud_Coverage_Assessment")
    if cca is None:
        cca = etree.Element("Cloud_Coverage_Assessment")
        qii.insert(0, cca)
    cca.text = f"{cloud_cover(scl_percent):.6f}"
    old = _find(qii, "Image_Content_QI")
    if old is not None:
        old.getparent().remove(old)
    content = _sub(qii, "Image_Content_QI")
    for code, (_text, name) in sorted(sclmod.MTD_NAMES.items()):
        value = nodata_percent if code == sclmod.NODATA else scl_percent.get(code)
        if value is not None:
            _sub(content, name, f"{float(value):.6f}")


def write_tile_metadata(l1c_tile_mtd: Path, out_path: Path, *, baseline: str,
                        grids: dict[int, tuple[int, int, Affine]] | None = None,
                        scl_percent: dict[int, float] | None = None) -> Path:
    """Write the granule's MTD_TL.xml: the L1C tile metadata (geocoding, angle grids) relabelled L2A.

    ``grids``: resolution -> (rows, columns, transform) of what was written; where they differ from
    the L1C's Size/Geoposition (decimated products), the written ones are stated. ``scl_percent``
    replaces the L1C's cloud percentages by the ones counted on this product's SCL."""
    root = etree.fromstring(Path(l1c_tile_mtd).read_bytes(), _SAFE_PARSER)
    old_ns = etree.QName(root).namespace
    for el in root.iter():
        if isinstance(el.tag, str) and old_ns and etree.QName(el).namespace == old_ns:
            el.tag = f"{{{L2A_TILE_NS}}}{etree.QName(el).localname}"
    root.tag = f"{{{L2A_TILE_NS}}}Level-2A_Tile_ID"
    etree.cleanup_namespaces(root)
    tid = _find(root, "TILE_ID")
    if tid is not None and tid.text:
        tid.text = re.sub(r"_N\d\d\.\d\d$", f"_N{baseline}", tid.text.replace("_L1C_", "_L2A_"))
    for el in root.iter():
        if _local(el) not in ("Size", "Geoposition") or not (el.get("resolution") or "").isdigit():
            continue
        grid = (grids or {}).get(int(el.get("resolution") or 0))
        if grid is None:
            continue
        rows, cols, t = grid
        values = ({"NROWS": str(rows), "NCOLS": str(cols)} if _local(el) == "Size" else
                  {"ULX": f"{t.c:.10g}", "ULY": f"{t.f:.10g}", "XDIM": f"{t.a:.10g}", "YDIM": f"{t.e:.10g}"})
        for child in el:
            if _local(child) in values:
                child.text = values[_local(child)]
    if scl_percent:
        for name in ("CLOUDY_PIXEL_PERCENTAGE", "CLOUD_COVERAGE_ASSESSMENT"):
            el = _find(root, name)
            if el is not None:
                el.text = f"{cloud_cover(scl_percent):.6f}"
    etree.ElementTree(root).write(str(out_path), xml_declaration=True, encoding="UTF-8",
                                  standalone=False, pretty_print=True)
    return out_path


def now_utc() -> datetime:
    """Generation time, second resolution (it goes into the product name)."""
    return datetime.now(UTC).replace(microsecond=0)
