"""Text embedding throughput against the raw ``model(**batch)`` ceiling, and memory.

Hypothesis: ``PretrainedFeatureExtractor("all-minilm-l6-v2").transform`` runs at
>= 0.9x the sentences/s of the bare Hugging Face loop it wraps (tokenise a batch,
``model(**batch)``, mean-pool, normalise), because it adds only validation, a
length sort and a copy of the outputs; and sorting by length makes it faster than
that loop in the data's own order (less padding). Its peak memory grows with the
output array (n x 384 float32), not with the number of texts: batches are
tokenised one at a time.

Texts are the real VADER ground-truth snippets (see ``_text_data.py``), cycled
to the sizes asked. Every timing is the best of ``--repeats`` runs on the CPU
with the same torch thread count. Memory is measured in a fresh process per size
(peak RSS after ``transform`` minus peak RSS after ``fit``).

Run: ``./dev bench text_throughput`` (defaults: 4,000 texts for speed, memory
at 5k, 20k and 100k texts; ``--n``/``--memory-sizes`` shorten it).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from _common import write_results
from _text_data import load_genres

from sktransfer import PretrainedFeatureExtractor

BATCH = 64


def _texts(n: int) -> list[str]:
    texts, _ = load_genres()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(texts))
    return [texts[order[i % len(texts)]] for i in range(n)]


def _raw_loop(model, tokenizer, texts, max_length, sort: bool) -> np.ndarray:
    """The ceiling: what one would write by hand with transformers."""
    order = np.argsort([-len(t) for t in texts], kind="stable") if sort else None
    out = np.empty((len(texts), model.config.hidden_size), np.float32)
    with torch.inference_mode():
        for start in range(0, len(texts), BATCH):
            rows = np.arange(start, min(start + BATCH, len(texts)))
            if order is not None:
                rows = order[rows]
            batch = tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[rows] = F.normalize(pooled, dim=1).numpy()
    return out


def _best(fn, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def speed(n: int, repeats: int, max_length: int) -> dict:
    import transformers

    texts = _texts(n)
    extractor = PretrainedFeatureExtractor(
        "all-minilm-l6-v2", device="cpu", batch_size=BATCH, max_length=max_length
    ).fit(texts[:2])
    folder = extractor.preprocessing_.folder
    model = transformers.AutoModel.from_pretrained(folder, local_files_only=True)
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        folder, local_files_only=True
    )
    model.eval()
    rows = {}
    for name, fn in [
        (
            "raw loop, data order",
            lambda: _raw_loop(model, tokenizer, texts, max_length, False),
        ),
        (
            "raw loop, sorted by length",
            lambda: _raw_loop(model, tokenizer, texts, max_length, True),
        ),
        ("sktransfer transform", lambda: extractor.transform(texts)),
    ]:
        seconds, out = _best(fn, repeats)
        rows[name] = {
            "seconds": round(seconds, 3),
            "sentences_per_s": round(n / seconds, 1),
        }
        rows[name]["output"] = out
        print(f"{name:28s} {n / seconds:8.1f} sentences/s", flush=True)
    reference = rows["raw loop, data order"].pop("output")
    for row in rows.values():
        out = row.pop("output", reference)
        row["max_abs_diff_vs_raw"] = float(np.abs(out - reference).max())
    ceiling = max(
        rows["raw loop, data order"]["sentences_per_s"],
        rows["raw loop, sorted by length"]["sentences_per_s"],
    )
    ratio = rows["sktransfer transform"]["sentences_per_s"] / ceiling
    print(f"transform / best raw loop: {ratio:.2f}x", flush=True)
    return {"n": n, "rows": rows, "ratio_vs_best_raw": round(ratio, 3)}


def _memory_child(n: int, max_length: int) -> None:
    texts = _texts(n)
    extractor = PretrainedFeatureExtractor(
        "all-minilm-l6-v2", device="cpu", batch_size=BATCH, max_length=max_length
    ).fit(texts[:2])
    # Warm up on the longest batch: its activations are the largest any batch
    # needs, so what grows afterwards is what grows with n.
    extractor.transform(sorted(texts, key=len)[-BATCH:])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = extractor.transform(texts)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "n": n,
                "peak_rss_growth_mib": (after - before) / 1024,
                "output_mib": out.nbytes / 2**20,
            }
        )
    )


def memory(sizes: list[int], max_length: int) -> list[dict]:
    rows = []
    for n in sizes:
        command = [
            sys.executable,
            __file__,
            "--memory-child",
            str(n),
            "--max-length",
            str(max_length),
        ]
        line = (
            subprocess.run(command, check=True, capture_output=True, text=True)
            .stdout.strip()
            .splitlines()[-1]
        )
        row = json.loads(line)
        rows.append(
            {
                key: round(value, 1) if isinstance(value, float) else value
                for key, value in row.items()
            }
        )
        print(
            f"n={n:7d}: peak RSS +{row['peak_rss_growth_mib']:.1f} MiB "
            f"(output array {row['output_mib']:.1f} MiB)",
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="texts for the speed test")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument(
        "--memory-sizes", type=int, nargs="*", default=[5000, 20000, 100000]
    )
    parser.add_argument(
        "--memory-only", action="store_true", help="skip the speed test"
    )
    parser.add_argument(
        "--memory-child", type=int, default=None, help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.memory_child is not None:
        _memory_child(args.memory_child, args.max_length)
        return
    started = time.perf_counter()
    result = {
        "torch_threads": torch.get_num_threads(),
        "batch_size": BATCH,
        "max_length": args.max_length,
    }
    if not args.memory_only:
        result["speed"] = speed(args.n, args.repeats, args.max_length)
    result["memory"] = memory(args.memory_sizes, args.max_length)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    name = "text_throughput_memory" if args.memory_only else "text_throughput"
    write_results(name, result)


if __name__ == "__main__":
    main()
