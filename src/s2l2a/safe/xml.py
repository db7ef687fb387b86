"""Hardened reading of Sentinel-2 metadata XML.

Metadata comes from download mirrors and users' disks, so it is treated as untrusted: documents
that declare a DTD or entities are refused before parsing (no XXE, no entity expansion bombs), the
parser never touches the network, and any truncation or syntax error becomes one ``MetadataError``
line naming the file. Look-ups go by local tag name because namespaces and wrapper elements vary
across PSD versions and Sen2Cor releases.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from lxml import etree

from s2l2a.safe.errors import MetadataError, UnsafeXMLError

MAX_XML_BYTES = 64 * 1024 * 1024  # the largest real metadata (datastrip) is ~23 MB
_FORBIDDEN = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        huge_tree=False, remove_comments=True, remove_pis=True,
    )


def parse_xml(path: Path | str) -> etree._Element:
    """Root element of a metadata file; raise MetadataError/UnsafeXMLError (one line) if unusable."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_XML_BYTES:
            raise MetadataError(f"metadata file too large ({size} bytes)", p)
        data = p.read_bytes()
    except MetadataError:
        raise
    except FileNotFoundError:
        raise MetadataError("metadata file not found", p) from None
    except OSError as exc:
        raise MetadataError(f"cannot read metadata file: {exc.strerror or exc}", p) from None
    return parse_xml_bytes(data, p)


def parse_xml_bytes(data: bytes, path: Path | str) -> etree._Element:
    """Parse bytes already read from ``path`` with the same safety rules as ``parse_xml``."""
    if not data.strip():
        raise MetadataError("metadata file is empty", path)
    m = _FORBIDDEN.search(data)
    if m:
        kind = m.group(1).decode().upper()
        raise UnsafeXMLError(f"refusing XML with a {kind} declaration (DTDs/entities are not allowed)", path)
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        line = getattr(exc, "lineno", None)
        msg = str(exc.msg if hasattr(exc, "msg") and exc.msg else exc)
        where = f" at line {line}" if line else ""
        raise MetadataError(f"malformed or truncated XML{where}: {msg}", path) from None
    if root is None:
        raise MetadataError("metadata file has no root element", path)
    if root.getroottree().docinfo.doctype:
        raise UnsafeXMLError("refusing XML with a DOCTYPE declaration", path)
    return root


def local(tag: object) -> str:
    """Tag without namespace (``{ns}Foo`` → ``Foo``); comments and PIs give ''."""
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def iter_local(root: etree._Element, *names: str) -> Iterator[etree._Element]:
    """All elements (root included, document order) whose local tag is one of ``names``, in any namespace."""
    return root.iter(*[f"{{*}}{n}" for n in names])


def first(root: etree._Element, *names: str) -> etree._Element | None:
    """First descendant with one of the local ``names`` (tried in document order)."""
    return next(iter_local(root, *names), None)


def text(root: etree._Element, *names: str) -> str | None:
    """Stripped text of the first element named one of ``names``; None if absent or empty."""
    el = first(root, *names)
    if el is None or el.text is None:
        return None
    t = el.text.strip()
    return t or None


def children(el: etree._Element, *names: str) -> list[etree._Element]:
    """Direct children with one of the local ``names``."""
    return list(el.iterchildren(*[f"{{*}}{n}" for n in names]))


def child_text(el: etree._Element, name: str) -> str | None:
    """Text of the first direct child called ``name``."""
    for c in children(el, name):
        if c.text and c.text.strip():
            return c.text.strip()
    return None


def require_float(value: str | None, what: str, path: Path | str) -> float:
    """``float(value)`` or a MetadataError naming the missing/invalid field."""
    if value is None:
        raise MetadataError(f"missing {what}", path)
    try:
        return float(value)
    except ValueError:
        raise MetadataError(f"invalid {what}: {value!r}", path) from None


def optional_float(value: str | None) -> float | None:
    """``float(value)`` or None when absent or not a number."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def floats(values: Iterable[str]) -> list[float]:
    """Parse whitespace-separated numbers ('NaN' included)."""
    return [float(v) for v in values]
