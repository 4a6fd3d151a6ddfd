"""How a stage's output becomes one vector per sample: ``pool_features``.

Feature maps, token sequences and masked token states (from text backbones) all
pass through here, for the extractor's embeddings and for the fine-tuning head's
input alike.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

__all__ = ["ATTENTION_MASK", "GRID", "HIDDEN_STATES", "pool_features"]

# Stages of sequence models (text) pass a mapping between them: the token states
# ``(B, L, D)`` under HIDDEN_STATES and the ``(B, L)`` padding mask under
# ATTENTION_MASK, so that later stages and pooling ignore padded positions.
HIDDEN_STATES = "hidden_states"
ATTENTION_MASK = "attention_mask"

# Cells per side of pooling="grid".
GRID = 4


def pool_features(x, pooling: str | None) -> torch.Tensor:
    """Reduce a stage output to one vector per sample.

    Feature maps ``(B, C, H, W)`` are pooled over space and token sequences
    ``(B, L, D)`` over tokens; ``pooling=None`` flattens instead. ``"grid"``
    averages maps over a coarse ``GRID x GRID`` grid (4 x 4), keeping where
    things are; ``"gem"`` is the generalised mean (p=3). 2-D outputs are
    returned unchanged. Masked token states (a mapping of ``HIDDEN_STATES`` and
    ``ATTENTION_MASK``, from text backbones) are pooled over their real tokens
    only; they have no fixed length, so they cannot be flattened.
    """
    if isinstance(x, Mapping):
        return _pool_masked(x[HIDDEN_STATES], x[ATTENTION_MASK], pooling)
    if x.ndim == 2:
        return x
    if pooling is None:
        return x.flatten(1)
    dims = (2, 3) if x.ndim == 4 else (1,)
    if pooling == "avg":
        return x.mean(dim=dims)
    if pooling == "max":
        return x.amax(dim=dims)
    if pooling == "avgmax":
        return torch.cat([x.mean(dim=dims), x.amax(dim=dims)], dim=1)
    if pooling == "gem":  # generalised mean, p=3
        return x.clamp(min=1e-6).pow(3).mean(dim=dims).pow(1 / 3)
    if pooling == "grid":
        if x.ndim != 4:
            return x.mean(dim=dims)  # token sequences have no grid
        size = (min(GRID, x.shape[2]), min(GRID, x.shape[3]))
        return F.adaptive_avg_pool2d(x, size).flatten(1)
    raise ValueError(
        f"Unknown pooling {pooling!r}; use 'avg', 'max', 'avgmax', 'gem', "
        "'grid' or None."
    )


def _pool_masked(
    hidden: torch.Tensor, mask: torch.Tensor, pooling: str | None
) -> torch.Tensor:
    """Mean/max over the tokens where ``mask`` is 1 (sentence-transformers' mean)."""
    if pooling == "grid":
        pooling = "avg"  # tokens have no grid: averaged, as unmasked tokens are
    if pooling not in ("avg", "max", "avgmax"):
        raise ValueError(
            f"pooling={pooling!r} cannot be used on token sequences, which have no "
            "fixed length to flatten; use 'avg', 'max' or 'avgmax'."
        )
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    parts = []
    if pooling in ("avg", "avgmax"):
        count = weights.sum(dim=1).clamp(min=1e-9)
        parts.append((hidden * weights).sum(dim=1) / count)
    if pooling in ("max", "avgmax"):
        parts.append(hidden.masked_fill(weights == 0, float("-inf")).amax(dim=1))
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
