"""Scaling out: estimators travel between processes, and searches run on dask.

What a distributed grid search needs from an estimator: it pickles small and
unfitted (no weights loaded in ``__init__``), it is fitted in another process
(``device="auto"`` resolved there, with the threads that process was given), and
the fitted model comes back, to a machine without a GPU too. The last test runs
a real ``GridSearchCV`` on a two-worker ``dask.distributed.LocalCluster``.
"""

from __future__ import annotations

import concurrent.futures
import functools
import importlib.resources
import multiprocessing
import os
import pickle
import shutil
import subprocess
import sys

import joblib
import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from skorch.exceptions import DeviceWarning
from threadpoolctl import threadpool_limits

from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor

try:
    import cloudpickle
except ImportError:  # dask brings cloudpickle; joblib always ships a copy
    from joblib.externals import cloudpickle

_SHIPPED_WEIGHTS = importlib.resources.files("sktransfer").joinpath(
    "_data", "fmnist_resnet.safetensors"
)


@pytest.fixture(scope="module")
def make_classifier(make_classifier):
    """The shared factory with this file's defaults: ``freeze=4``, one epoch, and
    ``device="auto"``, resolved by the process that fits."""
    return functools.partial(make_classifier, freeze=4, max_epochs=1, device="auto")


def _outputs(estimator, X):
    if isinstance(estimator, FineTuneClassifier):
        return estimator.predict_proba(X)
    return estimator.transform(X)


def _fit(estimator, X, y):
    if isinstance(estimator, FineTuneClassifier):
        return estimator.fit(X, y)
    return estimator.fit(X)


# ----------------------------------------------- run in the other process
def _fit_there(blob: bytes, X, y) -> bytes:
    """Fit a cloudpickled estimator here; send it back with what it predicts."""
    estimator = _fit(cloudpickle.loads(blob), X, y)
    return cloudpickle.dumps((estimator, _outputs(estimator, X), os.getpid()))


def _predict_there(blob: bytes, X):
    return _outputs(cloudpickle.loads(blob), X), os.getpid()


_AS_CUDA = {"on": False, "registered": False}


def _cuda_tag(storage):
    # Name CPU storages "cuda:0", exactly as torch names the storages of a GPU.
    return "cuda:0" if _AS_CUDA["on"] and storage.device.type == "cpu" else None


def _pickle_as_if_fitted_on_a_gpu(blob: bytes) -> tuple[bytes, bytes]:
    """The pickle a GPU worker would send back: device_ and every tensor on CUDA.

    Also returns a pickled bare tensor, to show that such bytes do not load on a
    machine without CUDA unless they are mapped.
    """
    if not _AS_CUDA["registered"]:
        # Asked before the CPU's own tagger; says nothing unless switched on.
        torch.serialization.register_package(0, _cuda_tag, lambda *args: None)
        _AS_CUDA["registered"] = True
    estimator = cloudpickle.loads(blob)
    cuda = torch.device("cuda")
    if isinstance(estimator, FineTuneClassifier):
        estimator.device_ = estimator.module_.device = cuda
    else:  # the extractor's device_ is its runtime's
        estimator.runtime_.device = cuda
    _AS_CUDA["on"] = True
    try:
        return pickle.dumps(estimator), pickle.dumps(torch.ones(3))
    finally:
        _AS_CUDA["on"] = False


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def other_process():
    """A fresh interpreter (spawned, not forked) that shares nothing with us."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        yield pool


@pytest.fixture(scope="module")
def tiny_digits():
    """60 digits, 6 per class, as (n, 8, 8) floats in [0, 1]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    index = np.concatenate([np.flatnonzero(bunch.target == c)[:6] for c in range(10)])
    return (bunch.images[index] / 16.0).astype(np.float32), bunch.target[index]


