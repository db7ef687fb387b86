"""STAC metadata for a campaign's outputs: one item per L2A product, one collection per campaign.

Why STAC: it is how people load a set of rasters without writing a reader (odc-stac, stackstac,
QGIS, STAC browsers). Each item carries the eo and projection extensions, assets for the L2A bands,
SCL, AOT, WVP and TCI (while the L2A is kept), the derived COGs and quicklooks, and a
``derived_from`` link to the source L1C.

Validation is offline: :func:`validate` checks a STAC object against the vendored JSON schemas in
``schemas/`` (core STAC 1.1.0, eo v1.0.0, projection v1.0.0; see schemas/SOURCE.md), never the network.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from s2l2a.errors import S2L2AError
from s2l2a.safe.bands import NATIVE_RESOLUTION

EO_URI = "https://stac-extensions.github.io/eo/v1.0.0/schema.json"
PROJ_URI = "https://stac-extensions.github.io/projection/v1.0.0/schema.json"
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
TIFF_TYPE = "image/tiff; application=geotiff"
JP2_TYPE = "image/jp2"
STAC_DIR = "stac"

# band -> (common name, centre wavelength in micrometres, full width at half maximum), Sentinel-2A MSI
BAND_INFO: dict[str, tuple[str, float, float]] = {
    "B01": ("coastal", 0.443, 0.027), "B02": ("blue", 0.490, 0.098), "B03": ("green", 0.560, 0.045),
    "B04": ("red", 0.665, 0.038), "B05": ("rededge1", 0.704, 0.019), "B06": ("rededge2", 0.740, 0.018),
    "B07": ("rededge3", 0.783, 0.028), "B08": ("nir", 0.842, 0.145), "B8A": ("nir08", 0.865, 0.033),
    "B09": ("nir09", 0.945, 0.026), "B10": ("cirrus", 1.375, 0.075), "B11": ("swir16", 1.610, 0.143),
    "B12": ("swir22", 2.190, 0.242),
}
_AUX_LAYERS = {"SCL": (20, "scene classification (Sen2Cor classes 0-11)"),
               "AOT": (10, "aerosol optical thickness at 550 nm"),
               "WVP": (10, "water vapour"), "TCI": (10, "true colour image")}


class StacValidationError(S2L2AError):
    """A STAC object does not validate against the schemas it declares."""


# -- validation ----------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _registry() -> Any:
    from jsonschema_specifications import REGISTRY
    from referencing import Resource
    from referencing.jsonschema import DRAFT7

    base = Path(__file__).with_name("schemas")
    resources: list[tuple[str, Any]] = []
    spec_dirs = {"item": "item-spec", "collection": "collection-spec", "catalog": "catalog-spec"}
    for f in sorted((base / "stac-1.1.0").glob("*.json")):
        contents = json.loads(f.read_text(encoding="utf-8"))
        sub = spec_dirs.get(f.stem, "item-spec")
        res = Resource.from_contents(contents, default_specification=DRAFT7)
        resources.append((f"https://schemas.stacspec.org/v1.1.0/{sub}/json-schema/{f.name}", res))
    for f in sorted((base / "geojson").glob("*.json")):
        res = Resource.from_contents(json.loads(f.read_text(encoding="utf-8")), default_specification=DRAFT7)
        resources.append((f"https://geojson.org/schema/{f.name}", res))
    for uri, name in ((EO_URI, "eo-1.0.0.json"), (PROJ_URI, "projection-1.0.0.json")):
        res = Resource.from_contents(json.loads((base / name).read_text(encoding="utf-8")),
                                     default_specification=DRAFT7)
        resources.append((uri, res))
    return REGISTRY.with_resources(resources)


def _schema_uris(obj: dict[str, Any]) -> list[str]:
    kind = {"Feature": "item", "Collection": "collection", "Catalog": "catalog"}.get(obj.get("type", ""))
    if kind is None:
        raise StacValidationError(f"not a STAC item, collection or catalog (type {obj.get('type')!r})")
    if obj.get("stac_version") != "1.1.0":
        raise StacValidationError(f"stac_version {obj.get('stac_version')!r}: only 1.1.0 schemas are shipped")
    return [f"https://schemas.stacspec.org/v1.1.0/{kind}-spec/json-schema/{kind}.json",
            *obj.get("stac_extensions", [])]


def validate(obj: dict[str, Any] | Any) -> list[str]:
    """Validate a STAC dict (or pystac object) against its core schema and every declared extension.

    Returns the schema URIs checked; raises StacValidationError with the first error otherwise.
    """
    from jsonschema import Draft7Validator
    from jsonschema.exceptions import best_match

    data = obj.to_dict() if hasattr(obj, "to_dict") else obj
    registry = _registry()
    uris = _schema_uris(data)
    for uri in uris:
        try:
            schema = registry.contents(uri)
        except Exception:  # noqa: BLE001 - referencing raises several "unknown" types
            raise StacValidationError(f"no vendored schema for {uri}") from None
        validator = Draft7Validator(schema, registry=registry)
        err = best_match(validator.iter_errors(data))
        if err is not None:
            where = "/".join(str(p) for p in err.absolute_path) or "(root)"
            raise StacValidationError(f"{data.get('id')}: {uri}: at {where}: {err.message[:300]}")
    return uris


# -- items ---------------------------------------------------------------------------------------

def _proj_fields(path: Path) -> dict[str, Any]:
    import rasterio

    with rasterio.open(path) as ds:
        t = ds.transform
        return {"proj:epsg": ds.crs.to_epsg() if ds.crs else None, "proj:shape": [ds.height, ds.width],
                "proj:transform": [t.a, t.b, t.c, t.d, t.e, t.f]}


def _media_type(path: Path, cog: bool = False) -> str:
    if path.suffix.lower() == ".jp2":
        return JP2_TYPE
    return COG_TYPE if cog else TIFF_TYPE


def _eo_band(band: str) -> dict[str, Any]:
    common, centre, fwhm = BAND_INFO[band]
    return {"name": band, "common_name": common, "center_wavelength": centre, "full_width_half_max": fwhm}


def _bbox(geom: dict[str, Any]) -> list[float]:
    from shapely.geometry import shape

    return [float(v) for v in shape(geom).bounds]


def build_item(l2a_path: Path | str | None, derived_dir: Path | str | None = None, *,
               l1c_path: Path | str | None = None, properties: dict[str, Any] | None = None) -> Any:
    """A pystac Item for one L2A output; either the L2A or its derived folder (or both) must exist."""
    import pystac
    from shapely.geometry import mapping

    from s2l2a.outputs.derive import DerivedResult

    product = None
    if l2a_path is not None and Path(l2a_path).exists():
        from s2l2a.safe import IncompleteProductError, open_l2a

        product = open_l2a(l2a_path, require_bands=False)
        for g in product.granules:  # an item must never describe a product with a band missing
            for key, missing in g.missing_files.items():
                raise IncompleteProductError(f"incomplete L2A: {Path(missing).name} ({key.split(':')[-1]}) "
                                             "is missing", l2a_path)
    derived = DerivedResult.load(derived_dir) if derived_dir is not None else None
    if product is None and derived is None:
        raise S2L2AError("neither the L2A product nor its derived outputs exist", l2a_path)
    if product is not None:
        item_id = product.name.name
        when = product.sensing_time
        geom = mapping(product.footprint) if product.footprint is not None else None
        mission, cloud, baseline, tile = product.mission, product.cloud_cover, product.baseline, product.tile
    else:
        assert derived is not None
        item_id = derived.product
        when = datetime.fromisoformat(derived.sensing_time) if derived.sensing_time else datetime.now(UTC)
        geom = derived.footprint
        mission, cloud, baseline, tile = derived.mission, derived.cloud_cover, derived.baseline, derived.tile
    if geom is None:
        raise S2L2AError("no footprint in the product metadata; cannot place the STAC item", l2a_path)
    geom = json.loads(json.dumps(geom))
    props: dict[str, Any] = {
        "platform": f"sentinel-{mission[1:].lower()}" if mission else "sentinel-2",
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "s2:processing_baseline": baseline,
        "s2:mgrs_tile": tile,
    }
    if cloud is not None:
        props["eo:cloud_cover"] = max(0.0, min(100.0, float(cloud)))
    props.update(properties or {})
    item = pystac.Item(id=item_id, geometry=geom, bbox=_bbox(geom), datetime=when.astimezone(UTC),
                       properties=props)
    item.stac_extensions = [EO_URI, PROJ_URI]
    epsg = None
    if product is not None and product.granules:
        g = product.granules[0]
        epsg = g.epsg
        for band in BAND_INFO:
            res = NATIVE_RESOLUTION.get(band)
            f = g.images.get(res or 0, {}).get(band)
            if f is None:
                continue
            extra = {"eo:bands": [_eo_band(band)], "gsd": float(res or 0), **_proj_fields(f)}
            item.add_asset(band, pystac.Asset(href=str(Path(f).resolve()), media_type=_media_type(f),
                                              title=f"{band} BOA reflectance x {product.boa_quantification_value:g} "
                                                    f"(offset {product.boa_add_offset.get(band, 0.0):g})",
                                              roles=["data", "reflectance"], extra_fields=extra))
        for layer, (res, title) in _AUX_LAYERS.items():
            f = g.images.get(res, {}).get(layer)
            if f is None:
                continue
            role = "visual" if layer == "TCI" else "data"
            item.add_asset(layer, pystac.Asset(href=str(Path(f).resolve()), media_type=_media_type(f), title=title,
                                               roles=[role], extra_fields={"gsd": float(res), **_proj_fields(f)}))
    if derived is not None:
        folder = Path(derived.out_dir)
        for name, fname in derived.files.items():
            f = folder / fname
            title = f"{name} = {derived.formulas[name]}" if name in derived.formulas else name
            key = f"derived_{name.lower()}"
            item.add_asset(key, pystac.Asset(href=str(f.resolve()), media_type=COG_TYPE, title=title,
                                             roles=["data", "derived"],
                                             extra_fields={"gsd": float(derived.resolution), **_proj_fields(f)}))
            epsg = epsg or derived.epsg
        for kind, fname in derived.quicklooks.items():
            key = "thumbnail" if kind == "tci" else f"quicklook_{kind}"
            item.add_asset(key, pystac.Asset(href=str((folder / fname).resolve()), media_type="image/png",
                                             title=f"{kind.upper()} quicklook", roles=["thumbnail", "overview"]))
    item.properties["proj:epsg"] = epsg
    if l1c_path is not None:
        item.add_link(pystac.Link(rel="derived_from", target=Path(l1c_path).resolve().as_uri(),
                                  media_type="application/x-directory", title=Path(l1c_path).name))
    elif product is not None and product.product_uri_l1c:
        item.properties["s2:product_uri_l1c"] = product.product_uri_l1c
    return item


def build_collection(items: Iterable[Any], collection_id: str, description: str) -> Any:
    """A pystac Collection whose extent covers ``items`` (which are added to it)."""
    import pystac

    items = list(items)
    if items:
        west = min(i.bbox[0] for i in items)
        south = min(i.bbox[1] for i in items)
        east = max(i.bbox[2] for i in items)
        north = max(i.bbox[3] for i in items)
        times = sorted(i.datetime for i in items)
        extent = pystac.Extent(pystac.SpatialExtent([[west, south, east, north]]),
                               pystac.TemporalExtent([[times[0], times[-1]]]))
    else:
        extent = pystac.Extent(pystac.SpatialExtent([[-180.0, -90.0, 180.0, 90.0]]),
                               pystac.TemporalExtent([[datetime.now(UTC), None]]))
    coll = pystac.Collection(id=collection_id, description=description, extent=extent, license="other",
                             title=collection_id)
    coll.stac_extensions = [EO_URI, PROJ_URI]
    coll.add_items(items)
    return coll


def write_campaign_stac(campaign_dir: Path | str, out_dir: Path | str | None = None,
                        skipped: list[str] | None = None) -> Path:
    """Write ``<campaign>/stac/collection.json`` and one item per converted product; validate everything.

    A product whose L2A is incomplete (a file its manifest or metadata lists is missing or has
    another size) gets no item; one line naming it and the file is appended to ``skipped``.
    """
    import pystac

    from s2l2a.campaign.manifest import check_output
    from s2l2a.campaign.store import CampaignStore
    from s2l2a.outputs.derive import find_derived
    from s2l2a.safe import IncompleteProductError

    campaign_dir = Path(campaign_dir).resolve()
    out = Path(out_dir) if out_dir else campaign_dir / STAC_DIR
    derived = find_derived(campaign_dir / "derived")
    items = []
    with CampaignStore.open(campaign_dir) as store:
        for job in store.jobs("done"):
            l2a = Path(job.output_path) if job.output_path else None
            name = l2a.name.removesuffix(".SAFE") if l2a else None
            ddir = derived.get(name) if name else None
            if (l2a is None or not l2a.exists()) and ddir is None:
                continue
            problem = check_output(l2a) if l2a is not None and l2a.exists() else None
            props = {"s2l2a:processor": job.processor, "s2l2a:processor_version": job.processor_version}
            try:
                if problem is not None:
                    raise IncompleteProductError(f"incomplete L2A {problem}")
                items.append(build_item(l2a, ddir, l1c_path=job.path,
                                        properties={k: v for k, v in props.items() if v}))
            except IncompleteProductError as e:
                if skipped is None:
                    raise
                skipped.append(f"no STAC item for job {job.id}: {e}")
    coll = build_collection(items, campaign_dir.name, f"Sentinel-2 L2A outputs of the s2l2a campaign {campaign_dir.name}")
    coll.normalize_hrefs(str(out))
    for item in items:  # relative asset hrefs: the campaign folder can be moved or mounted elsewhere
        item.make_asset_hrefs_relative()
    for obj in [coll, *items]:
        validate(obj)
    coll.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return out / "collection.json"
