"""The built-in physically based L2A processor (no Sen2Cor needed).

``PLUGIN`` declares it to :mod:`s2l2a.registry` (name, the ``[builtin]`` section); ``BuiltinProcessor``
is imported lazily so that ``lut``/``invert`` (and the LUT generator) can be used without pulling in
the whole pipeline, and reading a campaign's settings imports no numerical code.
"""

from __future__ import annotations

from s2l2a import lazy
from s2l2a.processors.builtin.formats import DEFAULT_FORMAT, format_names
from s2l2a.registry import ProcessorPlugin, Section, Setting

__all__ = ["PLUGIN", "BuiltinProcessor"]

#: ``[builtin]``: the keys checked when s2l2a.toml is read (``dem``'s path rules live with the campaign's
#: other path rules, campaign.layout.check_dem_setting); the other tunables (``pipeline.Options``:
#: aerosol, cell_m, ...) are checked when the processor is built, unknown ones refused there
SECTION = Section("builtin", open=True, help="options of the built-in processor (pipeline.Options)", settings=(
    Setting("output_format", "str", DEFAULT_FORMAT, choices=format_names(),
            help="raster format of the L2A images: JP2 (ESA's layout) or COG (analysis-ready)"),
    Setting("resolution", "int", None, choices=(10, 20, 60),
            help="10 (all), 20 (R20m + R60m) or 60 (R60m only), like Sen2Cor's --resolution"),
    Setting("dem", "any", None,
            help="a DEM raster or an 's2l2a dem' folder (relative to the campaign folder); unset: the "
                 "campaign's aux/dem once 's2l2a dem' made it; false: flat terrain"),
))

PLUGIN = ProcessorPlugin(
    name="builtin", factory="s2l2a.processors.builtin.processor:BuiltinProcessor", section=SECTION,
    summary="built-in physically based processor (6S look-up table, DDV aerosol, Sen2Cor-like SCL)",
    # a full tile: 140 s wall / 202 CPU-s on 2 cores (docs/benchmarks.md, 2026-12-06); 10 min bounds it on one core.
    # Disk: ~1.2 GB of outputs plus up to ~1.35 GB of raw band files a running job keeps in staging
    # (pipeline.decode_reduced spills whole bands there instead of holding them in memory)
    output_mb=2600, max_duration_s=600)


__getattr__, __dir__ = lazy.exports(__name__, {"BuiltinProcessor": "s2l2a.processors.builtin.processor"})
