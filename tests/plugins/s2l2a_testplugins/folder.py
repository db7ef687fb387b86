"""A toy acquisition source: L1C products in a local folder (``$S2L2A_FOLDER_SOURCE``), the worked
example of adding a source (docs/architecture.md; tests/test_plugins.py fetches through it).

A real source would call a service through ``http`` (an ``s2l2a.acquire.download.Http``: retries,
resumable verified downloads); this one copies folders, but it finishes a download the way every
source must: assembled in a staging folder, metadata held until complete, then ``finish`` moves it
into place and records it, so an interrupted copy is never taken for a product.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from s2l2a.acquire.query import Candidate, Query, is_l1c, name_match
from s2l2a.acquire.staging import finish, hold_all, product_files, stage_dir

ENV = "S2L2A_FOLDER_SOURCE"


class FolderSource:
    name = "folder"
    summary = f"L1C products in a local folder (${ENV}; a test plug-in)"
    archives = False

    def __init__(self, http: Any) -> None:
        self.root = Path(os.environ.get(ENV, "."))

    def search(self, query: Query) -> list[Candidate]:
        out = []
        for path in sorted(self.root.glob("*.SAFE")):
            name = path.name.removesuffix(".SAFE")
            if not is_l1c(name):
                continue
            c = Candidate.from_name(name, self.name, str(path), size=sum(product_files(path).values()))
            if name_match(c, query):
                out.append(c)
        return out

    def download(self, cand: Candidate, dest_dir: Path, stage_root: Path) -> Path:
        stage = stage_dir(stage_root, cand.name)
        shutil.rmtree(stage, ignore_errors=True)
        shutil.copytree(cand.ref, stage)
        files = product_files(stage)  # under their real names, before the metadata is held
        hold_all(stage)
        return finish(stage, dest_dir, cand, files)
