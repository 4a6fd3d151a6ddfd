"""PretrainedFeatureExtractor: sklearn integration, layers, pooling, persistence."""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedShuffleSplit,
    cross_val_score,
)
from sklearn.pipeline import make_pipeline
from torch import nn

from sktransfer.exceptions import ImageInputError, WeightsError


def test_transform_returns_float32_embeddings(few_digits, make_extractor):
    X, _ = few_digits
    extractor = make_extractor(layer=None).fit(X)
    Z = extractor.transform(X)
    assert Z.dtype == np.float32 and Z.shape == (100, 128)
    assert extractor.n_features_out_ == 128 and extractor.layer_ == "pool"
    assert np.isfinite(Z).all() and Z.std() > 0


def test_default_layer_concatenates_mid_level_stages_on_a_grid(
    few_digits, make_extractor
):
    X, _ = few_digits
    extractor = make_extractor().fit(X)
    # fmnist_resnet at 28 px: layer2 is 32 x 14 x 14, layer3 64 x 7 x 7, each
    # averaged over a 4 x 4 grid.
    assert extractor.layer_ == ["layer2", "layer3"]
    assert extractor.n_features_out_ == (32 + 64) * 16
    Z = extractor.transform(X)
    one = make_extractor(layer="layer2").fit(X).transform(X)
    np.testing.assert_allclose(Z[:, : 32 * 16], one, rtol=1e-5, atol=1e-6)
    # Only the stages up to layer3 are kept and run.
    assert extractor.backbone_.stage_names[-1] == "layer3"


def test_a_list_of_layers_is_concatenated_in_stage_order(few_digits, make_extractor):
    X, _ = few_digits
    both = make_extractor(layer=["layer3", 1], pooling="avg").fit(X)
    assert both.layer_ == ["layer1", "layer3"] and both.n_features_out_ == 16 + 64


def test_fit_ignores_y_and_returns_self(few_digits, make_extractor):
    X, y = few_digits
    extractor = make_extractor()
    assert extractor.fit(X, y) is extractor


def test_batch_size_does_not_change_embeddings(few_digits, make_extractor):
    X, _ = few_digits
    a = make_extractor(batch_size=7).fit(X).transform(X)
    b = make_extractor(batch_size=100).fit(X).transform(X)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "layer, pooling, width",
    [
        ("layer2", "avg", 32),
        (2, "max", 32),
        ("layer3", "avgmax", 128),
        ("layer4", None, 128 * 4 * 4),
        (-2, "avg", 128),
    ],
)
def test_layer_and_pooling_choose_the_representation(
    few_digits, layer, pooling, width, make_extractor
):
    X, _ = few_digits
    extractor = make_extractor(layer=layer, pooling=pooling).fit(X[:4])
    assert extractor.transform(X[:4]).shape == (4, width)
    assert extractor.n_features_out_ == width


def test_unknown_layer_lists_the_stages(few_digits, make_extractor):
    X, _ = few_digits
    with pytest.raises(ValueError, match=r"layer='layer9'.*\['stem', 'layer1'"):
        make_extractor(layer="layer9").fit(X)
    with pytest.raises(ValueError, match=r"layer=6 is out of range.*\[-6, 5\]"):
        make_extractor(layer=6).fit(X)


def test_intermediate_embeddings_beat_raw_pixels_with_ten_labels_per_class(
    digits, make_extractor
):
    X, y = digits
    cv = StratifiedShuffleSplit(n_splits=5, train_size=100, random_state=0)
    classifier = LogisticRegression(max_iter=3000)
    pixel_score = cross_val_score(classifier, X.reshape(len(X), -1), y, cv=cv).mean()
    # Flattened layer3 maps keep the spatial layout that digits depend on.
    embedded = make_pipeline(make_extractor(layer="layer3", pooling=None), classifier)
    embedded_score = cross_val_score(embedded, X, y, cv=cv).mean()
    assert embedded_score > pixel_score + 0.005, (embedded_score, pixel_score)


def test_grid_search_over_backbone_and_layer(few_digits, make_extractor):
    X, y = few_digits
    tiny = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
    pipe = make_pipeline(make_extractor(), LogisticRegression(max_iter=500))
    step = "pretrainedfeatureextractor__"
    grid = GridSearchCV(
        pipe,
        [
            {f"{step}backbone": ["fmnist_resnet"], f"{step}layer": [None, 1]},
            # A custom module has no named weights: it keeps its own parameters.
            {
                f"{step}backbone": [tiny],
                f"{step}weights": [None],
                f"{step}layer": [None, 1],
            },
        ],
        cv=2,
        error_score="raise",
    )
    grid.fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    assert grid.best_score_ > 0.2


