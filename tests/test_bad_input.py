"""Bad input gets a clear error: the argument, what was wrong, and the fix.

Every case is checked for its exception type and for a message that names the
offending argument and says what to do. Nothing the user passed is modified.
"""

from __future__ import annotations

import copy
import functools
import re

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.exceptions import NotFittedError

from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor
from sktransfer.exceptions import ImageInputError, SkTransferError, WeightsError


@pytest.fixture(scope="module")
def make_classifier(make_classifier):
    """The shared factory with this file's defaults: one epoch, not seeded."""
    return functools.partial(make_classifier, max_epochs=1, random_state=None)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    good = folder / "good.png"
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(good)
    text = folder / "notes.png"
    text.write_text("not an image")
    truncated = folder / "truncated.png"
    data = good.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    other = folder / "resnet18.pth"
    torch.save(torch.nn.Linear(3, 2).state_dict(), other)
    return {
        "good": str(good),
        "text": str(text),
        "truncated": str(truncated),
        "missing": str(folder / "missing.png"),
        "other_weights": str(other),
    }


def _cases(X, y, files, ext, clf):
    """(name, call, exception type, message pattern); ``ext``/``clf`` make the
    estimators."""
    nan, inf = X.copy(), X.copy()
    nan[1, 2, 3], inf[2, 0, 0] = np.nan, np.inf
    flat = X.reshape(len(X), -1)
    good = files["good"]
    return [
        (
            "1-D X",
            lambda: ext().fit(X[0, 0]),
            ImageInputError,
            r"X has 1 dim.*Reshape your data to \(n_samples, height",
        ),
        (
            "5-D X",
            lambda: ext().fit(X[:, None, None]),
            ImageInputError,
            r"X has 5 dim.*Reshape your data to \(n_samples",
        ),
        (
            "2 channels",
            lambda: ext().fit(np.zeros((3, 8, 8, 2))),
            ImageInputError,
            r"X holds images.*1, 3 or 4 channels",
        ),
        (
            "empty X",
            lambda: ext().fit(X[:0]),
            ImageInputError,
            r"X contains 0 samples; pass at least one",
        ),
        (
            "empty list",
            lambda: ext().fit([]),
            ImageInputError,
            r"X .*0 samples|X is empty",
        ),
        (
            "NaN pixels",
            lambda: ext().fit(nan),
            ImageInputError,
            r"X contains NaN.*sample 1.*nan_to_num",
        ),
        (
            "inf pixels",
            lambda: ext().fit(inf),
            ImageInputError,
            r"X contains NaN or infinite.*Replace",
        ),
        (
            "mixed types",
            lambda: ext().fit([good, 3]),
            ImageInputError,
            r"X is a sequence holding int, str.*Pass only",
        ),
        (
            "missing file",
            lambda: ext().fit([good, files["missing"]]),
            ImageInputError,
            r"files in X do not exist.*missing.png.*Fix or drop",
        ),
        (
            "not an image",
            lambda: ext().fit([good]).transform([files["text"]]),
            ImageInputError,
            r"X\[0\] = .*notes.png.*could not be decoded.*Remove or repair",
        ),
        (
            "truncated image",
            lambda: ext().fit([good]).transform([files["truncated"]]),
            ImageInputError,
            r"truncated.png.*truncated.*Remove or repair",
        ),
        (
            "complex dtype",
            lambda: ext().fit(X.astype(np.complex64)),
            ImageInputError,
            r"X has dtype complex64.*Pass uint8",
        ),
        (
            "ragged arrays",
            lambda: ext().fit([X[0], np.zeros((5, 5))]),
            ImageInputError,
            r"X is a list of arrays with 2 different shapes.*Resize",
        ),
        (
            "flat without shape",
            lambda: ext().fit(flat),
            ImageInputError,
            r"X is 2-D.*pass image_shape",
        ),
        (
            "other width at transform",
            lambda: ext(image_shape=(8, 8)).fit(flat).transform(flat[:, :63]),
            ValueError,
            r"X has 63 features, but PretrainedFeatureExtractor is expecting 64",
        ),
        (
            "image_shape not fitting",
            lambda: ext(image_shape=(8, 8)).fit(flat[:, :63]),
            ImageInputError,
            r"image_shape=\(8, 8\) does not fit the 63 values per row of X",
        ),
        (
            "single path string",
            lambda: ext().fit(good),
            ImageInputError,
            r"X is a single path.*pass a list",
        ),
        (
            "dict",
            lambda: ext().fit({"a": 1}),
            ImageInputError,
            r"X of type dict is not supported. Pass",
        ),
        (
            "unknown backbone",
            lambda: ext(backbone="resnet81").fit(X),
            ValueError,
            r"Unknown backbone 'resnet81'. Did you mean 'resnet18'",
        ),
        (
            "unknown weights",
            lambda: clf(weights="IMAGENET").fit(X, y),
            WeightsError,
            r"Unknown weights 'IMAGENET'.*'weights' parameter takes.*'FMNIST'",
        ),
        (
            "missing weights file",
            lambda: ext(weights="/no/such/file.pth").fit(X),
            WeightsError,
            r"weights file '/no/such/file.pth' does not exist",
        ),
        (
            "weights of another architecture",
            lambda: ext(weights=files["other_weights"]).fit(X),
            WeightsError,
            r"do not fit.*missing keys.*same backbone",
        ),
        (
            "freeze out of range",
            lambda: clf(freeze=9).fit(X, y),
            ValueError,
            r"freeze=9 is out of range.*\[0, 6\] or 'all'",
        ),
        (
            "negative freeze",
            lambda: clf(freeze=-1).fit(X, y),
            ValueError,
            r"'freeze' parameter.*range \[0, inf\).*Got -1",
        ),
        (
            "unknown layer",
            lambda: ext(layer="layer7").fit(X),
            ValueError,
            r"layer='layer7' is not a stage.*'layer4'",
        ),
        (
            "layer index",
            lambda: ext(layer=10).fit(X),
            ValueError,
            r"layer=10 is out of range.*\[-6, 5\]",
        ),
        (
            "zero batch size",
            lambda: ext(batch_size=0).fit(X),
            ValueError,
            r"'batch_size' parameter.*\[1, inf\).*Got 0",
        ),
        (
            "negative batch size",
            lambda: clf(batch_size=-4).fit(X, y),
            ValueError,
            r"'batch_size' parameter.*Got -4",
        ),
        (
            "bad pooling",
            lambda: ext(pooling="median").fit(X),
            ValueError,
            r"'pooling' parameter.*'avg'.*Got 'median'",
        ),
        (
            "bad device",
            lambda: ext(device="tpu").fit(X),
            ValueError,
            r"'device' parameter must be 'auto', 'cpu', 'cuda'",
        ),
        (
            "X/y length mismatch",
            lambda: clf().fit(X, y[:-1]),
            ValueError,
            r"X and y have different lengths: 40 rows but 39 labels",
        ),
        (
            "single class",
            lambda: clf().fit(X, np.zeros(len(X), int)),
            ValueError,
            r"y has a single class \(0\).*at least 2 classes",
        ),
        (
            "continuous y",
            lambda: clf().fit(X, y + 0.5),
            ValueError,
            r"Unknown label type: continuous",
        ),
        (
            "2-D y",
            lambda: clf().fit(X, np.stack([y, y], 1)),
            ValueError,
            r"2-D y only as a multi-label indicator matrix of 0s and 1s",
        ),
        (
            "unseen labels",
            lambda: clf(freeze="all").fit(X, y).partial_fit(X[:2], np.array([42, 43])),
            ValueError,
            r"labels \[42, 43\] that were not seen.*call fit",
        ),
        (
            "predict before fit",
            lambda: clf().predict(X),
            NotFittedError,
            r"not fitted yet. Call 'fit'",
        ),
        (
            "predict_proba before fit",
            lambda: clf().predict_proba(X),
            NotFittedError,
            r"not fitted yet. Call 'fit'",
        ),
        (
            "transform before fit",
            lambda: ext().transform(X),
            NotFittedError,
            r"not fitted yet. Call 'fit'",
        ),
        (
            "dropout >= 1",
            lambda: clf(head_dropout=1.5).fit(X, y),
            ValueError,
            r"'head_dropout' parameter.*\[0.0, 1.0\).*Got 1.5",
        ),
        (
            "validation_fraction",
            lambda: clf(validation_fraction=1.0).fit(X, y),
            ValueError,
            r"'validation_fraction' parameter.*Got 1.0",
        ),
        (
            "bad backbone type",
            lambda: ext(backbone=3.5).fit(X),
            TypeError,
            r"'backbone' parameter must be a registered name",
        ),
    ]


