"""Registry, stage splits and weights resolution of every backbone source."""

from __future__ import annotations

import os
import pickle
import urllib.error

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from sktransfer import list_backbones, resolve_backbone
from sktransfer.backbones import (
    BackboneSpec,
    _registry,
    get_backbone_spec,
    register_backbone,
)
from sktransfer.exceptions import WeightsError, WeightsUnavailableError

# Small inputs keep the whole-zoo test fast; ViT needs its native 224 px.
_SIZES = {"vit_b_16": 224}


def _set_attr_path(model: nn.Module, path: str, value: nn.Module) -> None:
    *parents, last = path.split(".")
    for name in parents:
        model = getattr(model, name)
    setattr(model, last, value)


def _metadata_of(name: str):
    """What the library builds, for its metadata only: on the meta device (no
    random init of a second copy, 3 s for VGG-16) where the build allows it."""
    size = _SIZES.get(name, 64)
    try:
        with torch.device("meta"):
            return resolve_backbone(name, image_size=size)
    except (RuntimeError, NotImplementedError):  # builds that read values
        return resolve_backbone(name, image_size=size)


@pytest.mark.parametrize("name", list_backbones(modality="image"))
def test_stages_reproduce_the_penultimate_output_of_the_original_model(name):
    spec = get_backbone_spec(name)
    torch.manual_seed(0)
    original = spec.build().eval()
    net = _metadata_of(name)
    # Split `original` itself so both paths share the exact same parameters.
    stages = spec.split(original)
    _set_attr_path(original, spec.head, nn.Identity())
    size = net.preprocessing.crop_size
    x = torch.randn(2, net.preprocessing.in_channels, *size)
    with torch.no_grad():
        expected = original(x)
        got = x
        for _, stage in stages:
            got = stage(got)
    assert got.shape == (2, spec.embedding_dim) == (2, net.embedding_dim)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert net.n_stages == len(stages) >= 5
    assert len(set(net.stage_names)) == net.n_stages


def test_unknown_backbone_suggests_close_names():
    with pytest.raises(ValueError, match=r"Unknown backbone 'resnet19'.*'resnet18'"):
        resolve_backbone("resnet19")


def test_unknown_weights_name_lists_the_valid_ones():
    with pytest.raises(WeightsError, match=r"'IMAGENET1K_V1'.*path"):
        resolve_backbone("resnet18", weights="IMAGENET22K")


def test_duplicate_registration_is_an_error():
    with pytest.raises(ValueError, match="already registered"):
        register_backbone(get_backbone_spec("resnet18"))


def test_registering_a_new_spec_makes_it_resolvable(monkeypatch):
    # Register into a copy of the registry, so the spec is gone after the test.
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
    spec = BackboneSpec(
        name="tiny_test_net",
        build=lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4, 2)),
        split=lambda m: [
            ("conv", m[0]),
            ("pool", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())),
        ],
        embedding_dim=4,
        head="2",
        preprocessing=get_backbone_spec("resnet18").preprocessing,
    )
    register_backbone(spec)
    assert "tiny_test_net" in list_backbones("tiny_*")
    assert resolve_backbone("tiny_test_net").stage_names == ["conv", "pool"]
    monkeypatch.undo()
    assert "tiny_test_net" not in list_backbones()
    with pytest.raises(ValueError, match="Unknown backbone 'tiny_test_net'"):
        get_backbone_spec("tiny_test_net")


def test_hub_cache_file_is_used_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    import torchvision

    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    reference = torchvision.models.resnet18()
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(reference.state_dict(), checkpoints / os.path.basename(weights.url))

    def no_network(*args, **kwargs):
        raise AssertionError("the cached file should have been used")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    net = resolve_backbone("resnet18", weights="DEFAULT")
    torch.testing.assert_close(
        net.stages.stem[0].weight, reference.conv1.weight, rtol=0, atol=0
    )
    assert net.weights == "IMAGENET1K_V1"
    assert net.preprocessing.crop_size == (224, 224)
    assert net.preprocessing.resize_size == 256


def test_missing_weights_offline_explain_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no internet")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    expected = str(tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth")
    with pytest.raises(WeightsUnavailableError) as info:
        resolve_backbone("resnet18", weights="IMAGENET1K_V1")
    assert expected in str(info.value)
    assert "TORCH_HOME" in str(info.value) and "weights=" in str(info.value)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_weights_file_round_trip(tmp_path, suffix):
    source = resolve_backbone("mobilenet_v3_small", image_size=32)
    model = get_backbone_spec("mobilenet_v3_small").build()
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        save_file(model.state_dict(), str(path))
    else:
        torch.save({"state_dict": model.state_dict()}, path)
    net = resolve_backbone("mobilenet_v3_small", weights=path, image_size=32)
    first = net.stages.stem[0].weight
    torch.testing.assert_close(first, model.features[0][0].weight, rtol=0, atol=0)
    assert not torch.equal(first, source.stages.stem[0].weight)
    assert net.weights.startswith("file:")