# ---------------------------------------------------------------- pickling
@pytest.mark.slow
@pytest.mark.parametrize("cls", [FineTuneClassifier, PretrainedFeatureExtractor])
def test_unfitted_estimators_pickle_small_and_load_weights_only_in_fit(
    cls, tmp_path, tiny_digits, other_process
):
    X, y = tiny_digits
    weights = tmp_path / "not_yet_there.safetensors"
    estimator = cls("fmnist_resnet", weights=str(weights), device="auto")
    blob = cloudpickle.dumps(estimator)
    # The weights (1.2 MB) are nowhere in the task; ImageNet ones are not fetched.
    assert len(blob) < 4096
    assert len(cloudpickle.dumps(cls("resnet18"))) < 4096
    assert cloudpickle.loads(blob).get_params()["device"] == "auto"
    # The file appears only now; the worker reads it when it fits.
    shutil.copyfile(_SHIPPED_WEIGHTS, weights)
    fitted, _, pid = cloudpickle.loads(
        other_process.submit(_fit_there, blob, X[:20], y[:20]).result()
    )
    assert pid != os.getpid()
    # "auto" was resolved on the worker, at fit time.
    assert fitted.device_.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert fitted.get_params()["device"] == "auto"


@pytest.mark.slow
@pytest.mark.parametrize("cls", [FineTuneClassifier, PretrainedFeatureExtractor])
def test_fitted_estimators_make_the_same_predictions_in_another_process(
    cls, tiny_digits, other_process, make_classifier
):
    X, y = tiny_digits
    estimator = make_classifier() if cls is FineTuneClassifier else cls("fmnist_resnet")
    # Fitted over there, used here.
    result = other_process.submit(_fit_there, cloudpickle.dumps(estimator), X, y)
    fitted, there, pid = cloudpickle.loads(result.result())
    assert pid != os.getpid() and not hasattr(estimator, "device_")
    np.testing.assert_allclose(_outputs(fitted, X), there, rtol=1e-5, atol=1e-6)
    # Fitted here, used over there.
    here = _outputs(fitted, X)
    there, pid = other_process.submit(
        _predict_there, cloudpickle.dumps(fitted), X
    ).result()
    assert pid != os.getpid()
    np.testing.assert_allclose(there, here, rtol=1e-5, atol=1e-6)
    if cls is FineTuneClassifier:
        np.testing.assert_array_equal(there.argmax(1), here.argmax(1))


@pytest.mark.parametrize("cls", [FineTuneClassifier, PretrainedFeatureExtractor])
def test_a_model_fitted_on_a_gpu_worker_unpickles_on_a_cpu_only_client(
    cls, tiny_digits, other_process, make_classifier
):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the test simulates a CPU-only client")
    X, y = tiny_digits
    estimator = make_classifier() if cls is FineTuneClassifier else cls("fmnist_resnet")
    estimator = _fit(estimator, X, y)
    expected = _outputs(estimator, X)
    payload, bare_tensor = other_process.submit(
        _pickle_as_if_fitted_on_a_gpu, cloudpickle.dumps(estimator)
    ).result()
    # The simulation is faithful: a tensor pickled that way needs CUDA to load.
    with pytest.raises(RuntimeError, match="CUDA"):
        pickle.loads(bare_tensor)
    with pytest.warns(DeviceWarning):
        loaded = pickle.loads(payload)
    assert loaded.device_ == torch.device("cpu")
    assert loaded.get_params()["device"] == "auto"
    np.testing.assert_array_equal(_outputs(loaded, X), expected)


def test_fitted_classifier_pickles_its_weights_once(tiny_digits, make_classifier):
    # skorch's LRScheduler kept the optimiser, hence every weight, a second time.
    X, y = tiny_digits
    fitted = make_classifier(freeze=0).fit(X, y)
    n_bytes = sum(p.numel() * p.element_size() for p in fitted.module_.parameters())
    # Weights once, AdamW's two moments once each, and a little more.
    assert len(pickle.dumps(fitted)) < 3.3 * n_bytes


def _write_pngs(folder, images) -> list[str]:
    paths = []
    for i, image in enumerate(images):
        path = folder / f"{i:03d}.png"
        pixels = np.kron(image, np.ones((4, 4)))  # 32x32, like a small photo
        Image.fromarray((pixels * 255).astype(np.uint8)).save(path)
        paths.append(str(path))
    return paths


