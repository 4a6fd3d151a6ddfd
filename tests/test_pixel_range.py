"""Array images whose values look scaled for another pixel range get a warning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits

from sktransfer import as_image_source
from sktransfer.exceptions import ImageInputError, PixelRangeWarning

DIGITS = load_digits().images  # float64, 0-16


@pytest.mark.parametrize(
    "X, fix",
    [
        (DIGITS, r"pass X / 16"),
        (DIGITS.astype(np.int64), r"pass X / 16"),
        ((DIGITS > 8).astype(np.int64), r"X.astype\(bool\)"),
        ((DIGITS > 8).astype(np.uint8), r"X.astype\(bool\)"),
        (DIGITS * 15, r"pass X / 255"),
        (DIGITS * 1000, r"Scale it to \[0, 1\]"),
        ((DIGITS - 8) / 4, r"normalised \(mean/std\)"),
    ],
    ids=[
        "float-0-16",
        "int-0-16",
        "int-0-1",
        "uint8-0-1",
        "float-0-255",
        "float-big",
        "standardised",
    ],
)
def test_suspicious_pixel_ranges_warn_with_the_fix(X, fix):
    with pytest.warns(PixelRangeWarning, match=fix):
        as_image_source(X)


@pytest.mark.parametrize(
    "X",
    [
        DIGITS / 16.0,
        (DIGITS * 15).astype(np.uint8),
        (DIGITS > 8),
        np.zeros((2, 8, 8), dtype=np.int64),
        np.full((2, 8, 8), 1000, dtype=np.uint16),
    ],
    ids=["float-0-1", "uint8-0-255", "bool", "black", "uint16"],
)
def test_ordinary_pixel_ranges_are_quiet(X):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        as_image_source(X)


def test_the_warning_points_at_the_callers_line(make_extractor):
    with pytest.warns(PixelRangeWarning) as record:
        make_extractor().fit(DIGITS[:4])
    assert record[0].filename == __file__


def test_lists_of_arrays_of_different_sizes_are_refused_with_the_fix():
    images = [np.zeros((8, 8)), np.zeros((16, 16))]
    with pytest.raises(ImageInputError, match="Resize them to one shape first"):
        as_image_source(images)
