"""Few-shot text classification with sktransfer against TF-IDF and SetFit.

Hypotheses, on real labelled text available offline (the VADER ground-truth
snippets, see ``_text_data.py``), 8, 16 and 50 labelled texts per class, 3 seeds:

1. frozen ``all-minilm-l6-v2`` embeddings + LogisticRegression beat TF-IDF +
   LogisticRegression by >= 15 accuracy points at ~10 labels per class;
2. ``FineTuneClassifier`` at ~50 labels per class is at least as accurate as
   frozen embeddings + LR;
3. the best sktransfer row reaches SetFit (contrastive fine-tuning of the same
   MiniLM, the few-shot anchor) at 8-16 labels per class.

Two tasks: ``genre`` (4 classes: movie review, product review, news editorial or
tweet) and ``sentiment`` (positive or negative movie-review sentences). Test sets
are fixed and balanced (150 texts per class), drawn apart from the training pool.

Rows: TF-IDF (1-2 grams, sublinear tf) + LogisticRegressionCV (its C chosen by
3-fold CV, its best shot); frozen embeddings + LogisticRegression (defaults);
FineTuneClassifier with ``freeze="all"`` (the exact logistic probe on the
embeddings) and with ``freeze`` in a grid, the default ``freeze=0`` among them
(the layers above are trained for the default ``max_epochs="auto"`` budget, the
new head at ``lr=3e-3`` and the encoder at its recommended ``5e-5``); SetFit
1.x with ``num_iterations=20`` (as in the SetFit paper), one epoch, batch 16
and its logistic-regression head. All use ``max_length=64`` tokens (the
snippets are single sentences).

To save time the test texts' outputs of the *frozen* stages are computed once per
freeze depth (they are the same pretrained stages in every fit) and each
classifier runs only its trained stages on them; a check at the first fit asserts
that this equals ``predict``.

Run: ``./dev bench text_few_shot`` (one command; both tasks, 8 and 50 labels
per class, 3 seeds, ``freeze`` in {"all", 6, 0}, SetFit at 8 per class; add
``--ks 8 16 50 --setfit-ks 8 16`` for the full grid). SetFit dominates the time
(80-160 contrastive steps per fit); ``--tasks``, ``--seeds`` and ``--no-setfit``
shorten a run. ``pip install "sktransfer[bench]"`` for SetFit, else its rows are
skipped. Writes ``results/<--name>.json`` and ``.md`` (``text_few_shot``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
from _common import (
    RESULTS_DIR,
    chosen_freeze,
    few_shot_table,
    freeze_value,
    write_results,
)
from _text_data import SOURCE, few_shot_split, load_genres, load_movie_snippets
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.pipeline import make_pipeline

from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor
from sktransfer._cache import frozen_outputs
from sktransfer._inputs import as_text_source

NAME = "all-minilm-l6-v2"
MAX_LENGTH = 64
DEFAULT_FREEZE = FineTuneClassifier().freeze
TEST_PER_CLASS = 150
TASKS = {"genre": load_genres, "sentiment": load_movie_snippets}


def split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A fixed balanced test set and the pool training texts are drawn from."""
    rng = np.random.default_rng(12345)
    test = np.concatenate(
        [
            rng.choice(np.flatnonzero(labels == c), TEST_PER_CLASS, replace=False)
            for c in np.unique(labels)
        ]
    )
    return test, np.setdiff1d(np.arange(len(labels)), test)


class FrozenTest:
    """Test-set outputs of the frozen stages, one computation per depth."""

    def __init__(self, texts: list[str]):
        self.source = as_text_source(texts)
        self.by_depth: dict[int, object] = {}
        self.checked = False

    def predict(self, clf: FineTuneClassifier, texts: list[str]) -> np.ndarray:
        depth = clf.n_frozen_
        if depth == 0:
            return clf.predict(texts)
        module = clf.module_.eval()
        if depth not in self.by_depth:
            self.by_depth[depth] = frozen_outputs(module, self.source, depth).values
        values = self.by_depth[depth]
        logits = []
        with torch.inference_mode():
            for start in range(0, len(self.source), 128):
                rows = slice(start, start + 128)
                if isinstance(values, dict):
                    batch = {key: value[rows] for key, value in values.items()}
                else:
                    batch = values[rows]
                logits.append(module.head(module.embed(batch, start=depth)))
        predicted = clf.classes_[torch.cat(logits).argmax(1).numpy()]
        if not self.checked:  # the shortcut must equal the estimator's own path
            np.testing.assert_array_equal(predicted[:40], clf.predict(texts[:40]))
            self.checked = True
        return predicted


