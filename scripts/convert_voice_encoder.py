"""Convert Resemblyzer's GE2E weights into the ``voice_encoder`` backbone's file.

Downloads the wheel ``Resemblyzer==0.1.4`` (Apache-2.0) with pip (no
dependencies installed), reads ``resemblyzer/pretrained.pt`` (weights only),
renames its 3-layer LSTM into the backbone's three one-layer stages, and writes
``sktransfer/_data/voice_encoder.safetensors`` and ``voice_encoder.json``
(source, licence and sha256 of both files). Optimiser state and the GE2E
similarity scale are left out: they are not part of the encoder.

Run: ``./dev python scripts/convert_voice_encoder.py``
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch
from safetensors.torch import save_file

WHEEL = "Resemblyzer==0.1.4"
OUT = Path(__file__).resolve().parents[1] / "sktransfer" / "_data"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def converted_state(checkpoint: dict) -> dict[str, torch.Tensor]:
    """``lstm.*_l{k}`` -> ``lstm{k+1}.lstm.*_l0``; ``linear.*`` -> stage ``linear``."""
    state = {}
    for key, value in checkpoint["model_state"].items():
        if key.startswith("lstm."):
            name, layer = key[len("lstm.") :].rsplit("_l", 1)
            state[f"lstm{int(layer) + 1}.lstm.{name}_l0"] = value
        elif key.startswith("linear."):
            state[f"linear.{key}"] = value
    return {key: value.contiguous() for key, value in state.items()}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "-q",
                "-d",
                tmp,
                WHEEL,
            ],
            check=True,
        )
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            blob = archive.read("resemblyzer/pretrained.pt")
            licence = archive.read(
                next(n for n in archive.namelist() if n.endswith("LICENSE"))
            )
        source = Path(tmp) / "pretrained.pt"
        source.write_bytes(blob)
        checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    target = OUT / "voice_encoder.safetensors"
    save_file(converted_state(checkpoint), str(target))
    metadata = {
        "architecture": "GE2E: 40-band mel power (16 kHz, 25 ms / 10 ms) -> "
        "3 x LSTM(256) -> linear(256) -> ReLU -> L2, on 1.6 s windows at 1.3/s",
        "source": f"PyPI wheel {wheel.name}, file resemblyzer/pretrained.pt "
        f"(training step {int(checkpoint['step'])})",
        "source_sha256": _sha256(blob),
        "licence": "Apache-2.0 (Resemblyzer, by Resemble AI)",
        "licence_sha256": _sha256(licence),
        "sha256": _sha256(target.read_bytes()),
        "reproduce": "./dev python scripts/convert_voice_encoder.py",
    }
    (OUT / "voice_encoder.json").write_text(json.dumps(metadata, indent=2) + "\n")
    print(json.dumps(metadata, indent=2))


if __name__ == "__main__":
    main()
