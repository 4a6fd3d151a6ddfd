"""Train the backbone shipped inside sktransfer on Fashion-MNIST.

Reproduce with ``./dev train-backbone`` (about 8 minutes on 2 CPU cores). Writes
``sktransfer/_data/fmnist_resnet.safetensors`` and ``fmnist_resnet.json`` (recipe,
test accuracy, sha256). The training loop itself is
``sktransfer.backbones._fmnist_training.train_fmnist_resnet``, shared with the
transfer benchmark's source backbones.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from sktransfer.backbones._fmnist_training import train_fmnist_resnet
from sktransfer.backbones._shipped import FMNIST_PREPROCESSING
from sktransfer.datasets import load_fashion_mnist

OUT = Path(__file__).resolve().parents[1] / "sktransfer" / "_data"


def evaluate(model, X, y, batch_size=1000) -> float:
    model.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(X), batch_size):
            logits = model(X[start : start + batch_size])
            correct += (logits.argmax(1) == y[start : start + batch_size]).sum().item()
    return correct / len(X)


def prepare(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).float().div_(255).unsqueeze(1)
    return FMNIST_PREPROCESSING(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    X_train, y_train = load_fashion_mnist("train")
    X_test, y_test = load_fashion_mnist("test")
    X_train, X_test = prepare(X_train), prepare(X_test)
    y_train, y_test = torch.from_numpy(y_train), torch.from_numpy(y_test)

    accuracies: list[float] = []

    def report(epoch: int, model: torch.nn.Module, loss: float) -> None:
        accuracies.append(evaluate(model, X_test, y_test))
        elapsed = time.perf_counter() - start_time
        print(
            f"epoch {epoch}: loss {loss:.3f} "
            f"test acc {accuracies[-1]:.4f} ({elapsed:.0f}s)",
            flush=True,
        )

    start_time = time.perf_counter()
    model = train_fmnist_resnet(
        X_train,
        y_train,
        n_classes=10,
        epochs=args.epochs,
        seed=args.seed,
        lr=args.lr,
        batch_size=args.batch_size,
        on_epoch=report,
    )
    accuracy = accuracies[-1]

    weights_path = OUT / "fmnist_resnet.safetensors"
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    save_file(state, str(weights_path))
    sha256 = hashlib.sha256(weights_path.read_bytes()).hexdigest()
    metadata = {
        "architecture": (
            "ResNet, BasicBlock x1 per stage, widths 16-32-64-128, 28x28x1 input"
        ),
        "data": (
            "Fashion-MNIST, all 60,000 training images (Debian dataset-fashion-mnist)"
        ),
        "recipe": (
            f"AdamW lr={args.lr} weight_decay=5e-4, OneCycle, {args.epochs} epochs, "
            f"batch {args.batch_size}, label smoothing 0.1, random 2px shifts + "
            f"horizontal flips, seed {args.seed}"
        ),
        "test_accuracy": round(accuracy, 4),
        "train_seconds": round(time.perf_counter() - start_time),
        "torch": torch.__version__,
        "sha256": sha256,
        "reproduce": "./dev train-backbone",
    }
    (OUT / "fmnist_resnet.json").write_text(json.dumps(metadata, indent=2) + "\n")
    print(json.dumps(metadata, indent=2))


if __name__ == "__main__":
    main()
