"""
Grid search on a dask cluster
=============================

scikit-learn's own ``GridSearchCV``, unchanged, with every (candidate, fold) fit
sent to a ``dask.distributed`` worker through joblib's ``"dask"`` backend. Nothing
in the search is rewritten: the estimator is pickled (small, no weights: they load
in ``fit``, on the worker), ``device="auto"`` is resolved on each worker, and the
training arrays are scattered to the workers once instead of once per task.

To run anywhere, this script starts its own ``LocalCluster`` (2 worker processes,
1 thread each). On a real cluster, start ``dask scheduler`` and ``dask worker
tcp://<scheduler>:8786`` processes and connect with ``Client("tcp://<scheduler>:8786")``
instead; nothing else changes. With Ray, ``ray.util.joblib.register_ray()`` and
``backend="ray"`` run the same code.

Target task: scikit-learn's 8x8 digits, 50 labels per class, tested on the other
1,297 digits. Backbone: the ``fmnist_resnet`` shipped with sktransfer. Needs
the ``dask`` extra (``pip install ".[dask]"``); 1-2 minutes on 2 CPU cores. Run it with
``./dev python examples/dask_grid_search.py``.
"""

# %%
import time

import joblib
import pandas as pd
from dask.distributed import Client, LocalCluster
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split

from sktransfer import FineTuneClassifier


def main() -> None:
    # %%
    # Worker processes are spawned, so this runs under ``if __name__ == "__main__"``.
    # No dashboard: this example needs none, and its port may be taken.
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = Client(cluster)
    try:
        search(client)
    finally:
        shut_down(client, cluster)


def shut_down(client, cluster) -> None:
    """Close the client, then each worker with time to exit, then the cluster.

    A worker process that imported torch takes a few seconds to exit on a busy
    machine, longer than the 4 s a plain ``cluster.close()`` waits before killing
    it (with a warning); closing the workers first with a longer timeout lets them
    exit on their own.
    """
    client.close()
    for nanny in list(cluster.workers.values()):
        cluster.sync(nanny.close, timeout=60)
    cluster.close()


def search(client) -> None:
    digits = load_digits()
    X, y = digits.images / 16.0, digits.target
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, train_size=500, stratify=y, random_state=0
    )
    n_workers = len(client.scheduler_info()["workers"])
    print(f"dask scheduler at {client.scheduler.address}, {n_workers} workers")
    print('On a real cluster: client = Client("tcp://<scheduler host>:8786")\n')

    # %%
    # ``freeze`` x ``head_hidden``: 4 candidates x 3 folds = 12 fits, then one refit
    # on all training labels (in this process).
    clf = FineTuneClassifier(
        "fmnist_resnet", max_epochs=4, lr=3e-3, device="auto", random_state=0
    )
    grid = GridSearchCV(
        clf,
        {"freeze": [3, "all"], "head_hidden": [(), (32,)]},
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
        n_jobs=-1,
    )
    start = time.perf_counter()
    with joblib.parallel_config(backend="dask", scatter=[X_train, y_train]):
        grid.fit(X_train, y_train)
    elapsed = time.perf_counter() - start

    # %%
    results = pd.DataFrame(grid.cv_results_)
    columns = ["param_freeze", "param_head_hidden", "mean_test_score"]
    columns += ["std_test_score", "mean_fit_time", "rank_test_score"]
    table = results[columns].sort_values("rank_test_score")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"\nbest: {grid.best_params_}, cv accuracy {grid.best_score_:.3f}")
    accuracy = grid.score(X_test, y_test)
    print(f"held-out accuracy of the refitted best model: {accuracy:.3f}")
    print(
        f"wall time on the cluster: {elapsed:.0f} s for {len(results) * 3} fits "
        f"+ refit (sum of fit times: {results['mean_fit_time'].sum() * 3:.0f} s)"
    )


if __name__ == "__main__":
    main()
