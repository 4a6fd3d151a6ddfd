"""Memory under load: predicting on many image files is bounded by the batch.

Hypothesis: ``PretrainedFeatureExtractor.transform`` and
``FineTuneClassifier.predict`` decode file paths one batch at a time, so their
peak resident memory stays flat from 5,000 to 50,000 inputs (only the small
output array grows: 128 floats or 10 probabilities per image).

Each measurement runs in a fresh subprocess, so its peak RSS is its own. The
images are 28x28 Fashion-MNIST test images (cycled) written once as PNG files.
Run: ``./dev bench memory_under_load`` (``--quick``: 1,000 and 5,000 inputs).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import markdown_table, write_results
from PIL import Image

from sktransfer.datasets import load_fashion_mnist

_CHILD = r"""
import json, resource, sys, time
import numpy as np
from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor
kind, listing, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
paths = open(listing).read().split("\n")[:n]
train = np.load(sys.argv[4])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
if kind == "transform":
    model = PretrainedFeatureExtractor("fmnist_resnet", device="cpu", batch_size=64)
    model.fit(train["X"])
    start = time.perf_counter()
    out = model.transform(paths)
else:
    model = FineTuneClassifier("fmnist_resnet", device="cpu", batch_size=64)
    model.fit(train["X"], train["y"])
    start = time.perf_counter()
    out = model.predict(paths)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rss_before_mib": before, "peak_rss_mib": peak,
                  "seconds": seconds, "output_mib": out.nbytes / 2**20}))
"""


def write_images(folder: Path, n: int) -> Path:
    images, labels = load_fashion_mnist("test")
    paths = []
    for i in range(n):
        path = folder / f"{i:06d}.png"
        Image.fromarray(images[i % len(images)]).save(path)
        paths.append(str(path))
    listing = folder / "paths.txt"
    listing.write_text("\n".join(paths))
    np.savez(folder / "train.npz", X=images[:200], y=labels[:200])
    return listing


def measure(kind: str, listing: Path, n: int) -> dict:
    train = listing.parent / "train.npz"
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, kind, str(listing), str(n), str(train)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sizes = (1000, 5000) if args.quick else (5000, 50000)
    rows = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        listing = write_images(Path(tmp), max(sizes))
        for kind in ("transform", "predict"):
            for n in sizes:
                stats = measure(kind, listing, n)
                rows.append(
                    {
                        "call": f"{kind} on paths",
                        "n_inputs": n,
                        "peak_rss_mib": stats["peak_rss_mib"],
                        "output_mib": stats["output_mib"],
                        "images_per_s": n / stats["seconds"],
                    }
                )
                print(rows[-1], flush=True)
    print(
        markdown_table(
            rows, ["call", "n_inputs", "peak_rss_mib", "output_mib", "images_per_s"]
        )
    )
    path = write_results(
        "memory_under_load",
        {
            "rows": rows,
            "wall_s": time.perf_counter() - start,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