def setfit_accuracy(train_x, train_y, test_x, test_y, seed, folder) -> float:
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    model = SetFitModel.from_pretrained(folder, local_files_only=True)
    model.model_body.max_seq_length = MAX_LENGTH
    with tempfile.TemporaryDirectory() as scratch:
        args = TrainingArguments(
            output_dir=scratch,
            batch_size=16,
            num_epochs=1,
            num_iterations=20,
            seed=seed,
            report_to="none",
            save_strategy="no",
            show_progress_bar=False,
        )
        data = Dataset.from_dict({"text": list(train_x), "label": list(train_y)})
        trainer = Trainer(model=model, args=args, train_dataset=data)
        trainer.train()
    predicted = np.asarray(model.predict(list(test_x)))
    return float((predicted == test_y).mean())


def run_task(task: str, args, rows: list[dict]) -> None:
    texts, labels = TASKS[task]()
    texts = np.array(texts, dtype=object)
    test, pool = split(labels)
    test_x, test_y = list(texts[test]), labels[test]
    print(
        f"\n## {task}: {len(np.unique(labels))} classes, test {len(test)}", flush=True
    )
    extractor = PretrainedFeatureExtractor(
        NAME, device="cpu", max_length=MAX_LENGTH
    ).fit(test_x[:2])
    test_embeddings = extractor.transform(test_x)
    frozen_test = FrozenTest(test_x)
    folder = extractor.preprocessing_.folder

    def record(method: str, k: int, seed: int, accuracy: float, seconds: float, **more):
        rows.append(
            {
                "task": task,
                "method": method,
                "per_class": k,
                "seed": seed,
                "accuracy": round(float(accuracy), 4),
                "fit_seconds": round(seconds, 2),
                **more,
            }
        )
        print(f"{task:9s} k={k:3d} seed={seed} {method:38s} {accuracy:.3f}", flush=True)

    for k in args.ks:
        for seed in args.seeds:
            train = few_shot_split(labels, k, seed, pool)
            train_x, train_y = list(texts[train]), labels[train]
            start = time.perf_counter()
            tfidf = make_pipeline(
                TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                LogisticRegressionCV(Cs=7, cv=3, max_iter=2000),
            ).fit(train_x, train_y)
            record(
                "TF-IDF + LR",
                k,
                seed,
                tfidf.score(test_x, test_y),
                time.perf_counter() - start,
            )
            start = time.perf_counter()
            probe = LogisticRegression(max_iter=2000).fit(
                extractor.transform(train_x), train_y
            )
            accuracy = probe.score(test_embeddings, test_y)
            record("embeddings + LR", k, seed, accuracy, time.perf_counter() - start)
            for freeze in dict.fromkeys(["all", *args.freeze]):
                start = time.perf_counter()
                clf = FineTuneClassifier(
                    NAME,
                    freeze=freeze,
                    max_length=MAX_LENGTH,
                    device="cpu",
                    random_state=seed,
                ).fit(train_x, train_y)
                seconds = time.perf_counter() - start
                accuracy = (frozen_test.predict(clf, test_x) == test_y).mean()
                label = f"FineTune freeze={freeze!r}"
                if freeze == DEFAULT_FREEZE:
                    label = f"FineTune defaults (freeze={freeze!r})"
                record(label, k, seed, accuracy, seconds, **chosen_freeze(clf))
            if args.setfit and k in args.setfit_ks:
                start = time.perf_counter()
                accuracy = setfit_accuracy(
                    train_x, train_y, test_x, test_y, seed, folder
                )
                record(
                    "SetFit (same MiniLM)",
                    k,
                    seed,
                    accuracy,
                    time.perf_counter() - start,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--ks", type=int, nargs="*", default=[8, 50])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument(
        "--freeze", type=freeze_value, nargs="*", default=[6, 0, DEFAULT_FREEZE]
    )
    parser.add_argument("--setfit-ks", type=int, nargs="*", default=[8])
    parser.add_argument("--no-setfit", dest="setfit", action="store_false")
    parser.add_argument("--name", default="text_few_shot", help="results file name")
    args = parser.parse_args()
    if args.setfit:
        try:
            import setfit  # noqa: F401
        except ImportError:
            print('SetFit is not installed (pip install "sktransfer[bench]"): skipped')
            args.setfit = False
    warnings.filterwarnings("ignore", category=FutureWarning)
    started = time.perf_counter()
    rows: list[dict] = []
    for task in args.tasks:
        run_task(task, args, rows)
    markdown = few_shot_table(rows)
    print("\n" + markdown)
    wall = round(time.perf_counter() - started, 1)
    write_results(
        args.name,
        {
            "data": SOURCE,
            "torch_threads": torch.get_num_threads(),
            "max_length": MAX_LENGTH,
            "wall_seconds": wall,
            "rows": rows,
        },
    )
    header = (
        f"Few-shot text classification ({SOURCE}). Generated by "
        f"`./dev bench text_few_shot {' '.join(sys.argv[1:])}` in {wall:.0f} s "
        f"with {torch.get_num_threads()} torch threads.\n\n"
    )
    (RESULTS_DIR / f"{args.name}.md").write_text(header + markdown)


if __name__ == "__main__":
    main()
