"""Hand-written baselines of the transfer benchmarks: tutorial loops, a user's CNN.

``TutorialFineTune`` is the loop of common PyTorch tutorials; ``UserCNN`` is the
small network a user writes and pretrains the tutorial way; ``Lite0Tutorial``
feeds EfficientNet-Lite0 to the same loop. Plain torch, no sktransfer.
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from _transfer import (
    CACHE_DIR,
    CUSTOM_MEAN,
    CUSTOM_STD,
    fashion_mnist_split,
    predict_batched,
    to_tensor,
)
from safetensors.torch import save_file
from torch import nn

from sktransfer.backbones._efficientnet_lite import build_lite0, load_lite0_imagenet
from sktransfer.backbones._shipped import build_fmnist_resnet


# ------------------------------------------------------- the tutorial baseline
class TutorialFineTune:
    """The transfer-learning loop of common PyTorch tutorials, written by hand.

    Load the pretrained network, replace its last layer by a new
    ``nn.Linear(in_features, n_classes)``, and train *every* parameter with Adam
    (lr=1e-3), cross-entropy, batch 32, shuffled, a fixed number of epochs, no
    schedule, BatchNorm in training mode; predict with ``model.eval()``. Inputs
    are normalised as in pretraining. ``checkpoint=None`` is the same loop from
    random weights (the hand-written from-scratch baseline).
    """

    def __init__(
        self,
        checkpoint,
        n_source,
        mean,
        std,
        *,
        epochs=30,
        seed=0,
        build=None,
        size=28,
    ):
        self.checkpoint = checkpoint  # () -> pretrained state dict, or None
        self.n_source = n_source  # classes of the pretrained head
        self.mean, self.std = mean, std
        self.epochs, self.seed = epochs, seed
        self.build = build or build_fmnist_resnet  # (n_classes) -> module with .fc
        self.size = size  # images are resized to size x size, as the library does
        self.lr, self.batch_size = 1e-3, 32

    def fit(self, X, y):
        self.classes_, targets = np.unique(y, return_inverse=True)
        torch.manual_seed(self.seed)
        model = self.build(self.n_source)
        if self.checkpoint is not None:
            model.load_state_dict(self.checkpoint())
        model.fc = nn.Linear(model.fc.in_features, len(self.classes_))
        data = torch.utils.data.TensorDataset(
            to_tensor(X, self.mean, self.std, self.size), torch.as_tensor(targets)
        )
        loader = torch.utils.data.DataLoader(
            data, batch_size=self.batch_size, shuffle=True
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr)
        for _ in range(self.epochs):
            model.train()
            for images, labels in loader:
                optimizer.zero_grad()
                loss = F.cross_entropy(model(images), labels)
                loss.backward()
                optimizer.step()
        self.model_ = model.eval()
        return self

    def predict(self, X):
        x = to_tensor(X, self.mean, self.std, self.size)
        return self.classes_[predict_batched(self.model_, x)]


class Lite0Tutorial(nn.Module):
    """timm's EfficientNet-Lite0 as a tutorial adapts it to grey images.

    The grey channel is repeated three times and the classifier is exposed as
    ``fc`` so :class:`TutorialFineTune` replaces it like any other head.
    """

    def __init__(self, n_classes: int):
        super().__init__()
        self.net = build_lite0()
        self.net.classifier = nn.Identity()
        self.fc = nn.Linear(1280, n_classes)

    def forward(self, x):
        return self.fc(self.net(x.expand(-1, 3, -1, -1)))


def lite0_imagenet_checkpoint() -> dict:
    """The offline ImageNet Lite0 weights, keyed for :class:`Lite0Tutorial`."""
    state = load_lite0_imagenet()
    out = {f"net.{k}": v for k, v in state.items() if not k.startswith("classifier.")}
    out.update(
        {
            k.replace("classifier.", "fc."): v
            for k, v in state.items()
            if k.startswith("classifier.")
        }
    )
    return out


# ------------------------------------------------- a user's own small CNN
class UserCNN(nn.Module):
    """A user's own 3-block CNN (conv-BN-ReLU-pool x3), as tutorials write one.

    Its children ``block1``, ``block2``, ``block3``, ``pool`` are the stages
    sktransfer sees when it is passed as ``list(named_children())`` without
    ``fc``. ``batchnorm=False`` gives the older tutorials' conv-ReLU-pool blocks.
    """

    def __init__(self, n_classes: int, width: int = 32, batchnorm: bool = True):
        super().__init__()

        def block(c_in, c_out):
            conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batchnorm)
            norm = [nn.BatchNorm2d(c_out)] if batchnorm else []
            return nn.Sequential(conv, *norm, nn.ReLU(inplace=True), nn.MaxPool2d(2))

        self.block1 = block(1, width)
        self.block2 = block(width, 2 * width)
        self.block3 = block(2 * width, 4 * width)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(4 * width, n_classes)

    def forward(self, x):
        return self.fc(self.pool(self.block3(self.block2(self.block1(x)))))


def user_cnn_stages(
    state: dict | None = None, seed: int | None = None, batchnorm: bool = True
):
    """``(name, module)`` stages of a ``UserCNN``: pretrained ``state`` or fresh."""
    with torch.random.fork_rng():
        if seed is not None:
            torch.manual_seed(seed)
        model = UserCNN(5, batchnorm=batchnorm)
    if state is not None:
        model.load_state_dict(state)
    return [(name, child) for name, child in model.named_children() if name != "fc"]


def pretrain_user_cnn(
    classes=(0, 1, 2, 3, 4),
    *,
    epochs=3,
    seed=0,
    mean=CUSTOM_MEAN,
    std=CUSTOM_STD,
    batchnorm=True,
) -> dict:
    """Train a ``UserCNN`` on those Fashion-MNIST classes the tutorial way.

    Adam 1e-3, batch 128, shuffled, no augmentation, inputs (x-mean)/std; the
    default (x-0.5)/0.5 is the normalisation sktransfer applies to 1-channel
    custom modules. Cached under ``benchmarks/.cache``.
    """
    tag = f"usercnn{''.join(map(str, classes))}_e{epochs}_s{seed}"
    if (mean, std) != (CUSTOM_MEAN, CUSTOM_STD):
        tag += f"_m{mean[0]:g}_s{std[0]:g}"
    if not batchnorm:
        tag += "_nobn"
    path, meta_path = CACHE_DIR / f"{tag}.safetensors", CACHE_DIR / f"{tag}.json"
    if path.is_file() and meta_path.is_file():
        return {**json.loads(meta_path.read_text()), "cached": True}
    X, y = fashion_mnist_split(classes, "train")
    X_test, y_test = fashion_mnist_split(classes, "test")
    x = to_tensor(X, mean, std)
    targets = torch.as_tensor(np.searchsorted(classes, y))
    torch.manual_seed(seed)
    model = UserCNN(len(classes), batchnorm=batchnorm)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, targets), batch_size=128, shuffle=True
    )
    start = time.perf_counter()
    print(f"Pretraining the user CNN on {len(x)} images ({epochs} epochs)")
    for _ in range(epochs):
        model.train()
        for images, labels in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(images), labels).backward()
            optimizer.step()
    x_test = to_tensor(X_test, mean, std)
    accuracy = float(
        (predict_batched(model, x_test) == np.searchsorted(classes, y_test)).mean()
    )
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    meta = {
        "classes": list(classes),
        "recipe": (
            f"Adam 1e-3, batch 128, {epochs} epochs, (x-{mean[0]:g})/{std[0]:g}, "
            f"seed {seed}" + ("" if batchnorm else ", no BatchNorm")
        ),
        "test_accuracy_source_classes": round(accuracy, 4),
        "train_seconds": round(time.perf_counter() - start, 1),
        "checkpoint": str(path),
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    print(f"  user CNN source test accuracy {accuracy:.4f}")
    return {**meta, "cached": False}
