"""Failure classes from exit status + log text."""

from __future__ import annotations

import pytest

from s2l2a.campaign.failures import FailureClass as F
from s2l2a.sen2cor.classify import (
    classify_failure,
    describe_exit,
    last_progress,
    succeeded,
    telling_line,
)

DONE = "Progress[%]: 100.00 : Application terminated successfully.\n"
ERR = "Progress[%]: 12.00 : Application terminated with at least one error.\n"


@pytest.mark.parametrize("rc,text,timed_out,expected", [
    (None, "Progress[%]: 17.00 : L2A_AtmCorr\n", True, F.TIMEOUT),
    (-9, "Progress[%]: 25.00 : working\n", False, F.KILLED),
    (137, "", False, F.KILLED),
    (-15, "", False, F.KILLED),
    (-9, "kernel: Out of memory: Killed process 4242 (python)\n", False, F.OUT_OF_MEMORY),
    (1, "Traceback (most recent call last):\n  File \"x.py\"\nMemoryError\n" + ERR, False, F.OUT_OF_MEMORY),
    (1, "L2A_DEM: error: DEM tile srtm_66_19.tif cannot be downloaded\n" + ERR, False, F.DEM_ERROR),
    (1, "RuntimeError: DEM could not be created\n" + ERR, False, F.DEM_ERROR),
    (1, "L2A_SceneClass: ESACCI-LC-L4-WB-Map-150m-P13Y-2000-v4.0.tif not found\n" + ERR, False,
     F.MISSING_AUX),
    (1, "Product metadata file cannot be read: /x y/S2A.SAFE\n" + ERR, False, F.BAD_INPUT),
    (1, "Product X: error in L2A_Tables: cannot read tile metadata.\n" + ERR, False, F.OTHER),
    (0, "no success line at all\n", False, F.EMPTY_OUTPUT),
    (0, "L2A_DEM: error: DEM unreadable\n" + ERR, False, F.DEM_ERROR),  # Sen2Cor can exit 0 on errors
])
def test_classify(rc: int | None, text: str, timed_out: bool, expected: F) -> None:
    assert classify_failure(rc, text, timed_out=timed_out) == expected


def test_normal_esacci_mentions_are_not_failures() -> None:
    text = "L2A_SceneClass: using ESACCI-LC-L4-WB-Map-150m-P13Y-2000-v4.0.tif\nboom: error in L2A_AtmCorr\n"
    assert classify_failure(1, text) == F.OTHER


def test_telling_line_prefers_the_specific_cause() -> None:
    text = ("started ...\nL2A_DEM: error: DEM tile srtm_66_19.tif cannot be read\n"
            "Traceback (most recent call last):\nRuntimeError: DEM could not be created\n" + ERR)
    assert telling_line(text, F.DEM_ERROR) == "L2A_DEM: error: DEM tile srtm_66_19.tif cannot be read"
    assert telling_line(text) == "RuntimeError: DEM could not be created"
    assert telling_line("a\n\n   \nlast words\x07\n") == "last words"
    assert len(telling_line("error " + "x" * 500)) == 200


def test_succeeded_and_describe() -> None:
    assert succeeded("x\n" + DONE) and not succeeded(ERR)
    assert describe_exit(-9, False, 1.0, 10) == "killed by SIGKILL"
    assert describe_exit(2, False, 1.0, 10) == "exit 2"
    assert describe_exit(None, True, 12.3, 12) == "timed out after 12 s (limit 12 s), process group killed"


def test_last_progress() -> None:
    assert last_progress("Progress[%]: 5.00 : a\nx\nProgress[%]: 17.00 : b\nSTANDIN\n") == "Progress[%]: 17.00 : b"
    assert last_progress("nothing") == ""
