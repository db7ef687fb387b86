"""Sentinel-2 formats: band table, SCL classes, product/granule names and acquisitions, metadata,
SAFE layout, verification, repairs.

Naming rules and metadata parsing live here and nowhere else in s2l2a. Names are imported on
first use (PEP 562): a caller that needs only the naming or acquisition rules (the store, the
planner, publication) does not load lxml and shapely.
"""

from __future__ import annotations

from s2l2a import lazy

_EXPORTS = {
    "BANDS": "s2l2a.safe.bands", "NATIVE_RESOLUTION": "s2l2a.safe.bands", "RESOLUTIONS": "s2l2a.safe.bands",
    "normalize_band": "s2l2a.safe.bands",
    "IncompleteProductError": "s2l2a.safe.errors", "MetadataError": "s2l2a.safe.errors",
    "MissingFileError": "s2l2a.safe.errors", "ProductNameError": "s2l2a.safe.errors",
    "SafeProductError": "s2l2a.safe.errors", "UnknownLayoutError": "s2l2a.safe.errors",
    "UnsafeXMLError": "s2l2a.safe.errors", "WrongLevelError": "s2l2a.safe.errors",
    "find_inputs": "s2l2a.safe.find", "find_products": "s2l2a.safe.find", "is_product_dir": "s2l2a.safe.find",
    "DatastripMetadata": "s2l2a.safe.mtd", "ProductMetadata": "s2l2a.safe.mtd",
    "read_datastrip_metadata": "s2l2a.safe.mtd", "read_product_metadata": "s2l2a.safe.mtd",
    "GranuleName": "s2l2a.safe.names", "ProductName": "s2l2a.safe.names",
    "format_product_name": "s2l2a.safe.names", "is_product_name": "s2l2a.safe.names",
    "l2a_granule_name": "s2l2a.safe.names", "parse_granule_name": "s2l2a.safe.names",
    "parse_product_name": "s2l2a.safe.names",
    "Granule": "s2l2a.safe.product", "L1CProduct": "s2l2a.safe.product", "L2AProduct": "s2l2a.safe.product",
    "open_l1c": "s2l2a.safe.product", "open_l2a": "s2l2a.safe.product", "open_product": "s2l2a.safe.product",
    "repair_gcs_layout": "s2l2a.safe.repair",
    "AngleGrids": "s2l2a.safe.tile", "GeoPosition": "s2l2a.safe.tile", "TileMetadata": "s2l2a.safe.tile",
    "read_tile_metadata": "s2l2a.safe.tile",
    "L2A_REQUIRED": "s2l2a.safe.verify", "verify_l2a": "s2l2a.safe.verify",
    "parse_xml": "s2l2a.safe.xml",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy.exports(__name__, _EXPORTS)
