"""Hardened XML reading: malformed, truncated and hostile documents give one-line errors naming the file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from safe_helpers import SAMPLE, one_line

from s2l2a.errors import ProductError
from s2l2a.safe import MetadataError, UnsafeXMLError, open_l1c, parse_xml, read_product_metadata

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<n1:Level-1C_User_Product xmlns:n1="x"><PRODUCT_URI>&xxe;</PRODUCT_URI></n1:Level-1C_User_Product>
"""
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>
"""
EXTERNAL_DTD = b'<?xml version="1.0"?>\n<!DOCTYPE x SYSTEM "http://127.0.0.1:9/evil.dtd">\n<x/>\n'


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize(("label", "data"), [("xxe", XXE), ("laughs", LAUGHS), ("dtd", EXTERNAL_DTD)])
def test_hostile_xml_refused(tmp_path: Path, label: str, data: bytes) -> None:
    p = _write(tmp_path, f"{label}.xml", data)
    t0 = time.perf_counter()
    with pytest.raises(UnsafeXMLError) as exc:
        parse_xml(p)
    assert time.perf_counter() - t0 < 1.0
    assert isinstance(exc.value, ProductError)
    one_line(exc.value, str(p), "DTD")


def test_utf16_doctype_still_refused(tmp_path: Path) -> None:
    """The byte scan cannot see a UTF-16 DOCTYPE; the post-parse check must."""
    p = _write(tmp_path, "u16.xml", XXE.decode().replace('version="1.0"', 'version="1.0" encoding="UTF-16"')
               .encode("utf-16"))
    with pytest.raises(UnsafeXMLError) as exc:
        parse_xml(p)
    one_line(exc.value, str(p))


@pytest.mark.parametrize(
    ("label", "data", "fragment"),
    [
        ("empty", b"", "empty"),
        ("blank", b"  \n\n", "empty"),
        ("garbage", b"\x89PNG\r\n\x1a\n\x00\x00binary", "malformed"),
        ("unclosed", b"<a><b>text</b>", "malformed"),
    ],
)
def test_malformed_xml(tmp_path: Path, label: str, data: bytes, fragment: str) -> None:
    p = _write(tmp_path, f"{label}.xml", data)
    with pytest.raises(MetadataError) as exc:
        parse_xml(p)
    one_line(exc.value, str(p), fragment)


def test_truncated_product_xml(tmp_path: Path) -> None:
    full = (SAMPLE / "MTD_MSIL1C.xml").read_bytes()
    p = _write(tmp_path, "MTD_MSIL1C.xml", full[: len(full) // 2])
    with pytest.raises(MetadataError) as exc:
        read_product_metadata(p)
    one_line(exc.value, str(p), "truncated")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MetadataError) as exc:
        parse_xml(tmp_path / "nope.xml")
    one_line(exc.value, "nope.xml", "not found")


def test_truncated_mtd_inside_product(sample_copy: Path) -> None:
    mtd = sample_copy / "MTD_MSIL1C.xml"
    mtd.write_bytes(mtd.read_bytes()[:20000])
    with pytest.raises(MetadataError) as exc:
        open_l1c(sample_copy)
    one_line(exc.value, str(mtd))


@pytest.mark.parametrize(("label", "data"), [("xxe", XXE), ("laughs", LAUGHS)])
def test_hostile_mtd_inside_product(sample_copy: Path, label: str, data: bytes) -> None:
    mtd = sample_copy / "MTD_MSIL1C.xml"
    mtd.write_bytes(data)
    with pytest.raises(UnsafeXMLError) as exc:
        open_l1c(sample_copy)
    one_line(exc.value, str(mtd))


def test_hostile_tile_xml_inside_product(sample_copy: Path) -> None:
    tl = next(sample_copy.glob("GRANULE/*/MTD_TL.xml"))
    tl.write_bytes(XXE)
    with pytest.raises(UnsafeXMLError) as exc:
        open_l1c(sample_copy)
    one_line(exc.value, str(tl))


def test_product_xml_missing_required_field(tmp_path: Path) -> None:
    text = (SAMPLE / "MTD_MSIL1C.xml").read_text()
    start = text.index("<QUANTIFICATION_VALUE")
    end = text.index("</QUANTIFICATION_VALUE>") + len("</QUANTIFICATION_VALUE>")
    p = tmp_path / "MTD_MSIL1C.xml"
    p.write_text(text[:start] + text[end:])
    with pytest.raises(MetadataError) as exc:
        read_product_metadata(p)
    one_line(exc.value, str(p), "QUANTIFICATION_VALUE")


def test_tile_xml_is_not_product_xml() -> None:
    tl = next(SAMPLE.glob("GRANULE/*/MTD_TL.xml"))
    with pytest.raises(MetadataError) as exc:
        read_product_metadata(tl)
    one_line(exc.value, str(tl), "tile metadata")
