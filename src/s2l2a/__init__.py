"""s2l2a: batch Sentinel-2 L1C -> L2A conversion with Sen2Cor or a built-in processor."""

__version__ = "0.1.0"