def test_weights_for_another_architecture_name_the_keys(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(get_backbone_spec("resnet18").build().state_dict(), path)
    with pytest.raises(WeightsError, match=r"do not fit.*(missing|unexpected) keys"):
        resolve_backbone("mobilenet_v3_small", weights=path)


def test_weights_with_wrong_shapes_are_named(tmp_path):
    state = get_backbone_spec("resnet18").build().state_dict()
    state["fc.weight"] = torch.zeros(10, 512)
    state["fc.bias"] = torch.zeros(10)
    path = tmp_path / "ten_classes.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"shape mismatches \(fc.weight"):
        resolve_backbone("resnet18", weights=path)


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/sktransfer_pwned",))


# torch warns that it meets pickle protocol 4 while it refuses the file: expected.
@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_malicious_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"state_dict": _Payload()}, handle)
    with pytest.raises(WeightsError, match="Refused to load"):
        resolve_backbone("resnet18", weights=path)
    assert not os.path.exists("/tmp/sktransfer_pwned")


def test_missing_weights_file_fails_before_building(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        resolve_backbone("resnet50", weights=tmp_path / "nope.pth")


def test_custom_module_children_become_stages_and_module_is_untouched():
    module = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 6, 3), nn.AdaptiveAvgPool2d(1)
    )
    before = {k: v.clone() for k, v in module.state_dict().items()}
    net = resolve_backbone(module, image_size=16)
    assert net.stage_names == ["0", "1", "2", "3"]
    assert net.embedding_dim == 6
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(1.0)
    for key, value in module.state_dict().items():
        assert torch.equal(value, before[key])


def test_explicit_stage_list_is_used():
    stages = [
        ("features", nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())),
        ("pool", nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())),
    ]
    net = resolve_backbone(stages, image_size=12)
    assert net.stage_names == ["features", "pool"]
    assert net.preprocessing.in_channels == 1
    assert net.embedding_dim == 4


def test_bad_backbone_type_is_explained():
    with pytest.raises(TypeError, match="'backbone' parameter must be"):
        resolve_backbone(42)


def test_shipped_backbone_is_pretrained_and_documented():
    from sktransfer.backbones._shipped import shipped_metadata

    net = resolve_backbone("fmnist_resnet", weights="DEFAULT")
    meta = shipped_metadata()
    assert net.weights == "FMNIST"
    assert meta["test_accuracy"] > 0.9
    assert len(meta["sha256"]) == 64
    # Pretrained BatchNorm statistics are far from their initial values.
    bn = net.stages.stem[1]
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))
    assert np.isfinite(bn.running_mean.numpy()).all()


class _FunctionalForward(nn.Module):
    """The PyTorch tutorial's CNN: ReLU, pooling and flatten live in forward."""

    def __init__(self, flatten: bool = True):
        super().__init__()
        self.flatten = flatten
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.fc = nn.Linear(6 * 4 * 4, 3) if flatten else nn.Conv2d(6, 3, 1)

    def forward(self, x):
        if not self.flatten:  # only ReLUs in forward: same shapes, other values
            return self.fc(torch.relu(self.conv2(torch.relu(self.conv1(x)))))
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


class _SequentialForward(_FunctionalForward):
    """Children that run in order *are* forward: accepted as they are."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
        self.fc = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.fc(self.conv2(self.conv1(x)))


@pytest.mark.parametrize(
    ("flatten", "problem"),
    [(True, "fails \\(RuntimeError"), (False, "gives other values than forward")],
)
def test_a_module_whose_forward_is_not_its_children_in_order_is_refused(
    flatten, problem
):
    module = _FunctionalForward(flatten=flatten)
    with pytest.raises(ValueError, match=problem) as caught:
        resolve_backbone(module, input_size=(16, 16))
    message = str(caught.value)
    assert "_FunctionalForward.forward" in message
    assert "conv1 -> conv2 -> fc" in message
    assert "list of (name, module) stages" in message


class _ForwardNeedsOtherInputs(_SequentialForward):
    def forward(self, x):
        raise RuntimeError("this forward takes (image, mask) pairs")


@pytest.mark.parametrize("module", [_SequentialForward, _ForwardNeedsOtherInputs])
def test_a_module_whose_forward_is_its_children_or_cannot_run_is_accepted(module):
    # Nothing to compare when forward itself refuses the dry run's images.
    net = resolve_backbone(module(), input_size=(16, 16))
    assert net.stage_names == ["conv1", "conv2", "fc"]
    assert net.training  # the dry run leaves the mode as it was


def test_estimators_refuse_a_functional_forward_before_training():
    from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor

    X = np.random.default_rng(0).random((12, 16, 16), dtype=np.float32)
    y = np.arange(12) % 3
    for estimator in (
        PretrainedFeatureExtractor(_FunctionalForward()),
        FineTuneClassifier(_FunctionalForward(), max_epochs=1),
    ):
        with pytest.raises(ValueError, match="reproduces forward"):
            estimator.fit(X, y)
        assert not hasattr(estimator, "n_features_in_")
