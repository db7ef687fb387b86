"""Product errors raised by ``s2l2a.safe``: each says in one line what is wrong and with which file."""

from __future__ import annotations

from pathlib import Path

from s2l2a.errors import ProductError


def _one_line(text: str) -> str:
    """Collapse newlines and control characters so ``str(err)`` stays one line (log greps rely on it)."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


class SafeProductError(ProductError):
    """Base of this package's errors; keeps message and path on one line."""

    def __init__(self, message: str, path: Path | str | None = None) -> None:
        shown: Path | str | None = path
        if path is not None and len((str(path) + "x").splitlines()) > 1:
            shown = ascii(str(path))  # a newline in a file name must not split the message
        super().__init__(_one_line(message), shown)


class ProductNameError(SafeProductError):
    """A product or granule name does not follow a known Sentinel-2 naming convention."""


class MetadataError(SafeProductError):
    """A metadata XML file is missing, truncated, malformed or lacks a required field."""


class UnsafeXMLError(MetadataError):
    """A metadata XML file declares a DTD or entities (XXE / entity expansion); refused, never parsed."""


class UnknownLayoutError(SafeProductError):
    """The directory is not a SAFE product layout this package knows (e.g. an AWS tile folder)."""


class WrongLevelError(SafeProductError):
    """An L2A product was given where an L1C was expected, or the reverse."""


class MissingFileError(SafeProductError):
    """A file the product metadata lists (a band image, a tile XML) is not on disk."""


class BandFileError(SafeProductError):
    """An input band image is empty, truncated, not a JPEG 2000 file or cannot be decoded (bad input)."""


class IncompleteProductError(SafeProductError):
    """An L2A product lacks a folder or band file, or one of them is empty or unreadable."""
