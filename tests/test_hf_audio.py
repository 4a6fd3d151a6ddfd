"""Hugging Face speech encoders from local folders: stages, padding, estimators.

Tiny random models (two convolutions, two transformer layers of width 32) saved
with ``save_pretrained`` keep every test around a second on two CPU cores.
Skipped, saying why, without transformers.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

transformers = pytest.importorskip(
    "transformers", reason='needs pip install "sktransfer[text]"'
)

from sktransfer import (  # noqa: E402
    FineTuneClassifier,
    PretrainedFeatureExtractor,
    load_model,
    resolve_backbone,
    save_model,
)
from sktransfer.backbones import backbone_modality  # noqa: E402

RATE = 16000
FAST = {"device": "cpu", "batch_size": 4}
TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 37,
    "conv_dim": (16, 16),
    "conv_kernel": (10, 3),
    "conv_stride": (5, 2),
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
}
STAGES = ["feature_encoder", "projection", "layer1", "layer2", "pool"]


def _save_tiny(folder, family="Wav2Vec2", extractor=True, **options):
    """Save a tiny random ``<family>Model`` (and its feature extractor) to folder."""
    config = getattr(transformers, f"{family}Config")(**{**TINY, **options})
    torch.manual_seed(0)
    model = getattr(transformers, f"{family}Model")(config).eval()
    model.save_pretrained(folder)
    if extractor:
        transformers.Wav2Vec2FeatureExtractor(
            sampling_rate=RATE, do_normalize=True
        ).save_pretrained(folder)
    return f"hf:{folder}", model


def _tone(freq, seconds, rng):
    t = np.arange(int(seconds * RATE)) / RATE
    noise = 0.02 * rng.standard_normal(len(t))
    return (0.3 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


@pytest.fixture(scope="module")
def tones():
    """12 clips of 0.1-0.3 s, low (label 0) or high (label 1) pitch."""
    rng = np.random.default_rng(0)
    y = np.arange(12) % 2
    seconds = rng.uniform(0.1, 0.3, 12)
    return [_tone(880 if k else 220, s, rng) for k, s in zip(y, seconds)], y


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """``(name, model)``: wav2vec2 with layer-norm convolutions, stable variant."""
    return _save_tiny(
        tmp_path_factory.mktemp("wav2vec2"),
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
    )


def _mean_frames(hidden, frames):
    weights = frames[..., None].to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1)


def _stage_outputs(net, batch):
    """The outputs of every stage, in order."""
    outputs = []
    for stage in net.stages:
        batch = stage(batch)
        outputs.append(batch)
    return outputs


def assert_stages_equal_forward_clip_by_clip(net, model, clips):
    """Stages on one padded batch == the model's forward on each clip alone."""
    with torch.no_grad():
        outputs = _stage_outputs(net, net.preprocessing(clips))
        for row, clip in enumerate(clips):
            alone = net.preprocessing([clip])
            expected = model(alone["waveform"], output_hidden_states=True)
            n_frames = expected.last_hidden_state.shape[1]
            frames = outputs[0]["attention_mask"][row]
            assert frames.sum() == n_frames and frames[:n_frames].all()
            # The projection and the first layer equal the model's hidden states.
            for stage, hidden in zip(outputs[1:3], expected.hidden_states[:2]):
                got = stage["hidden_states"][row, :n_frames]
                torch.testing.assert_close(got, hidden[0], atol=1e-5, rtol=1e-5)
            mean = expected.last_hidden_state.mean(1)[0]
            torch.testing.assert_close(outputs[-1][row], mean, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------- backbone
def test_a_speech_folder_is_an_audio_backbone(tiny):
    name, _ = tiny
    net = resolve_backbone(name, "DEFAULT")
    assert net.stage_names == STAGES
    assert backbone_modality(name) == "audio" and net.modality == "audio"
    assert net.embedding_dim == 32 and net.finetune_lr == 5e-5
    # Half and two-thirds of the depth: both layer1 for two layers.
    assert net.mid_layers == ("layer1",)
    prep = net.preprocessing
    assert prep.sample_rate == RATE and prep.normalize
    # Short clips are padded to the convolutions' receptive field (20 samples).
    assert prep.min_samples == 20


@pytest.mark.parametrize(
    "options",
    [
        {"feat_extract_norm": "layer", "do_stable_layer_norm": True},
        {"feat_extract_norm": "layer", "do_stable_layer_norm": False},
        {"feat_extract_norm": "group", "do_stable_layer_norm": False},
    ],
    ids=["layer-stable", "layer", "group"],
)
def test_stages_equal_the_model_on_each_clip_alone(tmp_path, tones, options):
    name, model = _save_tiny(tmp_path, **options)
    net = resolve_backbone(name, "DEFAULT").eval()
    clips = tones[0][:5] + [tones[0][5][:37]]  # one shorter than a frame hop
    assert_stages_equal_forward_clip_by_clip(net, model, clips)


@pytest.mark.parametrize("stable", [True, False])
def test_stages_equal_the_model_on_a_masked_batch(tmp_path, tones, stable):
    # transformers supports padded batches with an attention mask for models
    # whose convolutions are layer-normalised (not for "group").
    name, model = _save_tiny(
        tmp_path, feat_extract_norm="layer", do_stable_layer_norm=stable
    )
    net = resolve_backbone(name, "DEFAULT").eval()
    with torch.no_grad():
        batch = net.preprocessing(tones[0][:6])
        out = model(batch["waveform"], attention_mask=batch["attention_mask"])
        hidden = out.last_hidden_state
        frames = model._get_feature_vector_attention_mask(
            hidden.shape[1], batch["attention_mask"]
        )
        outputs = _stage_outputs(net, batch)
    assert torch.equal(outputs[0]["attention_mask"].bool(), frames)
    torch.testing.assert_close(
        outputs[-1], _mean_frames(hidden, frames), atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize(
    "family, options",
    [
        ("Hubert", {"feat_extract_norm": "group"}),
        ("WavLM", {"feat_extract_norm": "layer", "do_stable_layer_norm": True}),
        ("Data2VecAudio", {"num_conv_pos_embeddings": 2, "conv_pos_kernel_size": 5}),
        ("UniSpeechSat", {"feat_extract_norm": "group"}),
    ],
)
def test_other_speech_families_equal_their_model(tmp_path, tones, family, options):
    name, model = _save_tiny(tmp_path, family, extractor=False, **options)
    net = resolve_backbone(name, "DEFAULT").eval()
    assert net.stage_names == STAGES
    # No preprocessor_config.json: 16 kHz, normalised clips.
    assert net.preprocessing.sample_rate == RATE and net.preprocessing.normalize
    assert_stages_equal_forward_clip_by_clip(net, model, tones[0][:4])


def test_unsupported_speech_folders_are_explained(tmp_path):
    config = {"model_type": "sew", "conv_dim": [16, 16], "hidden_size": 32}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="type 'sew', which is not supported"):
        resolve_backbone(f"hf:{tmp_path}")


# --------------------------------------------------------------- estimators
@pytest.mark.parametrize("layer", ["feature_encoder", "layer1", None])
def test_extractor_outputs_do_not_depend_on_batching_or_order(tiny, tones, layer):
    clips = tones[0]
    extractor = PretrainedFeatureExtractor(tiny[0], layer=layer, **FAST).fit(clips)
    together = extractor.transform(clips)
    assert together.shape == (12, 16 if layer == "feature_encoder" else 32)
    alone = np.concatenate([extractor.transform([clip]) for clip in clips[:4]])
    np.testing.assert_allclose(together[:4], alone, atol=1e-5)
    np.testing.assert_allclose(extractor.transform(clips[::-1]), together[::-1])


def test_extractor_equals_transformers_feature_extractor_and_model(tiny, tones):
    name, model = tiny
    folder = name[len("hf:") :]
    processor = transformers.Wav2Vec2FeatureExtractor.from_pretrained(folder)
    clips = tones[0][:4]
    with torch.no_grad():
        expected = [
            model(**processor(clip, sampling_rate=RATE, return_tensors="pt"))
            .last_hidden_state.mean(1)[0]
            .numpy()
            for clip in clips
        ]
    extractor = PretrainedFeatureExtractor(name, layer=None, **FAST).fit(clips)
    np.testing.assert_allclose(extractor.transform(clips), expected, atol=1e-5)


@pytest.mark.parametrize(
    "params",
    [
        # A probe-started head on cached frozen stages.
        {"freeze": 2},
        # Every stage trained from the raw clips, the head from random weights.
        {"head_init": "random"},
        # A probe-started head on raw clips (the default).
        {},
    ],
    ids=["cached-probe", "random-head", "defaults"],
)
def test_classifier_fits_and_predicts_clips(tiny, tones, params):
    clips, y = tones
    clf = FineTuneClassifier(
        tiny[0], max_epochs=1, random_state=0, **FAST, **params
    ).fit(clips, y)
    assert clf.layer_ == "layer1"
    assert clf.predict(clips).shape == (12,)
    assert clf.predict_proba(clips[:3]).shape == (3, 2)


def test_fitted_speech_models_pickle_and_save(tiny, tones, tmp_path):
    # The positional convolution's weight norm is a torch parametrization,
    # which refuses to pickle; the stages hold a picklable equivalent.
    clips, y = tones
    extractor = PretrainedFeatureExtractor(tiny[0], **FAST).fit(clips)
    restored = pickle.loads(pickle.dumps(extractor))
    np.testing.assert_array_equal(restored.transform(clips), extractor.transform(clips))
    clf = FineTuneClassifier(tiny[0], freeze=2, max_epochs=1, random_state=0, **FAST)
    expected = clf.fit(clips, y).predict_proba(clips)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(clips), expected)
    loaded = load_model(save_model(clf, tmp_path / "clf"))
    np.testing.assert_allclose(loaded.predict_proba(clips), expected, atol=1e-6)