def test_clone_keeps_parameters_and_drops_fitted_state(few_digits, make_extractor):
    X, _ = few_digits
    extractor = make_extractor(layer="layer3", batch_size=16).fit(X[:4])
    copy = clone(extractor)
    assert copy.get_params() == extractor.get_params()
    assert not hasattr(copy, "backbone_")


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_pickled_extractor_gives_identical_embeddings(
    few_digits, tmp_path, dump, make_extractor
):
    X, _ = few_digits
    extractor = make_extractor().fit(X)
    expected = extractor.transform(X)
    if dump == "pickle":
        restored = pickle.loads(pickle.dumps(extractor))
    else:
        joblib.dump(extractor, tmp_path / "ext.joblib")
        restored = joblib.load(tmp_path / "ext.joblib")
    np.testing.assert_array_equal(restored.transform(X), expected)


def test_set_output_pandas_and_feature_names(few_digits, make_extractor):
    pd = pytest.importorskip("pandas")
    X, _ = few_digits
    extractor = make_extractor(layer=None).set_output(transform="pandas").fit(X)
    frame = extractor.transform(X[:3])
    assert isinstance(frame, pd.DataFrame) and frame.shape == (3, 128)
    names = extractor.get_feature_names_out()
    assert names[0] == "pretrainedfeatureextractor0" and len(names) == 128
    assert list(frame.columns) == list(names)


def test_flattened_images_need_image_shape(digits, make_extractor):
    X, _ = digits
    flat = X[:6].reshape(6, 64)
    with pytest.raises(ImageInputError, match="image_shape"):
        make_extractor().fit(flat)
    extractor = make_extractor(image_shape=(8, 8)).fit(flat)
    np.testing.assert_allclose(
        extractor.transform(flat),
        make_extractor().fit(X[:6]).transform(X[:6]),
        atol=1e-6,
    )
    assert extractor.n_features_in_ == 64


def test_repr_is_informative(make_extractor):
    text = repr(make_extractor(layer="layer3"))
    assert "fmnist_resnet" in text and "layer='layer3'" in text


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"batch_size": 0}, ValueError, "'batch_size' parameter"),
        ({"pooling": "median"}, ValueError, "'pooling' parameter"),
        ({"backbone": "resnet1"}, ValueError, "Did you mean"),
        ({"weights": "IMAGENET1K_V9"}, WeightsError, "Unknown weights"),
        ({"device": "tpu"}, ValueError, "'device' parameter"),
    ],
)
def test_bad_parameters_fail_before_any_model_loads(
    few_digits, params, error, match, make_extractor
):
    X, _ = few_digits
    with pytest.raises(error, match=match):
        make_extractor(**params).fit(X)


def test_bad_input_fails_in_fit_and_transform(few_digits, make_extractor):
    X, _ = few_digits
    bad = X.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ImageInputError, match="X"):
        make_extractor().fit(bad)
    extractor = make_extractor().fit(X)
    with pytest.raises(ImageInputError, match="X"):
        extractor.transform(bad[:0])


def test_transform_before_fit_raises_not_fitted(few_digits, make_extractor):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        make_extractor().transform(few_digits[0])


def test_image_files_are_embedded_like_arrays(tmp_path, few_digits, make_extractor):
    from PIL import Image

    X, _ = few_digits
    paths = []
    for i, image in enumerate(X[:5]):
        path = tmp_path / f"{i}.png"
        Image.fromarray((image * 255).round().astype(np.uint8)).save(path)
        paths.append(str(path))
    extractor = make_extractor().fit(paths)
    from_files = extractor.transform(paths)
    from_arrays = extractor.transform((X[:5] * 255).round().astype(np.uint8))
    np.testing.assert_allclose(from_files, from_arrays, rtol=1e-3, atol=1e-3)


def test_cut_backbone_keeps_its_stage_names(few_digits, make_extractor):
    extractor = make_extractor(layer="layer2").fit(few_digits[0][:2])
    assert extractor.backbone_.stage_names == ["stem", "layer1", "layer2"]
