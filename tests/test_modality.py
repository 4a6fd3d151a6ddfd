"""Tests for the modality seam of sktransfer._inputs: sources, registry, datasets."""

import hashlib

import numpy as np
import pytest

from sktransfer._inputs import (
    ImageModality,
    ImageSource,
    InputSource,
    Modality,
    SourceDataset,
    get_modality,
    iter_batches,
    register_modality,
)


class _TextSource(InputSource):
    """A text-like source: ``load`` returns a list of str, ``size`` is ignored."""

    kind = "text"

    def __init__(self, texts):
        self._texts = list(texts)

    def __len__(self):
        return len(self._texts)

    def load(self, indices, size=None):
        if isinstance(indices, slice):
            return self._texts[indices]
        return [self._texts[i] for i in indices]

    def fingerprint(self):
        return hashlib.blake2b("\0".join(self._texts).encode()).hexdigest()


def test_image_modality_wraps_arrays_in_an_image_source():
    modality = get_modality("image")
    source = modality.as_source(np.zeros((2, 8, 8)))

    assert isinstance(modality, ImageModality)
    assert modality.name == "image"
    assert isinstance(source, ImageSource)
    assert isinstance(source, InputSource)
    assert len(source) == 2
    assert source.image_shape == (1, 8, 8)


def test_image_modality_passes_options_and_argument_name():
    source = get_modality("image").as_source(np.zeros((3, 64)), image_shape=(8, 8))
    assert source.image_shape == (1, 8, 8)

    with pytest.raises(ValueError, match="images is 2-D"):
        get_modality("image").as_source(np.zeros((3, 64)), argument="images")


def test_unknown_modality_lists_the_known_names():
    with pytest.raises(ValueError, match=r"Unknown modality 'txt'.*'image'"):
        get_modality("txt")


def test_registering_a_duplicate_name_raises():
    with pytest.raises(ValueError, match="modality named 'image' is already"):
        register_modality(ImageModality())
    assert isinstance(get_modality("image"), ImageModality)


def test_registering_something_else_than_a_modality_raises():
    with pytest.raises(TypeError, match="Modality instance"):
        register_modality(ImageModality)


def test_abstract_interfaces_cannot_be_instantiated():
    with pytest.raises(TypeError):
        InputSource()
    with pytest.raises(TypeError):
        Modality()


def test_source_dataset_over_a_text_source_yields_strings():
    source = _TextSource(["a cat", "a dog", "a bird"])
    dataset = SourceDataset(source, y=np.array([0, 1, 1]))

    assert len(dataset) == 3
    assert [dataset[i] for i in range(3)] == [("a cat", 0), ("a dog", 1), ("a bird", 1)]
    assert all(isinstance(item, str) for item, _ in dataset)
    assert SourceDataset(source)[1] == ("a dog", 0)


def test_source_dataset_checks_y_length_and_source_type():
    with pytest.raises(ValueError, match="y has 2 entries but there are 3 samples"):
        SourceDataset(_TextSource("abc"), y=[0, 1])
    with pytest.raises(TypeError, match="InputSource"):
        SourceDataset(["a cat", "a dog"])


def test_iter_batches_works_on_any_source():
    source = _TextSource(["a", "b", "c", "d", "e"])
    assert list(iter_batches(source, 2)) == [["a", "b"], ["c", "d"], ["e"]]


@pytest.mark.parametrize(
    ("backbone", "X", "looks_like", "suggested"),
    [
        ("efficientnet_lite0", ["a cat on a mat", "a dog"], "text", "all-minilm-l6-v2"),
        (
            "efficientnet_lite0",
            [np.zeros(12000), np.zeros(900)],
            "audio",
            "keyword_cnn",
        ),
        ("efficientnet_lite0", np.zeros((2, 16000)), "audio", "keyword_cnn"),
        ("efficientnet_lite0", ["clip.wav"], "audio", "voice_encoder"),
        ("all-minilm-l6-v2", np.zeros((2, 8, 8)), "images", "efficientnet_lite0"),
        ("keyword_cnn", ["hello there", "good morning"], "text", "all-minilm-l6-v2"),
    ],
)
def test_input_of_another_modality_gets_an_error_naming_backbones_that_read_it(
    backbone, X, looks_like, suggested
):
    from sktransfer import PretrainedFeatureExtractor
    from sktransfer.exceptions import SkTransferError

    with pytest.raises(SkTransferError, match=f"X looks like {looks_like}") as error:
        PretrainedFeatureExtractor(backbone).fit(X)
    message = str(error.value)
    assert f"backbone={backbone!r} reads" in message and suggested in message


def test_ambiguous_input_gets_no_guess():
    from sktransfer import FineTuneClassifier
    from sktransfer._inputs._guess import guess_modality, modality_hint
    from sktransfer.exceptions import ImageInputError

    # Flattened 28 x 28 images or short clips: the image error alone.
    with pytest.raises(ImageInputError) as error:
        FineTuneClassifier("fmnist_resnet").fit(np.zeros((4, 784)), [0, 1, 0, 1])
    assert "looks like" not in str(error.value)
    assert guess_modality(["a.png", "b.png"]) == "image"
    assert guess_modality([1, 2, 3]) is None and guess_modality([]) is None
    # Three dimensions may be spectrograms for an audio backbone.
    assert modality_hint(np.zeros((2, 40, 100)), "keyword_cnn", "audio") == ""
    assert modality_hint(["a cat"], "all-minilm-l6-v2", "text") == ""
