"""The training recipe of the shipped Fashion-MNIST ResNet, as one function.

``scripts/train_shipped_backbone.py`` trains the weights shipped in
``sktransfer/_data`` with it, and ``benchmarks/_transfer.py`` pretrains its source
backbones on a subset of the classes with it. Both already import
``build_fmnist_resnet`` from this package, so the loop lives next to the
architecture instead of in a folder that is not a package. Data loading and
normalisation stay with the callers: they differ (and each caller's exact
arithmetic is kept, so their models are unchanged).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ._shipped import build_fmnist_resnet

__all__ = ["augment", "train_fmnist_resnet"]


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random shifts of up to 2 px (pad + crop) and horizontal flips."""
    padded = F.pad(x, (2, 2, 2, 2))
    dx, dy = torch.randint(0, 5, (2,), generator=generator).tolist()
    x = padded[..., dy : dy + 28, dx : dx + 28]
    flip = torch.rand(x.shape[0], generator=generator) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


def train_fmnist_resnet(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    n_classes: int,
    epochs: int,
    seed: int = 0,
    lr: float = 4e-3,
    batch_size: int = 128,
    on_epoch: Callable[[int, nn.Module, float], None] | None = None,
) -> nn.Module:
    """Train a fresh ``build_fmnist_resnet(n_classes)`` on ``(x, y)``.

    AdamW (weight decay 5e-4), a one-cycle schedule peaking at ``lr``, label
    smoothing 0.1, random 2-px shifts and horizontal flips, shuffled batches.
    ``torch.manual_seed(seed)`` is set before the model is built, and shuffling
    and augmentation draw from their own generator seeded with ``seed``, so the
    same arguments give the same model.

    Parameters
    ----------
    x : torch.Tensor of shape (n_images, 1, 28, 28)
        Normalised images.
    y : torch.Tensor of shape (n_images,)
        Labels in ``0 .. n_classes - 1`` (int64).
    n_classes : int
        Width of the classifier ``fc``.
    epochs : int
        Passes over ``x``.
    seed : int, default=0
        Seed of the initialisation, the shuffling and the augmentation.
    lr : float, default=4e-3
        Peak learning rate of the one-cycle schedule.
    batch_size : int, default=128
        Images per step (the last batch of an epoch may be smaller).
    on_epoch : callable, default=None
        Called after each epoch as ``on_epoch(epoch, model, loss)`` with the
        1-based epoch and the loss of its last batch, for example to evaluate.
        It must not draw from torch's global random state.

    Returns
    -------
    model : torch.nn.Module
        The trained network (in training mode, unless ``on_epoch`` changed it).

    Examples
    --------
    >>> import torch
    >>> from sktransfer.backbones._fmnist_training import train_fmnist_resnet
    >>> x, y = torch.randn(8, 1, 28, 28), torch.arange(8) % 2
    >>> model = train_fmnist_resnet(x, y, n_classes=2, epochs=1, batch_size=4)
    >>> model.fc.out_features
    2
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = build_fmnist_resnet(n_classes=n_classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps = epochs * -(-len(x) // batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps)
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            index = order[start : start + batch_size]
            logits = model(augment(x[index], generator))
            loss = F.cross_entropy(logits, y[index], label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        if on_epoch is not None:
            on_epoch(epoch, model, loss.item())
    return model
