"""The network FineTuneClassifier trains: preprocessing, backbone stages, new head.

It is a :class:`~sktransfer._runtime.BackboneRuntime` plus a head. Frozen stages
are part of the module but stay in eval mode whatever ``train()``
is called with, so their BatchNorm running statistics and dropout never change:
the classic silent bug of naive freezing. Training can also start part-way, at
cached outputs of the frozen stages (``start_stage``), which is what makes
never recomputing frozen layers possible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._runtime import BackboneRuntime
from ._targets import average_outputs
from .backbones import Backbone, pool_features

__all__ = ["TransferNet", "build_head", "BatchAugment", "augmenter"]


def build_head(
    in_features: int, hidden: Sequence[int], dropout: float, n_classes: int
) -> nn.Sequential:
    """New classifier: optional hidden ReLU layers, dropout, then a linear layer."""
    layers: list[nn.Module] = []
    width = in_features
    for units in hidden:
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers += [nn.Linear(width, int(units)), nn.ReLU(inplace=True)]
        width = int(units)
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


class BatchAugment(nn.Module):
    """Random resized crops and/or horizontal flips of a whole batch at once.

    One affine resampling per batch (``affine_grid`` + ``grid_sample``) gives every
    image its own crop, which is much cheaper than per-image PIL transforms.
    """

    def __init__(self, crop: bool = True, flip: bool = True, scale=(0.6, 1.0)):
        super().__init__()
        self.crop, self.flip, self.scale = crop, flip, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise ValueError(
                "augment crops and flips image batches; this backbone takes "
                f"{type(x).__name__} batches. Set augment=False."
            )
        n = x.shape[0]
        theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
        sx = torch.ones(n, device=x.device, dtype=x.dtype)
        sy = torch.ones_like(sx)
        tx, ty = torch.zeros_like(sx), torch.zeros_like(sx)
        if self.crop:
            area = torch.empty_like(sx).uniform_(*self.scale)
            log_ratio = torch.empty_like(sx).uniform_(math.log(3 / 4), math.log(4 / 3))
            ratio = log_ratio.exp()
            sx = (area * ratio).sqrt().clamp(max=1.0)
            sy = (area / ratio).sqrt().clamp(max=1.0)
            tx = (torch.rand_like(sx) * 2 - 1) * (1 - sx)
            ty = (torch.rand_like(sy) * 2 - 1) * (1 - sy)
        if self.flip:
            sx = torch.where(torch.rand_like(sx) < 0.5, -sx, sx)
        theta[:, 0, 0], theta[:, 0, 2] = sx, tx
        theta[:, 1, 1], theta[:, 1, 2] = sy, ty
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(
            x, grid, mode="bilinear", padding_mode="reflection", align_corners=False
        )


def augmenter(
    augment: bool | str,
    modality: str = "image",
    n_frozen: int = 0,
    sample_rate: int | None = None,
) -> nn.Module | None:
    """The batch augmentation an ``augment`` parameter asks for, or None.

    Audio gets time shifts, gains, noise and band limits (``augment=True``;
    ``sample_rate`` is the clips', 16 kHz if None); crops and flips are for
    images only. "auto" augments audio when every stage trains
    (``n_frozen == 0``) and nothing else.
    """
    if augment == "auto":
        # Label-preserving for speech; keyword_cnn's defaults gained on speakers
        # over a telephone line (0.571 vs 0.450), languages and digits at k=20
        # (benchmarks/results/speech_few_shot_augment.md). With
        # frozen stages their outputs are cached instead: augmented clips
        # would have them recomputed every epoch.
        augment = modality == "audio" and n_frozen == 0
    if not augment:
        return None
    if modality == "audio":
        if augment is not True:
            raise ValueError(
                f"augment={augment!r} crops or flips images; this backbone takes "
                "audio. Use augment=True (time shift, gain, noise and band limits) "
                "or False."
            )
        from ._audio_augment import AudioAugment

        return AudioAugment(sample_rate=sample_rate or 16000)
    if modality != "image":  # refused when the network is built, before training
        raise ValueError(
            f"augment={augment!r} crops or flips images; this backbone takes "
            f"{modality}, for which there is no augmentation. Set augment=False."
        )
    return BatchAugment(crop=augment in (True, "crop"), flip=augment in (True, "flip"))


class TransferNet(BackboneRuntime):
    """Raw images ``(B, C, H, W)`` in ``[0, 1]`` -> class logits.

    A :class:`~sktransfer._runtime.BackboneRuntime` with a head: the backbone
    runs through the runtime's device and precision policy.

    Parameters
    ----------
    backbone : Backbone
        Pretrained stages and their preprocessing.
    head : nn.Module
        Classifier on the pooled embedding.
    n_frozen : int
        The first ``n_frozen`` stages get no gradient and stay in eval mode.
    augment : nn.Module or None
        Applied to raw batches in training mode only.
    taps : list of int or None, default=None
        Stages (counts, sorted) whose pooled outputs are concatenated into the
        head's input; None: the last stage's.
    pooling : str or None, default="avg"
        How each tapped output becomes a vector (see ``pool_features``).
    device : torch.device, default=cpu
        Where the network lives.
    autocast : bool, default=False
        Mixed precision on GPUs (see ``BackboneRuntime``).
    final_head : nn.Module or None, default=None
        A second classifier, on the average-pooled output of the last stage,
        trained next to ``head`` (which then sees earlier taps). Training
        returns both heads' logits stacked as ``(B, 2, n_outputs)``; in eval
        mode they are averaged as predictions (see ``output``).
    output : {"softmax", "sigmoid", "identity"}, default="softmax"
        What the outputs are: class logits, label logits or numbers. Two
        heads' (and test-time views') outputs average as class
        probabilities, label probabilities or numbers
        (:func:`sktransfer._targets.average_outputs`).
    """

    def __init__(
        self,
        backbone: Backbone,
        head: nn.Module,
        n_frozen: int = 0,
        augment: nn.Module | None = None,
        *,
        taps: Sequence[int] | None = None,
        pooling: str | None = "avg",
        device: torch.device | str = "cpu",
        autocast: bool = False,
        final_head: nn.Module | None = None,
        output: str = "softmax",
    ) -> None:
        super().__init__(backbone, autocast=autocast)
        self.output = output
        self.head = head
        self.final_head = final_head
        self.augment = augment
        self.n_frozen = n_frozen
        self.taps = list(taps) if taps else None
        self.pooling = pooling
        # Index of the stage the input enters at: 0 for images, k for cached
        # outputs of stage k (set while training on cached activations).
        self.start_stage = 0
        # Set by the estimator: BatchNorm layers normalise with their running
        # statistics and never update them, also while training.
        self.freeze_batchnorm = False
        self.tta = False  # set by the estimator: test-time augmentation
        for stage in self.frozen_stages():
            stage.requires_grad_(False)
        self.place(device)

    def frozen_stages(self) -> list[nn.Module]:
        return list(self.backbone.stages)[: self.n_frozen]

    def cacheable_stop(self) -> int:
        """Stages whose outputs never change in training and are all the rest needs.

        The frozen stages, up to the first tapped one: a tap inside the frozen
        stages needs its own output, so the cache ends there.
        """
        return min(self.n_frozen, self.taps[0]) if self.taps else self.n_frozen

    def features(self, x, start: int = 0) -> torch.Tensor:
        """The head's input: pooled (and concatenated) outputs of the taps."""
        return self.embed(x, start=start, pooling=self.pooling, taps=self.taps)

    def train(self, mode: bool = True) -> TransferNet:
        super().train(mode)
        for stage in self.frozen_stages():
            stage.eval()
        if self.freeze_batchnorm:
            for layer in self.backbone.modules():
                if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                    layer.eval()
        return self

    def prepare(self, raw) -> torch.Tensor:
        if self.training and self.augment is not None:
            raw = self.augment(raw)
        return super().prepare(raw)

    def forward(self, x) -> torch.Tensor:
        """Logits; ``x`` is raw images unless ``start_stage > 0``.

        In eval mode with ``tta`` set, the outputs of the image and four
        shifted copies are averaged as predictions (class probabilities for
        classes, returned as their log).
        """
        if self.tta and not self.training and self.start_stage == 0:
            views = [x, *shifted_views(x)]
            outputs = torch.stack([self._logits(v).float() for v in views])
            return average_outputs(outputs, self.output, dim=0)
        return self._logits(x)

    def _logits(self, x) -> torch.Tensor:
        if self.final_head is not None:
            return self._two_exit_logits(x)
        embedding = self.features(x, start=self.start_stage)
        with self.precision():
            return self.head(embedding)

    def _two_exit_logits(self, x) -> torch.Tensor:
        """Both heads from one pass: the taps on the way, then the last stage."""
        x = self.prepare(x) if self.start_stage == 0 else x
        embedding, x = self.run_taps(x, self.start_stage, self.taps, self.pooling)
        final = pool_features(self.run(x, self.taps[-1]), "avg").float()
        with self.precision():
            logits = torch.stack(
                [self.head(embedding), self.final_head(final)], dim=1
            ).float()
        if self.training:
            return logits  # the loss sums both heads' losses
        return average_outputs(logits, self.output, dim=1)

    def logits_and_features(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the features the head's last linear layer sees.

        Domain adaptation aligns them (DANN) or the logits (Deep CORAL) between
        source and target.
        """
        embedding = self.features(x, start=self.start_stage)
        with self.precision():
            features = self.head[:-1](embedding)
            return self.head[-1](features), features


def shifted_views(x: torch.Tensor, fraction: float = 0.0625) -> list[torch.Tensor]:
    """Copies of a raw image batch shifted by ``fraction`` of its size, 4 ways.

    Shifts keep the meaning of digits, text and most photos (flips may not);
    borders are reflected.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        return []
    n = x.shape[0]
    views = []
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0
        theta[:, 0, 2], theta[:, 1, 2] = 2 * fraction * dx, 2 * fraction * dy
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        views.append(
            F.grid_sample(x, grid, padding_mode="reflection", align_corners=False)
        )
    return views
