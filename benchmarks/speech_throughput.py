"""Speech embedding throughput against the bare backbone loop, and memory.

Hypotheses:

1. ``PretrainedFeatureExtractor(backbone, layer=None).transform(clips)`` runs at
   >= 0.9x the clips/s of the loop it wraps, on the same batches: 64 clips at a
   time, longest first (as the library sorts them), ``batch =
   net.preprocessing(clips)`` then ``net(batch)`` under ``torch.inference_mode()``
   with ``net = resolve_backbone(name, "DEFAULT").eval()``. It adds only input
   checks, the length sort and a copy of the outputs. The same loop in the data's
   own order shows what sorting buys (less padding per batch). Both shipped audio
   backbones: ``keyword_cnn`` and ``voice_encoder``.
2. Peak memory while embedding 20,000 clip files grows with the output array
   (n x 256 x 4 bytes), not with the number of clips: files are decoded one
   batch at a time.

Method. Speed: deterministic synthetic clips, not speech (throughput does not
depend on content): 16 kHz float32, lengths uniform in 0.5-3 s, a tone of random
pitch plus noise, from a seeded numpy generator. The three paths must give the
same embeddings (``assert_allclose``, rtol 1e-4) on a few batches before any
timing; each is then timed ``--repeats`` times in interleaved rounds (slow phases
of a shared machine hit all alike) and the best is kept, as wall clock (clips/s)
and as CPU seconds (less sensitive to other load). Memory: 1 s int16 wav files
of noise in a temporary folder; a fresh process per size fits ``keyword_cnn`` on
two files, embeds one batch (warm-up: every later batch has the same shape) and
then all ``n`` files; peak RSS after ``transform`` minus peak RSS after ``fit``
(and after the warm-up) is compared with the output array's size.

Run: ``./dev bench speech_throughput`` (defaults: 2,000 clips for speed, memory
at 2k and 20k files; ``--n``, ``--memory-sizes``, ``--backbones`` shorten it).
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
import torch
from _common import interleaved_timings, markdown_table, peak_rss_mb, write_results

from sktransfer import PretrainedFeatureExtractor
from sktransfer.backbones import resolve_backbone

BATCH = 64
RATE = 16000
BACKBONES = ("keyword_cnn", "voice_encoder")
CHECK_CLIPS = 3 * BATCH


def _clips(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    clips = []
    for length in rng.integers(RATE // 2, 3 * RATE + 1, size=n):
        t = np.arange(length) / RATE
        tone = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 1000) * t)
        clips.append((tone + 0.05 * rng.standard_normal(length)).astype(np.float32))
    return clips


def _raw_loop(net, clips: list[np.ndarray], sort: bool) -> np.ndarray:
    """The ceiling: the backbone called by hand on batches of 64 clips."""
    lengths = np.array([len(clip) for clip in clips])
    order = np.argsort(-lengths, kind="stable") if sort else np.arange(len(clips))
    out = np.empty((len(clips), net.embedding_dim), np.float32)
    with torch.inference_mode():
        for start in range(0, len(clips), BATCH):
            rows = order[start : start + BATCH]
            batch = net.preprocessing([clips[i] for i in rows])
            out[rows] = net(batch).numpy()
    return out


def speed(name: str, n: int, repeats: int) -> dict:
    clips = _clips(n)
    net = resolve_backbone(name, "DEFAULT").eval()
    extractor = PretrainedFeatureExtractor(
        name, layer=None, device="cpu", batch_size=BATCH, progress=False
    ).fit(clips[:2])
    paths = {
        "raw loop, data order": lambda data: _raw_loop(net, data, False),
        "raw loop, sorted by length": lambda data: _raw_loop(net, data, True),
        "sktransfer transform": extractor.transform,
    }
    check = {key: fn(clips[:CHECK_CLIPS]) for key, fn in paths.items()}
    reference = check["raw loop, sorted by length"]
    for key, out in check.items():
        np.testing.assert_allclose(out, reference, rtol=1e-4, atol=1e-6, err_msg=key)
    timings = interleaved_timings(
        {key: (lambda fn=fn: fn(clips)) for key, fn in paths.items()}, repeats
    )
    rows = {}
    for key, runs in timings.items():
        wall, cpu = min(w for w, _ in runs), min(c for _, c in runs)
        rows[key] = {"seconds": round(wall, 3), "cpu_seconds": round(cpu, 3)}
        rows[key]["clips_per_s"] = round(n / wall, 1)
    ceiling = rows["raw loop, sorted by length"]
    ours = rows["sktransfer transform"]
    return {
        "backbone": name,
        "n": n,
        "audio_seconds": round(sum(len(c) for c in clips) / RATE, 1),
        "rows": rows,
        "ratio_vs_sorted_raw": round(ours["clips_per_s"] / ceiling["clips_per_s"], 3),
        "cpu_ratio_vs_sorted_raw": round(
            ceiling["cpu_seconds"] / ours["cpu_seconds"], 3
        ),
        "sorting_speedup": round(
            ceiling["clips_per_s"] / rows["raw loop, data order"]["clips_per_s"], 3
        ),
    }


def _write_files(folder: Path, n: int) -> None:
    import soundfile

    rng = np.random.default_rng(1)
    for i in range(n):
        pcm = (3000 * rng.standard_normal(RATE)).clip(-32768, 32767)
        soundfile.write(folder / f"{i:06d}.wav", pcm.astype(np.int16), RATE)


def _memory_child(n: int, folder: str) -> None:
    paths = sorted(str(path) for path in Path(folder).glob("*.wav"))[:n]
    extractor = PretrainedFeatureExtractor(
        "keyword_cnn", layer=None, device="cpu", batch_size=BATCH, progress=False
    ).fit(paths[:2])
    after_fit = peak_rss_mb()
    extractor.transform(paths[:BATCH])  # warm-up: the shape of every batch
    after_warmup = peak_rss_mb()
    out = extractor.transform(paths)
    after = peak_rss_mb()
    row = {
        "n": n,
        "peak_rss_after_fit_mib": after_fit,
        "peak_rss_growth_mib": after - after_fit,
        "peak_rss_growth_after_warmup_mib": after - after_warmup,
        "output_mib": out.nbytes / 2**20,
    }
    print(json.dumps({key: round(value, 1) for key, value in row.items()}))


def memory(sizes: list[int]) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="speech_throughput_") as folder:
        _write_files(Path(folder), max(sizes))
        for n in sizes:
            command = [sys.executable, __file__, "--memory-child", str(n), folder]
            result = subprocess.run(command, check=True, capture_output=True, text=True)
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
            print(f"memory n={n}: {rows[-1]}", flush=True)
    return rows


def summary(result: dict) -> str:
    lines = [f"## Speech throughput ({result['torch_threads']} torch threads)", ""]
    for case in result["speed"]:
        lines += [
            f"### {case['backbone']}: {case['n']} clips, "
            f"{case['audio_seconds']:.0f} s of audio",
            "",
            markdown_table(
                [{"path": key, **row} for key, row in case["rows"].items()],
                ["path", "clips_per_s", "seconds", "cpu_seconds"],
            ),
            "",
            f"transform / sorted raw loop: {case['ratio_vs_sorted_raw']:.2f}x wall, "
            f"{case['cpu_ratio_vs_sorted_raw']:.2f}x CPU (hypothesis: >= 0.90); "
            f"sorting speeds the raw loop up {case['sorting_speedup']:.2f}x.",
            "",
        ]
    if result["memory"]:
        lines += [
            "### Peak RSS growth during transform (keyword_cnn, 1 s wav files)",
            "",
            markdown_table(
                result["memory"],
                [
                    "n",
                    "output_mib",
                    "peak_rss_growth_mib",
                    "peak_rss_growth_after_warmup_mib",
                    "peak_rss_after_fit_mib",
                ],
            ),
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="clips for speed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backbones", nargs="*", default=list(BACKBONES))
    parser.add_argument("--memory-sizes", type=int, nargs="*", default=[2000, 20000])
    parser.add_argument("--memory-child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child is not None:
        _memory_child(int(args.memory_child[0]), args.memory_child[1])
        return
    started = time.perf_counter()
    result = {
        "torch_threads": torch.get_num_threads(),
        "batch_size": BATCH,
        "clips": "synthetic tone + noise, 0.5-3 s at 16 kHz, seed 0",
        "speed": [],
    }
    for name in args.backbones:
        result["speed"].append(speed(name, args.n, args.repeats))
        print(f"{name}: {result['speed'][-1]['rows']}", flush=True)
    result["memory"] = memory(args.memory_sizes) if args.memory_sizes else []
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    path = write_results("speech_throughput", result)
    print(f"\n{summary(result)}\n\nwrote {path}")


if __name__ == "__main__":
    main()
