"""Derive s2l2a's shipped Sentinel-2 tile grid from the real ESA-derived grid shapefile.

Why: the full grid (56,984 records, ~48 MB unzipped) is too big to ship, and the project has no
vector-file reader dependency. Each tile is a 109,800 m square in its UTM zone, so its lower-left
UTM corner is all that is needed: ``tiles.py`` rebuilds the lon/lat footprint with pyproj.

Input: ``sentinel_2_index_shapefile_attr.zip`` (see ``src/s2l2a/acquire/data/SOURCE.md``); only its
``.dbf`` is read (fields ``Name``, ``EPSG``, ``UTM_WKT``), with the tiny DBF reader below (stdlib only).
Output: ``src/s2l2a/acquire/data/s2_tiles.csv.gz`` with ``tile,xmin,ymin`` rows, sorted by tile.

    python scripts/build_s2_grid.py ../shared/realdata/sources/mgrs_grid/sentinel_2_index_shapefile_attr.zip
"""

from __future__ import annotations

import gzip
import io
import re
import struct
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "s2l2a" / "acquire" / "data" / "s2_tiles.csv.gz"
SIZE = 109800


def read_dbf(data: bytes) -> list[dict[str, str]]:
    """Records of a dBASE III file (character fields only, which is all this grid uses)."""
    count, header_len, record_len = struct.unpack("<IHH", data[4:12])
    fields: list[tuple[str, int]] = []
    pos = 32
    while data[pos] != 0x0D:
        name = data[pos : pos + 11].split(b"\0", 1)[0].decode("ascii")
        fields.append((name, data[pos + 16]))
        pos += 32
    records = []
    for i in range(count):
        rec = data[header_len + i * record_len : header_len + (i + 1) * record_len]
        if rec[:1] == b"*":  # deleted record
            continue
        off, row = 1, {}
        for name, length in fields:
            row[name] = rec[off : off + length].decode("utf-8").strip()
            off += length
        records.append(row)
    return records


def epsg_of(tile: str) -> int:
    """UTM EPSG code implied by a tile name: latitude bands C-M are south, N-X north."""
    return (32700 if tile[2] < "N" else 32600) + int(tile[:2])


def main(zip_path: str) -> None:
    with zipfile.ZipFile(zip_path) as zf:
        dbf = next(n for n in zf.namelist() if n.endswith(".dbf"))
        records = read_dbf(zf.read(dbf))
    tiles: dict[str, tuple[int, int]] = {}
    for rec in records:
        name = rec["Name"]
        nums = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", rec["UTM_WKT"])]
        xs, ys = nums[0::2], nums[1::2]
        xmin, ymin = int(min(xs)), int(min(ys))
        assert max(xs) - xmin == SIZE and max(ys) - ymin == SIZE, (name, rec["UTM_WKT"])
        assert int(rec["EPSG"]) == epsg_of(name), (name, rec["EPSG"])
        assert tiles.get(name, (xmin, ymin)) == (xmin, ymin), name
        tiles[name] = (xmin, ymin)
    buf = io.StringIO()
    buf.write("tile,xmin,ymin\n")
    for name in sorted(tiles):
        buf.write(f"{name},{tiles[name][0]},{tiles[name][1]}\n")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(OUT, "wb", mtime=0) as gz:
        gz.write(buf.getvalue().encode("ascii"))
    print(f"{len(records)} records, {len(tiles)} tiles -> {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1])
