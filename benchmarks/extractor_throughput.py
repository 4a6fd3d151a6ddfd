"""Throughput of ``PretrainedFeatureExtractor.transform`` against the raw model.

Hypothesis: from images already in memory (numpy uint8), ``transform`` runs at
>= 0.9x the *ceiling*, which is the same backbone called directly as ``model(x)``
(+ pooling) under ``torch.inference_mode()`` on tensors that are already
resized and normalised, at the best batch size out of a small set. Input
checking, uint8 -> float conversion, normalisation and copying the embeddings
out cost a few percent at most. From PNG files on disk the decoding is extra
work that the ceiling does not do; the script measures it alone to show how much
of the gap it explains, and tries ``num_workers=0`` and ``1``. It also tries
``channels_last=True`` for resnet18 on the CPU, and measures peak memory while
20,000 file paths are embedded (it must stay bounded by the batch, not grow with
the number of images).

Cases: resnet18 (``weights=None``, random init: throughput does not depend on
the weights) at 64x64 and 224x224 RGB input, and the shipped ``fmnist_resnet``
(28x28 grayscale, real weights). Images are Fashion-MNIST test images (Debian's
``dataset-fashion-mnist``) or, without it, sklearn's digits upscaled; for
resnet18 they are upscaled and tinted to RGB. Arrays and files are given at the
backbone's input size, so no resizing happens on either side.

Image counts (512 at 64px, 64 at 224px, 5000 at 28px) keep one timing at a few
seconds on 2 CPU cores. The ceiling's batch size is chosen from one run per
size; every other timing is the best of ``--repeat`` runs (default 3), after a
warm-up batch, with the variants of a case timed in interleaved rounds so that
the load of a shared machine affects them alike. Each is reported twice, as
wall-clock images/s relative to the ceiling (what users wait for) and as the
ceiling's CPU seconds over the variant's (all processes, DataLoader workers
included), which is much less sensitive to other programs on the machine.

Run: ``./dev bench extractor_throughput`` (3-6 minutes on 2 CPU cores,
depending on their other load), or with ``--quick`` for a smoke run of under a
minute. Prints markdown tables and writes
``benchmarks/results/extractor_throughput.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# GNU OpenMP's threads spin while they wait for each other; on a shared machine
# whose cores are oversubscribed that makes small networks up to 10x slower and
# the timings erratic. Sleeping waits keep them meaningful. Set the variable
# yourself (e.g. OMP_WAIT_POLICY=ACTIVE) to measure otherwise.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    children_peak_rss_mb,
    current_rss_mb,
    interleaved_timings,
    load_average,
    markdown_table,
    peak_rss_mb,
    reset_peak_rss,
    write_results,
)

from sktransfer import PretrainedFeatureExtractor, as_image_source, resolve_backbone
from sktransfer._inputs import iter_batches
from sktransfer.backbones import pool_features

NAME = "extractor_throughput"
TARGET_RATIO = 0.9


@dataclass
class Case:
    label: str
    backbone: str
    weights: str | None
    image_size: int | None  # passed to the extractor and resolve_backbone
    pixels: int  # side of the stored images
    rgb: bool
    n_images: int
    n_quick: int
    batch_sizes: tuple[int, ...] = (32, 64, 128)
    try_channels_last: bool = False
    try_worker_split: bool = False  # 1 torch thread + 1 decoding worker


CASES = [
    Case("resnet18 64px", "resnet18", None, 64, 64, True, 512, 64,
         try_channels_last=True),
    Case("resnet18 224px", "resnet18", None, 224, 224, True, 64, 8,
         batch_sizes=(16, 32, 64), try_channels_last=True),
    Case("fmnist_resnet 28px", "fmnist_resnet", "DEFAULT", None, 28, False,
         5000, 500, try_worker_split=True),
    # Genuine ImageNet weights, offline (a dependency of sktransfer).
    Case("efficientnet_lite0 64px", "efficientnet_lite0", "IMAGENET1K", 64, 64,
         True, 512, 64),
    Case("efficientnet_lite0 224px", "efficientnet_lite0", "IMAGENET1K", 224, 224,
         True, 64, 8, batch_sizes=(16, 32, 64)),
]  # fmt: skip
RSS_PATHS, RSS_PATHS_QUICK = 20_000, 1_000


# %% Images ------------------------------------------------------------------


def base_images(n: int) -> tuple[np.ndarray, str]:
    """``n`` grayscale 28x28 uint8 images: Fashion-MNIST, else upscaled digits."""
    try:
        from sktransfer.datasets import load_fashion_mnist

        images, _ = load_fashion_mnist("test")
        source = "Fashion-MNIST test images"
    except (ImportError, FileNotFoundError):
        from sklearn.datasets import load_digits

        digits = (load_digits().images * (255 / 16)).astype(np.uint8)
        images = np.stack(
            [
                np.asarray(Image.fromarray(d).resize((28, 28), Image.BILINEAR))
                for d in digits
            ]
        )
        source = "sklearn digits upscaled to 28x28"
    reps = -(-n // len(images))
    return np.tile(images, (reps, 1, 1))[:n], source


def make_images(case: Case, gray: np.ndarray) -> np.ndarray:
    """The case's images: (n, 28, 28) grayscale or (n, px, px, 3) tinted RGB."""
    if not case.rgb and case.pixels == 28:
        return gray
    rng = np.random.default_rng(0)
    tints = rng.uniform(0.4, 1.0, size=(len(gray), 1, 1, 3))
    size = (case.pixels, case.pixels)
    big = np.stack(
        [np.asarray(Image.fromarray(g).resize(size, Image.BILINEAR)) for g in gray]
    )
    return (big[..., None] * tints).astype(np.uint8)


