"""Sentinel-2 formats: band table, product/granule names, metadata, SAFE layout, verification, repairs.

Naming rules and metadata parsing live here and nowhere else in s2l2a.
"""

from s2l2a.safe.bands import BANDS, NATIVE_RESOLUTION, RESOLUTIONS, normalize_band
from s2l2a.safe.errors import (
    IncompleteProductError,
    MetadataError,
    MissingFileError,
    ProductNameError,
    SafeProductError,
    UnknownLayoutError,
    UnsafeXMLError,
    WrongLevelError,
)
from s2l2a.safe.find import find_inputs, find_products, is_product_dir
from s2l2a.safe.mtd import DatastripMetadata, ProductMetadata, read_datastrip_metadata, read_product_metadata
from s2l2a.safe.names import (
    GranuleName,
    ProductName,
    format_product_name,
    is_product_name,
    l2a_granule_name,
    parse_granule_name,
    parse_product_name,
)
from s2l2a.safe.product import Granule, L1CProduct, L2AProduct, open_l1c, open_l2a, open_product
from s2l2a.safe.repair import repair_gcs_layout
from s2l2a.safe.tile import AngleGrids, GeoPosition, TileMetadata, read_tile_metadata
from s2l2a.safe.verify import L2A_REQUIRED, verify_l2a
from s2l2a.safe.xml import parse_xml

__all__ = [
    "BANDS",
    "L2A_REQUIRED",
    "NATIVE_RESOLUTION",
    "RESOLUTIONS",
    "AngleGrids",
    "DatastripMetadata",
    "GeoPosition",
    "Granule",
    "GranuleName",
    "IncompleteProductError",
    "L1CProduct",
    "L2AProduct",
    "MetadataError",
    "MissingFileError",
    "ProductMetadata",
    "ProductName",
    "ProductNameError",
    "SafeProductError",
    "TileMetadata",
    "UnknownLayoutError",
    "UnsafeXMLError",
    "WrongLevelError",
    "find_inputs",
    "find_products",
    "format_product_name",
    "is_product_dir",
    "is_product_name",
    "l2a_granule_name",
    "normalize_band",
    "open_l1c",
    "open_l2a",
    "open_product",
    "parse_granule_name",
    "parse_product_name",
    "parse_xml",
    "read_datastrip_metadata",
    "read_product_metadata",
    "read_tile_metadata",
    "repair_gcs_layout",
    "verify_l2a",
]
