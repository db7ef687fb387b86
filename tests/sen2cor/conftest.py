"""Fixtures for the Sen2Cor tests: the stand-in L2A_Process and a clean environment for it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from s2l2a.sen2cor import locate as sen2cor_locate

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "tests" / "standin" / "L2A_Process"
HELP = REPO / "tests" / "data" / "sen2cor" / "help"


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in, run by the test interpreter (which has numpy + rasterio), no STANDIN_* leaking in.

    A small wrapper script pins the interpreter: the repo's stand-in says ``#!/usr/bin/env python3``,
    which on a developer machine may be a Python without rasterio.
    """
    for var in list(os.environ):
        if var.startswith("STANDIN_") or var == "SEN2COR_BIN":
            monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sen2cor_locate, "_INFO_CACHE", {})
    exe = tmp_path / "bin" / "L2A_Process"
    exe.parent.mkdir()
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} {STANDIN} \"$@\"\n")
    exe.chmod(0o755)
    return exe
