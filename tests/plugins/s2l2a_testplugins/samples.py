"""Cheap copies of the bundled real L1C for campaign tests and benchmarks (installed with the test
plug-ins so that benches use them without importing anything from tests/).

A clone copies the small metadata files and hard-links the images (``safe`` refuses symlinks
leading out of a product; copies across devices), then edits the metadata so it reads as another
acquisition (``day``) and/or another processing of it (``baseline``, ``generation``).
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]  # tests/plugins/s2l2a_testplugins/samples.py (editable install)
SAMPLE = REPO / "data" / "sample" / "S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042.SAFE"


def sample_name(day: int = 0, baseline: str = "02.06", generation: str | None = None) -> str:
    """The compact name of a clone (no ``.SAFE``)."""
    d = date(2018, 6, 29) + timedelta(days=day)
    gen = generation or f"{d:%Y%m%d}T012042"
    return f"S2A_MSIL1C_{d:%Y%m%d}T000241_N{baseline.replace('.', '')}_R030_T56JMM_{gen}"


def clone_sample(dest_root: Path, *, day: int = 0, baseline: str = "02.06", generation: str | None = None,
                 src: Path = SAMPLE) -> Path:
    """The sample as acquisition ``day`` days later, processed with ``baseline`` at ``generation``."""
    name = sample_name(day, baseline, generation)
    dest = Path(dest_root) / f"{name}.SAFE"
    for dirpath, _dirs, files in os.walk(src):
        rel = Path(dirpath).relative_to(src)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for f in files:
            s, d = Path(dirpath) / f, dest / rel / f
            if f.endswith(".jp2"):
                try:
                    os.link(s, d)
                except OSError:
                    shutil.copyfile(s, d)
            else:
                shutil.copyfile(s, d)
    new_day = f"{date(2018, 6, 29) + timedelta(days=day):%Y-%m-%d}T"
    mtd = dest / "MTD_MSIL1C.xml"
    text = mtd.read_text()
    if day:  # sensing (and datastrip/generation) dates in the metadata follow the name
        text = text.replace("2018-06-29T", new_day)
        for tl in dest.glob("GRANULE/*/MTD_TL.xml"):
            tl.write_text(tl.read_text().replace("2018-06-29T", new_day))
    text = re.sub(r"<PRODUCT_URI>[^<]*<", f"<PRODUCT_URI>{name}.SAFE<", text)
    text = re.sub(r"<PROCESSING_BASELINE>[^<]*<", f"<PROCESSING_BASELINE>{baseline}<", text)
    if generation:
        iso = datetime.strptime(generation, "%Y%m%dT%H%M%S").strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        text = re.sub(r"<GENERATION_TIME>[^<]*<", f"<GENERATION_TIME>{iso}<", text)
    mtd.write_text(text)
    return dest
