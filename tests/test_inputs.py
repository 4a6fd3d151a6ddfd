"""Tests for sktransfer._inputs: turning user inputs into image batches."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from sktransfer._inputs import (
    ImageDataset,
    ImageSource,
    as_image_source,
    iter_batches,
    list_image_folder,
)
from sktransfer.exceptions import ImageInputError


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _write_png(path, rng, size=(8, 8), mode="RGB"):
    """Write a random image of ``size=(H, W)`` and return its pixels and path."""
    shape = size + ((3,) if mode == "RGB" else ())
    pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels, str(path)


@pytest.fixture
def png_paths(tmp_path, rng):
    sizes = [(8, 8), (16, 12), (8, 8), (10, 6), (8, 8)]
    return [_write_png(tmp_path / f"{i}.png", rng, s)[1] for i, s in enumerate(sizes)]


# -- accepted inputs ---------------------------------------------------------


@pytest.mark.parametrize(
    "shape, expected",
    [
        ((4, 8, 6), (4, 1, 8, 6)),  # NHW
        ((4, 8, 6, 3), (4, 3, 8, 6)),  # NHWC
        ((4, 8, 6, 1), (4, 1, 8, 6)),
        ((4, 3, 8, 6), (4, 3, 8, 6)),  # NCHW
        ((4, 4, 8, 6), (4, 4, 8, 6)),
        ((4, 3, 8, 4), (4, 4, 3, 8)),  # ambiguous: channels-last wins
    ],
)
def test_array_layouts_give_nchw(shape, expected, rng):
    X = rng.random(shape, dtype=np.float32)
    source = as_image_source(X)
    batch = source.load(slice(None))
    assert source.kind == "array" and len(source) == 4
    assert source.image_shape == expected[1:]
    assert batch.shape == expected and batch.dtype == torch.float32
    if len(shape) == 4 and shape[-1] in (1, 3, 4):
        np.testing.assert_array_equal(batch.numpy(), X.transpose(0, 3, 1, 2))
    elif len(shape) == 4:
        np.testing.assert_array_equal(batch.numpy(), X)


@pytest.mark.parametrize(
    "dtype, high", [(np.uint8, 255), (np.uint16, 65535), (np.bool_, 1)]
)
def test_integer_dtypes_are_scaled_to_unit_range(dtype, high):
    X = np.zeros((2, 4, 4, 3), dtype=dtype)
    X[0, 0, 0, 0] = high
    X[1, 1, 1, 1] = high // 2 if high > 1 else 0
    batch = as_image_source(X).load([0, 1])
    assert batch.dtype == torch.float32
    assert batch[0, 0, 0, 0] == 1.0 and batch.min() == 0.0
    assert batch[1, 1, 1, 1] == pytest.approx((high // 2) / high if high > 1 else 0)


def test_float_arrays_are_returned_unchanged(rng):
    X = rng.random((3, 5, 5)).astype(np.float64)
    batch = as_image_source(X).load(np.array([2, 0]))
    assert batch.dtype == torch.float32
    np.testing.assert_allclose(batch[:, 0].numpy(), X[[2, 0]], rtol=1e-6)


def test_torch_tensor_input(rng):
    X = torch.from_numpy(rng.integers(0, 256, (3, 6, 6, 3), dtype=np.uint8))
    batch = as_image_source(X).load(slice(0, 3))
    assert batch.shape == (3, 3, 6, 6)
    np.testing.assert_allclose(batch.numpy(), X.numpy().transpose(0, 3, 1, 2) / 255)


@pytest.mark.parametrize(
    "image_shape, expected", [((4, 6), (1, 4, 6)), ((4, 6, 3), (3, 4, 6))]
)
def test_2d_array_with_image_shape(image_shape, expected, rng):
    images = rng.random((5,) + image_shape, dtype=np.float32)
    X = images.reshape(5, -1)
    source = as_image_source(X, image_shape=image_shape)
    batch = source.load(slice(1, 3))
    assert source.image_shape == expected and batch.shape == (2,) + expected
    first = images[1] if len(image_shape) == 2 else images[1].transpose(2, 0, 1)
    np.testing.assert_array_equal(batch[0].numpy().reshape(first.shape), first)


def test_2d_fortran_array_is_not_copied_up_front(rng):
    X = np.asfortranarray(rng.random((6, 16), dtype=np.float32))
    source = as_image_source(X, image_shape=(4, 4))
    assert np.shares_memory(source._data, X)
    np.testing.assert_array_equal(source.load([5])[0, 0].numpy(), X[5].reshape(4, 4))


def test_same_shaped_list_of_arrays_is_stacked(rng):
    X = [rng.random((6, 6, 3), dtype=np.float32) for _ in range(3)]
    source = as_image_source(X)
    assert source.kind == "array"
    np.testing.assert_array_equal(source.load([1])[0].numpy(), X[1].transpose(2, 0, 1))


def test_paths_of_mixed_sizes_resized_to_size(png_paths):
    source = as_image_source(png_paths)
    assert source.kind == "paths" and source.image_shape is None
    batch = source.load(slice(None), size=(10, 12))
    assert batch.shape == (5, 3, 10, 12) and batch.dtype == torch.float32
    assert 0.0 <= batch.min() and batch.max() <= 1.0


def test_paths_without_size_follow_first_image(png_paths):
    batch = as_image_source(png_paths).load([1, 0, 3])
    assert batch.shape == (3, 3, 16, 12)


def test_path_pixels_are_decoded_exactly(tmp_path, rng):
    pixels, path = _write_png(tmp_path / "a.png", rng, (6, 7))
    gray, gray_path = _write_png(tmp_path / "g.png", rng, (6, 7), mode="L")
    batch = as_image_source([path, gray_path]).load([0, 1])
    np.testing.assert_allclose(batch[0].numpy(), pixels.transpose(2, 0, 1) / 255)
    for channel in range(3):  # grayscale is decoded to RGB
        np.testing.assert_allclose(batch[1, channel].numpy(), gray / 255)


def test_16bit_png_keeps_full_range(tmp_path):
    pixels = (np.arange(16, dtype=np.uint16) * 4000).reshape(4, 4)
    Image.fromarray(pixels).save(tmp_path / "deep.png")
    batch = as_image_source([tmp_path / "deep.png"]).load([0])
    np.testing.assert_allclose(batch[0, 0].numpy(), pixels / 65535, atol=1e-6)


def test_pandas_series_of_paths(png_paths):
    source = as_image_source(pd.Series(png_paths, index=range(10, 15)))
    assert source.kind == "paths" and len(source) == 5
    assert source.load([4], size=(8, 8)).shape == (1, 3, 8, 8)


def test_pil_list(rng):
    images = [Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))]
    images.append(Image.fromarray(rng.integers(0, 256, (5, 9), dtype=np.uint8)))
    source = as_image_source(images)
    batch = source.load(slice(None), size=(8, 8))
    assert source.kind == "pil" and batch.shape == (2, 3, 8, 8)
    np.testing.assert_allclose(
        batch[0].numpy(), np.asarray(images[0]).transpose(2, 0, 1) / 255
    )


def test_image_source_is_returned_unchanged(rng):
    source = as_image_source(rng.random((2, 4, 4)))
    assert as_image_source(source) is source
    assert isinstance(source, ImageSource)


# -- bad inputs --------------------------------------------------------------


@pytest.mark.parametrize(
    "X, match",
    [
        (np.zeros((0, 8, 8)), r"images.*0 samples; pass at least one"),
        ([], r"images.*0 samples"),
        (
            np.zeros(8),
            r"images has 1 dimension.*Reshape your data to \(n_samples, height",
        ),
        (
            np.zeros((2, 3, 4, 4, 3)),
            r"images has 5 dimension.*Reshape your data to \(n_samples",
        ),
        (np.zeros((2, 8, 8, 5)), r"images holds images of shape.*1, 3 or 4 channels"),
        (np.zeros((2, 8, 8), np.complex64), r"images has dtype complex64.*real part"),
        (np.full((2, 8, 8), -1, np.int64), r"images holds integers from -1.*Rescale"),
        (np.zeros((4, 64)), r"images is 2-D.*pass image_shape"),
        (np.array([1, 2.5, None], dtype=object), r"images is a sequence holding"),
        ([1, 2, 3], r"images is a sequence holding int.*only file paths"),
        ({"a": 1}, r"images of type dict is not supported"),
        ("some/file.png", r"images is a single path.*pass a list"),
    ],
)
def test_bad_inputs_raise_with_argument_and_fix(X, match):
    with pytest.raises(ImageInputError, match=match):
        as_image_source(X, argument="images")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_floats_raise(bad):
    X = np.zeros((3, 4, 4), dtype=np.float32)
    X[2, 1, 1] = bad
    with pytest.raises(ImageInputError, match=r"X contains NaN.*sample 2.*nan_to_num"):
        as_image_source(X)


def test_image_shape_mismatch_raises():
    with pytest.raises(
        ImageInputError, match=r"image_shape=\(5, 5\).*multiplying to 64"
    ):
        as_image_source(np.zeros((2, 64)), image_shape=(5, 5))


def test_mixed_paths_and_pil_raise(png_paths):
    mixed = [png_paths[0], Image.new("RGB", (4, 4))]
    with pytest.raises(ImageInputError, match=r"X is a sequence holding Image, str"):
        as_image_source(mixed)


def test_ragged_list_of_arrays_raises():
    with pytest.raises(ImageInputError, match=r"X is a list of arrays.*Resize them"):
        as_image_source([np.zeros((4, 4)), np.zeros((5, 4))])


def test_missing_files_are_named_and_counted(png_paths, tmp_path):
    missing = [str(tmp_path / f"gone{i}.png") for i in range(5)]
    with pytest.raises(ImageInputError, match=r"5 of the 10 files in X") as info:
        as_image_source(png_paths + missing)
    assert "gone0.png" in str(info.value) and "gone4.png" not in str(info.value)
    assert "Fix or drop these paths" in str(info.value)


def test_not_an_image_fails_at_load(tmp_path, png_paths):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    source = as_image_source([png_paths[0], bad])  # decoding is deferred
    assert source.load([0]).shape == (1, 3, 8, 8)
    with pytest.raises(
        ImageInputError, match=r"X\[1\] = .*notes\.png.*Remove or repair"
    ):
        source.load(slice(None))


def test_truncated_png_fails_at_load(tmp_path, rng):
    _, path = _write_png(tmp_path / "cut.png", rng, (32, 32))
    data = Path(path).read_bytes()
    with open(path, "wb") as file:
        file.write(data[: len(data) // 2])
    with pytest.raises(ImageInputError, match=r"cut\.png.*could not be decoded"):
        as_image_source([path]).load([0])


# -- no mutation, fingerprints ---------------------------------------------


def test_input_array_is_not_modified(rng):
    X = rng.integers(0, 256, (4, 6, 6, 3), dtype=np.uint8)
    Xf = rng.random((4, 3, 6, 6), dtype=np.float32)
    copies = X.copy(), Xf.copy()
    for array, copy in zip((X, Xf), copies):
        batch = as_image_source(array).load(slice(None))
        batch += 1  # the returned tensor must not alias the user's array
        np.testing.assert_array_equal(array, copy)


def test_fingerprint_tracks_array_content(rng):
    X = rng.integers(0, 256, (4, 6, 6), dtype=np.uint8)
    same = as_image_source(X.copy()).fingerprint()
    assert as_image_source(X).fingerprint() == same
    changed = X.copy()
    changed[3, 5, 5] ^= 1
    assert as_image_source(changed).fingerprint() != same
    assert as_image_source(X.astype(np.uint16)).fingerprint() != same


def test_fingerprint_tracks_pil_and_paths(png_paths, rng):
    pixels = rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)
    changed = pixels.copy()
    changed[0, 0, 0] ^= 1
    fp = as_image_source([Image.fromarray(pixels)]).fingerprint()
    assert as_image_source([Image.fromarray(pixels.copy())]).fingerprint() == fp
    assert as_image_source([Image.fromarray(changed)]).fingerprint() != fp

    before = as_image_source(png_paths).fingerprint()
    assert as_image_source(list(png_paths)).fingerprint() == before
    Image.fromarray(pixels).save(png_paths[2])  # same path, new content
    assert as_image_source(png_paths).fingerprint() != before


# -- batching, datasets, folders ---------------------------------------------


def test_iter_batches_covers_array_in_order(rng):
    X = rng.random((7, 4, 4), dtype=np.float32)
    batches = list(iter_batches(as_image_source(X), 3))
    assert [len(b) for b in batches] == [3, 3, 1]
    np.testing.assert_array_equal(torch.cat(batches)[:, 0].numpy(), X)


@pytest.mark.parametrize("num_workers", [0, 1])
def test_iter_batches_paths_in_order(png_paths, num_workers):
    source = as_image_source(png_paths)
    batches = list(iter_batches(source, 2, size=(8, 8), num_workers=num_workers))
    assert [len(b) for b in batches] == [2, 2, 1]
    expected = source.load(slice(None), size=(8, 8))
    torch.testing.assert_close(torch.cat(batches), expected)


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"num_workers": -1}])
def test_iter_batches_rejects_bad_arguments(kwargs, rng):
    arguments = {"batch_size": 2, **kwargs}
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=f"{name} must be an integer"):
        iter_batches(as_image_source(rng.random((2, 4, 4))), **arguments)


def test_image_dataset_returns_image_and_target(png_paths):
    y = pd.Series(["a", "b", "c", "d", "e"], index=range(100, 105))
    dataset = ImageDataset(png_paths, y=y, size=(8, 8), transform=lambda b: b * 0.5)
    image, target = dataset[3]
    assert len(dataset) == 5 and target == "d"
    assert image.shape == (3, 8, 8) and image.max() <= 0.5
    _, dummy = ImageDataset(np.zeros((2, 4, 4)))[1]
    assert dummy == 0
    with pytest.raises(ImageInputError, match="y has 2 entries"):
        ImageDataset(png_paths, y=[0, 1])


def test_list_image_folder(tmp_path, rng):
    for name in ["dog/b.png", "cat/z.jpg", "cat/a.png", "dog/sub/c.png"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        _write_png(tmp_path / name, rng)
    (tmp_path / "cat" / "notes.txt").write_text("skip me")
    (tmp_path / ".hidden").mkdir()
    _write_png(tmp_path / ".hidden" / "x.png", rng)
    paths, labels = list_image_folder(tmp_path)
    relative = [os.path.relpath(p, tmp_path).replace(os.sep, "/") for p in paths]
    assert relative == ["cat/a.png", "cat/z.jpg", "dog/b.png", "dog/sub/c.png"]
    assert labels.tolist() == ["cat", "cat", "dog", "dog"]
    assert as_image_source(paths).load(slice(None)).shape == (4, 3, 8, 8)


def test_list_image_folder_errors(tmp_path):
    with pytest.raises(ImageInputError, match=r"root=.*missing.*not an existing"):
        list_image_folder(tmp_path / "missing")
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(ImageInputError, match=r"root=.*has no images.*<class>"):
        list_image_folder(tmp_path)