@pytest.fixture(scope="module")
def small(digits):
    X, y = digits
    return X[:40].copy(), y[:40].copy()


def _case_ids():
    return [
        case[0]
        for case in _cases(
            np.zeros((40, 8, 8)),
            np.arange(40) % 10,
            {
                "good": "",
                "text": "",
                "truncated": "",
                "missing": "",
                "other_weights": "",
            },
            ext=None,
            clf=None,
        )
    ]


@pytest.fixture
def cases(small, files, make_extractor, make_classifier):
    return _cases(*small, files, make_extractor, make_classifier)


@pytest.mark.parametrize("index", range(len(_case_ids())), ids=_case_ids())
def test_bad_input_gets_a_clear_error(cases, index):
    name, call, error, match = cases[index]
    with pytest.raises(error, match=match):
        call()


# What a bad-input message can name: the data, or a parameter the estimators check.
_ARGUMENTS = (
    {"X", "y"}
    | set(FineTuneClassifier._parameter_constraints)
    | set(PretrainedFeatureExtractor._parameter_constraints)
)
# Messages scikit-learn writes and sktransfer passes on unchanged, naming no argument.
_NAMES_NO_ARGUMENT = {"continuous y"}  # type_of_target: "Unknown label type: ..."


def test_bad_input_errors_are_catchable_and_name_the_argument(cases):
    # Callers catch bad input with `except ValueError` / `except TypeError`, as in
    # scikit-learn. So every error of the table must be one, raised on purpose:
    # one of sktransfer.exceptions, or a built-in or scikit-learn error from
    # validation, never one leaking from torch, PIL, numpy or safetensors. And
    # unless it is about fitted state (NotFittedError), it names what to fix.
    argument = re.compile(rf"\b({'|'.join(sorted(_ARGUMENTS))})\b")
    problems = {}
    for name, call, _, _ in cases:
        try:
            call()
        except Exception as exc:
            module = type(exc).__module__
            package = module.partition(".")[0]
            on_purpose = isinstance(exc, SkTransferError) or package in (
                "builtins",
                "sklearn",
            )
            if not isinstance(exc, ValueError | TypeError) or not on_purpose:
                problems[name] = f"raised {module}.{type(exc).__qualname__}"
            elif not (
                isinstance(exc, NotFittedError)
                or name in _NAMES_NO_ARGUMENT
                or argument.search(str(exc))
            ):
                problems[name] = f"names no argument: {exc}"
        else:
            problems[name] = "raised nothing"
    assert not problems
    assert _NAMES_NO_ARGUMENT <= {case[0] for case in cases}


def test_cuda_without_a_gpu_is_explained(small, make_extractor):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match=r"device='cuda'.*no CUDA GPU.*device='cpu'"):
        make_extractor(device="cuda").fit(small[0])


def test_user_input_is_never_modified(small, files, make_extractor, make_classifier):
    X, y = small
    X_uint8 = (X * 255).astype(np.uint8)
    paths = [files["good"]] * 4
    originals = [copy.deepcopy(v) for v in (X, y, X_uint8, paths)]
    extractor = make_extractor().fit(X)
    extractor.transform(X_uint8)
    extractor.transform(paths)
    clf = make_classifier(freeze=4).fit(X, y)
    clf.predict(X_uint8)
    clf.predict_proba(paths)
    for before, after in zip(originals, (X, y, X_uint8, paths)):
        np.testing.assert_array_equal(np.asarray(before), np.asarray(after))
