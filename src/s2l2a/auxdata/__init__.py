"""Auxiliary data the processors need besides the L1C product: the elevation model (``dem``,
``dem_tiles``) and the download/unpacking helpers they share (``download``).

The same prepared DEM serves Sen2Cor (through its GIPP) and the built-in processor's terrain and
pressure handling, so it lives here rather than under ``sen2cor/``.
"""