def test_paths_travel_and_workers_read_the_images(
    tmp_path, tiny_digits, other_process, make_classifier, make_extractor
):
    X, y = tiny_digits
    paths = _write_pngs(tmp_path, X)
    estimator = make_classifier(max_epochs=1)
    task = cloudpickle.dumps((estimator, paths))
    assert len(task) < 12_000 < np.kron(X, np.ones((4, 4))).astype("float32").nbytes
    fitted, there, _ = cloudpickle.loads(
        other_process.submit(
            _fit_there, cloudpickle.dumps(estimator), paths, y
        ).result()
    )
    np.testing.assert_allclose(fitted.predict_proba(paths), there, atol=1e-6)
    # A fitted estimator holds no pixels: its size does not grow with the data.
    smaller = make_classifier(max_epochs=1).fit(paths[::2], y[::2])  # all 10 classes
    assert abs(len(pickle.dumps(fitted)) - len(pickle.dumps(smaller))) < 2048
    extractor = make_extractor()
    assert (
        len(pickle.dumps(extractor.fit(paths))) < 1.5 * _SHIPPED_WEIGHTS.stat().st_size
    )


# ------------------------------------------------------------------ threads
def _start_import(omp_num_threads: str | None) -> subprocess.Popen:
    """A fresh interpreter printing torch's thread count before and after import."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if omp_num_threads is not None:
        env["OMP_NUM_THREADS"] = omp_num_threads
    code = (
        "import torch; before = torch.get_num_threads(); import sktransfer; "
        "print(before, torch.get_num_threads())"
    )
    command = [sys.executable, "-c", code]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)


def _thread_counts(process: subprocess.Popen) -> list[int]:
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0
    return [int(n) for n in out.split()]


@pytest.mark.slow
def test_import_leaves_the_thread_count_to_the_process():
    # Both interpreters start at once: each import is single-threaded.
    one, unset = _start_import("1"), _start_import(None)
    # Dask's nanny starts workers with OMP_NUM_THREADS=1; importing keeps it.
    assert _thread_counts(one) == [1, 1]
    before, after = _thread_counts(unset)
    assert after == before


# ------------------------------------------------------------- dask cluster
@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip(
        "distributed",
        reason="dask.distributed is not installed (pip install 'sktransfer[dask]')",
    )
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _pid(estimator, X, y) -> int:
    return os.getpid()


def _threads(estimator, X, y) -> int:
    return torch.get_num_threads()


def _search(n_jobs: int) -> GridSearchCV:
    return GridSearchCV(
        FineTuneClassifier(
            "fmnist_resnet", max_epochs=2, lr=1e-2, device="auto", random_state=0
        ),
        {"freeze": [4, "all"], "head_hidden": [(), (16,)]},
        cv=StratifiedKFold(2),
        scoring={"acc": "accuracy", "pid": _pid, "threads": _threads},
        refit="acc",
        error_score="raise",
        n_jobs=n_jobs,
    )


def _fit_on_dask(X, y, timeout: float) -> GridSearchCV:
    """The documented recipe, in a thread: a task the scheduler cannot unpickle
    makes joblib's dask backend wait forever, and a test must fail instead."""

    def run():
        with joblib.parallel_config(backend="dask", scatter=[X, y]):
            return _search(n_jobs=-1).fit(X, y)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            return pool.submit(run).result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            pytest.fail(f"the grid search on dask did not finish in {timeout} s")


@pytest.mark.slow
def test_grid_search_on_a_dask_cluster_matches_the_sequential_search(
    dask_client, tiny_digits
):
    X, y = tiny_digits
    on_dask = _fit_on_dask(X, y, timeout=300)
    results = on_dask.cv_results_
    pids = {int(results[f"split{k}_test_pid"][i]) for k in (0, 1) for i in range(4)}
    workers = set(dask_client.run(os.getpid).values())
    assert os.getpid() not in pids and pids <= workers
    # Each worker used the one thread dask gave it.
    assert set(results["mean_test_threads"]) == {1.0}
    # One torch and one BLAS thread, as on the workers: the same arithmetic.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            sequential = _search(n_jobs=1).fit(X, y)
    finally:
        torch.set_num_threads(previous)
    assert on_dask.best_params_ == sequential.best_params_
    assert on_dask.best_score_ == sequential.best_score_
    np.testing.assert_array_equal(
        results["mean_test_acc"], sequential.cv_results_["mean_test_acc"]
    )
