"""The one SCL class table: codes 0-11 as ESA defines them, legend colours, the default clear set."""

import pytest

from s2l2a.outputs.derive import DEFAULT_CLEAR, DeriveError, DeriveSpec
from s2l2a.processors.builtin import scl as cascade
from s2l2a.safe import scl
from s2l2a.safe.scl import palette as scl_palette


def test_codes_are_esa_0_to_11_in_order():
    assert [c.code for c in scl.CLASSES] == list(range(12))
    assert scl.BY_CODE[scl.CLD_HIGH].name == "cloud, high probability"
    assert scl.BY_CODE[scl.NO_DATA].colour == (0, 0, 0)


def test_clear_set_is_vegetation_soil_water_everywhere():
    assert scl.CLEAR == (4, 5, 6) == DEFAULT_CLEAR


def test_builtin_cascade_writes_the_same_codes():
    assert (cascade.NO_DATA, cascade.WATER, cascade.CIRRUS, cascade.SNOW) == (0, 6, 10, 11)


def test_quicklook_palette_comes_from_the_table():
    lut = scl_palette()
    assert tuple(lut[scl.WATER]) == (0, 0, 255) and tuple(lut[12]) == (90, 90, 90)


def test_unknown_class_refused_naming_the_range():
    with pytest.raises(DeriveError, match=r"^SCL class 12 does not exist \(0-11\)$"):
        DeriveSpec(clear_classes=(4, 12)).parsed()