def write_pngs(images: np.ndarray, folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = folder / f"{i:06d}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path))
    return paths


# %% Timed functions ---------------------------------------------------------


def ceiling_fn(net, x: torch.Tensor, batch_size: int):
    """The raw model on pre-made, normalised tensors: nothing else."""

    def run():
        with torch.inference_mode():
            for start in range(0, len(x), batch_size):
                pool_features(net(x[start : start + batch_size]), "avg")

    return run


def extractor(case: Case, batch_size: int, **params) -> PretrainedFeatureExtractor:
    return PretrainedFeatureExtractor(
        case.backbone,
        weights=case.weights,
        image_size=case.image_size,
        batch_size=batch_size,
        device="cpu",
        progress=False,
        **params,
    )


def decode_fn(paths: list[str], batch_size: int, size):
    """Only what transform does to files before the model: decode into batches."""

    def run():
        for _ in iter_batches(as_image_source(paths), batch_size, size=size):
            pass

    return run


def measure_case(case: Case, images: np.ndarray, paths: list[str], args) -> dict:
    n = len(images)
    net = resolve_backbone(case.backbone, case.weights, image_size=case.image_size)
    net.eval().requires_grad_(False)
    prep = net.preprocessing
    # Pre-made input of the ceiling: the same preprocessing, done in advance.
    batch = as_image_source(images).load(slice(0, n))
    x = prep(batch).contiguous()
    del batch
    sizes = [b for b in case.batch_sizes if b <= n] or [min(case.batch_sizes)]
    if args.quick:
        sizes = sizes[-1:]

    # 1) The ceiling's best batch size.
    fns = {b: ceiling_fn(net, x, b) for b in sizes}
    for b in sizes:  # warm-up: one batch each
        ceiling_fn(net, x[:b], b)()
    search = interleaved_timings(fns, repeat=1 if args.quick else args.search_repeat)
    best_bs = min(sizes, key=lambda b: min(wall for wall, _ in search[b]))

    # 2) Everything else at that batch size, in interleaved rounds.
    variants = {"model(x)": ceiling_fn(net, x, best_bs)}
    fitted = {}
    fitted["transform, arrays"] = (extractor(case, best_bs), images)
    if case.try_channels_last:
        net_cl = copy.deepcopy(net).to(memory_format=torch.channels_last)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        variants["model(x), channels_last"] = ceiling_fn(net_cl, x_cl, best_bs)
        ceiling_fn(net_cl, x_cl[:best_bs], best_bs)()  # warm-up
        fitted["transform, arrays, channels_last=True"] = (
            extractor(case, best_bs, channels_last=True),
            images,
        )
    variants["decode PNG only"] = decode_fn(paths, best_bs, prep.loading_size)
    variants["decode PNG only"]()  # warm-up: page cache and PIL
    for workers in (0, 1):
        fitted[f"transform, PNG files, num_workers={workers}"] = (
            extractor(case, best_bs, num_workers=workers),
            paths,
        )
    if case.try_worker_split:
        fitted["transform, PNG files, num_workers=1, n_threads=1"] = (
            extractor(case, best_bs, num_workers=1, n_threads=1),
            paths,
        )
    for label, (ext, data) in fitted.items():
        ext.fit(data[:1])
        ext.transform(data[:best_bs])  # warm-up
        variants[label] = lambda e=ext, d=data: e.transform(d)
    runs = interleaved_timings(variants, repeat=args.repeat)
    runs["model(x)"] += search[best_bs]

    # Best wall time and (separately) least CPU time of every variant.
    rows = [("model(x)", best_bs, runs.pop("model(x)"))]
    rows += [("model(x), 1 run", b, search[b]) for b in sizes if b != best_bs]
    rows += [(label, best_bs, timings) for label, timings in runs.items()]
    ceiling_wall = min(wall for wall, _ in rows[0][2])
    ceiling_cpu = min(cpu for _, cpu in rows[0][2])
    table = []
    for how, batch, timings in rows:
        wall = min(w for w, _ in timings)
        cpu = min(c for _, c in timings)
        table.append(
            {
                "case": case.label,
                "how": how,
                "batch": batch,
                "img_per_s": n / wall,
                "ratio": ceiling_wall / wall,
                "cpu_s": cpu,
                "cpu_ratio": ceiling_cpu / max(cpu, 1e-9),
                "wall_s_runs": [w for w, _ in timings],
            }
        )
    ceiling = n / ceiling_wall
    decode = n / min(wall for wall, _ in runs["decode PNG only"])
    return {
        "case": case.label,
        "backbone": case.backbone,
        "weights": case.weights,
        "image_size": case.image_size,
        "input_shape": list(images.shape[1:]),
        "n_images": n,
        "best_batch_size": best_bs,
        "ceiling_img_per_s": ceiling,
        "decode_img_per_s": decode,
        # If decoding and the model ran one after the other with no overhead.
        "serial_prediction_img_per_s": 1 / (1 / decode + 1 / ceiling),
        "files_img_per_s": next(
            row["img_per_s"]
            for row in table
            if row["how"] == "transform, PNG files, num_workers=0"
        ),
        "rows": table,
    }


# %% Peak memory over many file paths -----------------------------------------


def rss_child(folder: str, n_paths: int) -> None:
    """Runs in its own process: embed ``n_paths`` PNGs, print memory as JSON."""
    paths = sorted(str(p) for p in Path(folder).glob("*.png"))[:n_paths]
    model = PretrainedFeatureExtractor("fmnist_resnet", device="cpu", progress=False)
    model.fit(paths[:1])
    model.transform(paths[:64])
    before = current_rss_mb()
    reset = reset_peak_rss()
    start = time.perf_counter()
    out = model.transform(paths)
    seconds = time.perf_counter() - start
    report = {
        "n_paths": len(paths),
        "batch_size": model.batch_size,
        "rss_before_mb": before,
        "rss_after_mb": current_rss_mb(),
        "peak_rss_during_mb": peak_rss_mb(),
        "peak_is_since_transform": reset,
        "embeddings_mb": out.nbytes / 2**20,
        "decoded_float32_all_images_mb": len(paths) * 3 * 28 * 28 * 4 / 2**20,
        "img_per_s": len(paths) / seconds,
    }
    print(json.dumps(report))


def measure_rss(folder: Path, n_paths: int) -> dict:
    script = str(Path(__file__).resolve())
    result = subprocess.run(
        [sys.executable, script, "--rss-child", str(folder), str(n_paths)],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # Includes start-up and imports; the child is the only one reaped so far.
    report["child_lifetime_peak_rss_mb"] = children_peak_rss_mb()
    return report


# %% Report ----------------------------------------------------------------------


def format_tables(results: list[dict], rss: dict) -> str:
    """The three markdown tables printed at the end."""
    throughput = [
        {
            "case": row["case"],
            "how": row["how"],
            "batch": row["batch"],
            "img/s": f"{row['img_per_s']:.0f}",
            "x ceiling": f"{row['ratio']:.2f}",
            "x ceiling, CPU time": f"{row['cpu_ratio']:.2f}",
        }
        for result in results
        for row in result["rows"]
    ]
    files = [
        {
            "case": r["case"],
            "model(x) img/s": f"{r['ceiling_img_per_s']:.0f}",
            "decode PNG img/s": f"{r['decode_img_per_s']:.0f}",
            "both, one after the other": f"{r['serial_prediction_img_per_s']:.0f}",
            "transform, PNG files": f"{r['files_img_per_s']:.0f}",
        }
        for r in results
    ]
    tables = [
        markdown_table(throughput, list(throughput[0]), align=_right(throughput)),
        "PNG files, num_workers=0: decoding and the model take turns",
        markdown_table(files, list(files[0]), align=_right(files)),
    ]
    if rss is None:
        return "\n\n".join(tables)
    memory = [
        {
            "paths": rss["n_paths"],
            "RSS before (MiB)": f"{rss['rss_before_mb']:.0f}",
            "RSS after (MiB)": f"{rss['rss_after_mb']:.0f}",
            "peak RSS during transform (MiB)": f"{rss['peak_rss_during_mb']:.0f}",
            "peak - before (MiB)": (
                f"{rss['peak_rss_during_mb'] - rss['rss_before_mb']:.0f}"
            ),
            "all images as float32 (MiB)": (
                f"{rss['decoded_float32_all_images_mb']:.0f}"
            ),
            "process lifetime peak (MiB)": f"{rss['child_lifetime_peak_rss_mb']:.0f}",
        }
    ]
    return "\n\n".join(
        [
            *tables,
            f"Memory while embedding {rss['n_paths']} PNG paths (fmnist_resnet, "
            f"batch {rss['batch_size']}, own process, {rss['img_per_s']:.0f} img/s)",
            markdown_table(memory, list(memory[0]), align=_right(memory)),
        ]
    )


def _right(table: list[dict]) -> dict[str, str]:
    return {column: "right" for column in table[0] if column not in ("case", "how")}


# %% Main ----------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run, < 1 min")
    parser.add_argument("--repeat", type=int, default=3, help="timings per variant")
    parser.add_argument(
        "--search-repeat", type=int, default=1, help="timings per batch size"
    )
    parser.add_argument("--rss-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument(
        "--cases",
        help="only the cases whose label contains this text (skips the RSS run; "
        "results go to extractor_throughput_<text>.json)",
    )
    args = parser.parse_args()
    cases = [c for c in CASES if not args.cases or args.cases in c.label]
    if args.rss_child:
        rss_child(args.rss_child[0], int(args.rss_child[1]))
        return
    if args.quick:
        args.repeat = 1
    started, load_at_start = time.perf_counter(), load_average()
    n_rss = RSS_PATHS_QUICK if args.quick else RSS_PATHS
    sizes = {c.label: c.n_quick if args.quick else c.n_images for c in cases}
    gray, image_source = base_images(max([n_rss, *sizes.values()]))
    results = []
    with tempfile.TemporaryDirectory(prefix="sktransfer-bench-") as tmp:
        tmp = Path(tmp)
        # 28x28 grayscale PNGs, written once: the fmnist case and the RSS run.
        print(f"writing {n_rss} 28x28 PNGs ...", flush=True)
        small_paths = write_pngs(gray[:n_rss], tmp / "28px")
        # First, so that no other child process (DataLoader workers) has run yet.
        rss = None if args.cases else measure_rss(tmp / "28px", n_rss)
        for case in cases:
            n = sizes[case.label]
            images = make_images(case, gray[:n])
            if case.rgb:
                paths = write_pngs(images, tmp / case.label.replace(" ", "_"))
            else:
                paths = small_paths[:n]
            print(f"timing {case.label} ({n} images) ...", flush=True)
            result = measure_case(case, images, paths, args)
            results.append(result)
    elapsed = time.perf_counter() - started

    print()
    print(format_tables(results, rss))
    verdicts = []
    for result in results:
        arrays = next(r for r in result["rows"] if r["how"] == "transform, arrays")
        ok = arrays["ratio"] >= TARGET_RATIO
        verdicts.append(ok)
        print(
            f"{result['case']}: transform from arrays at {arrays['ratio']:.2f}x the "
            f"ceiling in wall time, {arrays['cpu_ratio']:.2f}x in CPU time "
            f"({'meets' if ok else 'BELOW'} the {TARGET_RATIO}x target)"
        )
    path = write_results(
        NAME + (f"_{args.cases}" if args.cases else ""),
        {
            "quick": args.quick,
            "repeat": args.repeat,
            "images": image_source,
            "target_ratio_arrays": TARGET_RATIO,
            "all_meet_target": all(verdicts),
            "cases": results,
            "rss": rss,
            "elapsed_s": elapsed,
            "loadavg_at_start": load_at_start,
        },
    )
    print(
        f"({elapsed:.0f} s; load average {load_at_start[0] if load_at_start else '?'}"
        f" at start on {os.cpu_count()} cores, OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY')}; results in {os.path.relpath(path)})"
    )


if __name__ == "__main__":
    main()
