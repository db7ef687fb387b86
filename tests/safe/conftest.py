"""Fixtures for the s2l2a.safe tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from safe_helpers import SAMPLE


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    """A writable copy of the bundled real L1C (small decimated images, ~1 MB)."""
    dst = tmp_path / SAMPLE.name
    shutil.copytree(SAMPLE, dst)
    return dst
