"""Memory one image's cached output takes, for every stage of every backbone.

``FineTuneClassifier(freeze=k)`` caches the output of stage k for each training
image (``cache_frozen=True``); this table tells what that costs before you fit.
Sizes are float32 at each backbone's native input size (halve them with
``cache_dtype="float16"``); they scale with the input area for convolutional
stages. Run: ``./dev bench stage_memory``.
"""

from __future__ import annotations

import torch
from _common import write_results

from sktransfer import list_backbones, resolve_backbone
from sktransfer._cache import bytes_per_image, format_bytes


def main() -> None:
    torch.set_grad_enabled(False)
    rows = []
    for name in list_backbones(modality="image"):
        try:
            net = resolve_backbone(name)
        except ImportError as exc:  # optional backends such as timm
            print(f"skipped {name}: {exc}")
            continue
        size = net.preprocessing.crop_size
        cells = [
            f"{stage} {format_bytes(bytes_per_image(net, k))}"
            for k, stage in enumerate(net.stage_names, start=1)
        ]
        rows.append(
            {"backbone": name, "input": f"{size[0]}x{size[1]}", "stages": cells}
        )
        print(f"| `{name}` | {size[0]}x{size[1]} | {', '.join(cells)} |", flush=True)
    write_results("stage_memory", {"rows": rows})


if __name__ == "__main__":
    main()
