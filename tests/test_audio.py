"""Audio through both estimators: inputs, the mel front end, the GE2E encoder.

Clips are short synthetic tones in noise (two classes by pitch), so every test
runs in a second or two on a CPU with the shipped ``"voice_encoder"``.
"""

from __future__ import annotations

import importlib
import pickle
import sys
import types
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline

from sktransfer import (
    FineTuneClassifier,
    FineTuneRegressor,
    PretrainedFeatureExtractor,
    as_audio_source,
    list_backbones,
    load_model,
    save_model,
)
from sktransfer._inputs._audio import resample
from sktransfer.backbones import backbone_modality
from sktransfer.backbones._audio_frontend import (
    AudioPreprocessing,
    mel_filterbank,
    mel_spectrogram,
)
from sktransfer.backbones._voice_encoder import voice_windows
from sktransfer.exceptions import AudioInputError

RATE = 16000
FAST = {"device": "cpu"}


def _tone(freq, seconds, rng, rate=RATE):
    t = np.arange(int(seconds * rate)) / rate
    noise = 0.02 * rng.standard_normal(len(t))
    return (0.3 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


@pytest.fixture(scope="module")
def tones():
    """16 clips of 0.3-2.5 s, low (label 0) or high (label 1) pitch."""
    rng = np.random.default_rng(0)
    seconds = rng.uniform(0.3, 2.5, 16)
    y = np.arange(16) % 2
    clips = [_tone(220 if k else 880, s, rng) for k, s in zip(y, seconds)]
    return clips, y


def test_audio_backbones_are_listed_as_audio():
    assert "voice_encoder" in list_backbones(modality="audio")
    assert "voice_encoder" not in list_backbones(modality="image")
    assert backbone_modality("voice_encoder") == "audio"


def test_mel_filterbank_and_spectrogram_equal_librosa(assert_close_elsewhere):
    librosa = pytest.importorskip("librosa")
    for rate, n_fft, n_mels in [(16000, 400, 40), (22050, 512, 64)]:
        expected = librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=n_mels).T
        assert_close_elsewhere(mel_filterbank(rate, n_fft, n_mels).numpy(), expected)
    wave = _tone(440, 1.23, np.random.default_rng(1))
    expected = librosa.feature.melspectrogram(
        y=wave, sr=RATE, n_fft=400, hop_length=160, n_mels=40
    ).T
    got = mel_spectrogram(
        torch.from_numpy(wave)[None], RATE, n_fft=400, hop_length=160, n_mels=40
    )[0]
    assert got.shape == expected.shape
    assert_close_elsewhere(got.numpy(), expected)


def _resemblyzer():
    """Resemblyzer's own VoiceEncoder, or skip. Its VAD module (webrtcvad,
    compiled from source) is not needed by embed_utterance: a stand-in lets
    the package import where webrtcvad is not installed."""
    if importlib.util.find_spec("resemblyzer") is None:
        pytest.skip("Resemblyzer is not installed (./dev installs it, --no-deps)")
    if "webrtcvad" not in sys.modules and importlib.util.find_spec("webrtcvad") is None:
        sys.modules["webrtcvad"] = types.ModuleType("webrtcvad")
    pytest.importorskip("librosa")
    with warnings.catch_warnings():  # its scipy.ndimage.morphology import
        warnings.simplefilter("ignore", DeprecationWarning)
        from resemblyzer import VoiceEncoder

    return VoiceEncoder("cpu", verbose=False)


def test_voice_encoder_equals_resemblyzer_embed_utterance(
    tones, assert_close_elsewhere
):
    reference = _resemblyzer()
    clips = tones[0][:5]  # 0.3 s (padded to one window) to 2.5 s (several)
    # layer=None: the final, normalised embedding (layer="mid" is the mean of
    # the window embeddings before normalisation).
    got = PretrainedFeatureExtractor("voice_encoder", layer=None, batch_size=3, **FAST)
    got = got.fit_transform(clips)
    expected = np.stack([reference.embed_utterance(clip) for clip in clips])
    assert_close_elsewhere(got, expected, rtol=1e-4)


def test_voice_windows_follow_resemblyzer_partial_slices():
    reference = _resemblyzer()
    for n_samples in [100, 16000, 25600, 30000, 48000, 123456]:
        _, slices = reference.compute_partial_slices(n_samples, 1.3, 0.75)
        assert voice_windows(n_samples) == [s.start for s in slices]


def test_outputs_do_not_depend_on_padding_batching_or_order(tones):
    clips, _ = tones
    extractor = PretrainedFeatureExtractor("voice_encoder", layer="lstm2", **FAST)
    together = extractor.set_params(batch_size=16).fit_transform(clips)
    alone = extractor.set_params(batch_size=1).transform(clips)
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-5)
    reversed_ = extractor.set_params(batch_size=5).transform(clips[::-1])
    np.testing.assert_allclose(reversed_[::-1], together, rtol=1e-4, atol=1e-5)


def test_arrays_at_another_rate_and_files_are_resampled(tones, tmp_path):
    sf = pytest.importorskip("soundfile")
    clip = tones[0][3]
    at_8k = resample(clip, RATE, 8000)
    extractor = PretrainedFeatureExtractor("voice_encoder", **FAST).fit([clip])
    direct = extractor.transform([resample(at_8k, 8000, RATE)])
    from_8k = extractor.set_params(sample_rate=8000).transform([at_8k])
    np.testing.assert_allclose(from_8k, direct, rtol=1e-5, atol=1e-6)
    # A stereo file at 8 kHz: mixed to mono, resampled from its own rate.
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([at_8k, at_8k], axis=1), 8000, subtype="FLOAT")
    from_file = extractor.set_params(sample_rate=RATE).transform([str(path)])
    np.testing.assert_allclose(from_file, direct, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "X, message",
    [
        ([np.array([0.1, np.nan, 0.2] * 100, dtype=np.float32)], r"X\[0\].*NaN"),
        ([np.zeros(0, dtype=np.float32)], r"X\[0\] is empty"),
        ([np.zeros(16000, dtype=np.int16)], r"integer samples.*32768"),
        (np.zeros((2, 48000), dtype=np.float32), r"\(channels, samples\)"),
        (np.zeros((10, 40), dtype=np.float32), r"spectrogram"),
        (np.zeros((4, 2, 16000), dtype=np.float32), r"shape \(4, 2, 16000\)"),
        ([np.zeros((16000, 2), dtype=np.float32)], r"mix it to mono"),
        (np.zeros(16000, dtype=np.float32), r"one 1-D array"),
        ("clip.wav", r"single path"),
        (["missing.wav"], r"cannot be read as audio \(no such file\)"),
        ([], r"0 clips"),
        ([np.zeros(100, dtype=np.float32), "a.wav"], r"mixes file paths"),
    ],
)
def test_bad_audio_is_refused_before_any_work(X, message):
    with pytest.raises(AudioInputError, match=message):
        PretrainedFeatureExtractor("voice_encoder", **FAST).fit(X)


def test_unreadable_file_and_bad_sample_rate_are_refused(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    with pytest.raises(AudioInputError, match=r"notes.wav.*cannot be read"):
        as_audio_source([str(text)])
    with pytest.raises(AudioInputError, match="sample_rate=0"):
        as_audio_source([np.zeros(100, dtype=np.float32)], sample_rate=0)
    clips = [np.zeros(1600, dtype=np.float32)]
    with pytest.raises(ValueError, match="sample_rate"):
        PretrainedFeatureExtractor("voice_encoder", sample_rate=50).fit(clips)


def test_silence_and_short_clips_get_an_embedding():
    clips = [np.zeros(16000, dtype=np.float32), np.full(160, 0.1, np.float32)]
    out = PretrainedFeatureExtractor("voice_encoder", **FAST).fit_transform(clips)
    assert out.shape == (2, 256) and np.isfinite(out).all()


def test_preprocessing_pads_each_batch_and_masks_the_padding():
    batch = AudioPreprocessing(RATE, min_seconds=0.01)([np.ones(50), np.ones(300)])
    assert batch["waveform"].shape == (2, 300)
    assert batch["attention_mask"].sum(1).tolist() == [160, 300]
    assert batch["waveform"][0, 50:].abs().sum() == 0


def test_audio_in_pipeline_cross_val_and_grid_search(tones):
    clips, y = tones
    pipe = make_pipeline(
        PretrainedFeatureExtractor("voice_encoder", **FAST), LogisticRegression()
    )
    assert cross_val_score(pipe, clips, y, cv=2).mean() >= 0.9
    search = GridSearchCV(
        FineTuneClassifier("voice_encoder", max_epochs=1, random_state=0, **FAST),
        {"freeze": [3, "all"]},
        cv=2,
    ).fit(clips, y)
    assert search.best_params_["freeze"] in (3, "all")
    assert search.predict(clips).shape == (16,)


def test_cached_frozen_outputs_of_clips_of_different_lengths(tones, tmp_path):
    clips, y = tones
    params = {"freeze": 3, "max_epochs": 2, "random_state": 0, **FAST}
    cached = FineTuneClassifier("voice_encoder", cache=tmp_path, **params)
    assert cached.fit(clips, y).used_cache_
    plain = FineTuneClassifier("voice_encoder", cache_frozen=False, **params)
    plain.fit(clips, y)
    np.testing.assert_allclose(
        cached.predict_proba(clips), plain.predict_proba(clips), atol=1e-4
    )
    again = FineTuneClassifier("voice_encoder", cache=tmp_path, **params)
    np.testing.assert_allclose(
        again.fit(clips, y).predict_proba(clips), cached.predict_proba(clips)
    )


def test_fitted_audio_model_pickles_and_saves(tones, tmp_path):
    clips, y = tones
    clf = FineTuneClassifier(
        "voice_encoder", freeze=2, max_epochs=1, random_state=0, augment=True, **FAST
    ).fit(clips, y)
    expected = clf.predict_proba(clips)
    np.testing.assert_allclose(
        pickle.loads(pickle.dumps(clf)).predict_proba(clips), expected, atol=1e-6
    )
    loaded = load_model(save_model(clf, tmp_path / "model"))
    np.testing.assert_allclose(loaded.predict_proba(clips), expected, atol=1e-6)
    assert loaded.sample_rate == RATE


def test_audio_regression_predicts_pitch_and_round_trips(tmp_path):
    # A number per clip (its pitch) through the same audio path as labels.
    rng = np.random.default_rng(1)
    pitch = rng.uniform(200, 1000, 24)
    clips = [_tone(f, rng.uniform(0.4, 1.5), rng) for f in pitch]
    probe = FineTuneRegressor("keyword_cnn", freeze="all", **FAST)
    assert probe.fit(clips[:16], pitch[:16]).score(clips[16:], pitch[16:]) > 0.8
    tuned = FineTuneRegressor(
        "keyword_cnn", freeze=3, max_epochs=2, random_state=0, **FAST
    ).fit(clips[:16], pitch[:16])
    assert tuned.score(clips[16:], pitch[16:]) > 0.8
    loaded = load_model(save_model(tuned, tmp_path / "pitch"))
    np.testing.assert_allclose(
        loaded.predict(clips[16:]), tuned.predict(clips[16:]), rtol=1e-5
    )


def test_audio_augmentation_keeps_lengths_and_image_augmentations_are_refused(
    tones,
):
    clips, y = tones
    from sktransfer._audio_augment import AudioAugment

    batch = np.empty(3, dtype=object)
    batch[:] = clips[:3]
    torch.manual_seed(0)
    augmented = AudioAugment()(batch)
    assert [len(c) for c in augmented] == [len(c) for c in clips[:3]]
    assert not np.allclose(augmented[0], clips[0])
    with pytest.raises(ValueError, match="augment='crop'.*audio"):
        FineTuneClassifier("voice_encoder", augment="crop", **FAST).fit(clips, y)
    # The default ("auto") augments audio when every stage trains; with
    # frozen stages their outputs are cached instead. Images: never.
    tuned = FineTuneClassifier("keyword_cnn", freeze=0, max_epochs=1, **FAST)
    assert isinstance(tuned.fit(clips, y).module_.augment, AudioAugment)
    tuned = FineTuneClassifier("keyword_cnn", freeze=3, max_epochs=1, **FAST)
    assert tuned.fit(clips, y).module_.augment is None and tuned.used_cache_
    assert not tuned.set_params(augment=True).fit(clips, y).used_cache_
    images = np.random.default_rng(0).random((8, 8, 8))
    tuned = FineTuneClassifier("fmnist_resnet", freeze=0, max_epochs=1, **FAST)
    assert tuned.fit(images, np.arange(8) % 2).module_.augment is None


def test_audio_augmentation_band_limits_a_share_of_the_clips_as_a_telephone_would():
    from sktransfer._audio_augment import AudioAugment

    t = np.arange(16000) / 16000
    low_tone, mid_tone = np.sin(2 * np.pi * 40 * t), np.sin(2 * np.pi * 1000 * t)
    batch = np.empty(64, dtype=object)
    batch[:] = [(low_tone + mid_tone).astype(np.float32)] * 64

    def tone_powers(band_probability):
        torch.manual_seed(0)
        plain = dict(max_shift=0.0, gain_db=0.0, snr_db=(200.0, 200.0))
        out = AudioAugment(band_probability=band_probability, **plain)(batch)
        spectra = np.abs(np.fft.rfft(np.stack(out), axis=1)) / len(t)
        return spectra[:, 40], spectra[:, 1000]  # 1 Hz bins

    low, mid = tone_powers(0.0)
    np.testing.assert_allclose(low, 0.5, rtol=1e-3)  # untouched
    low, mid = tone_powers(1.0)
    # A 40 Hz hum is far below every high-pass cut-off (50-400 Hz); speech
    # frequencies pass.
    assert low.max() < 0.5 * 0.6 and mid.min() > 0.5 * 0.99
    low, _ = tone_powers(0.5)
    filtered = np.mean(low < 0.5 * 0.99)
    assert 0.25 < filtered < 0.75


def test_keyword_cnn_metadata_matches_its_weights_and_leaves_test_words_out():
    import hashlib
    from importlib import resources

    from sktransfer.backbones._keyword_cnn import keyword_cnn_metadata

    metadata = keyword_cnn_metadata()
    weights = resources.files("sktransfer._data").joinpath("keyword_cnn.safetensors")
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == metadata["sha256"]
    unseen = {"yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"}
    unseen |= {"zero", "one", "two", "three", "four", "five", "six", "seven"}
    unseen |= {"eight", "nine", "alpha", "bravo", "charlie"}
    assert not unseen & set(metadata["vocabulary"])
    assert "keyword_cnn" in list_backbones(modality="audio")


@pytest.mark.parametrize("training", [False, True])
def test_keyword_cnn_outputs_do_not_depend_on_padding(tones, training):
    from sktransfer.backbones import resolve_backbone

    net = resolve_backbone("keyword_cnn", "DEFAULT").train(training)
    prepare = net.preprocessing
    clips = [tones[0][0], tones[0][0]]  # the same clip twice: same batch stats
    batch = prepare(clips)
    longer = {key: F.pad(value, (0, 12345)) for key, value in batch.items()}
    torch.manual_seed(0)
    with torch.no_grad():
        alone, padded = net(batch), net(longer)
    np.testing.assert_allclose(alone.numpy(), padded.numpy(), rtol=1e-4, atol=1e-5)


def test_masked_batchnorm_with_every_frame_real_is_batchnorm():
    from sktransfer.backbones._keyword_cnn import MaskedBatchNorm

    x = torch.randn(3, 4, 7, 5)
    masked, plain = MaskedBatchNorm(4).train(), torch.nn.BatchNorm2d(4).train()
    out = masked(x, torch.ones(3, 1, 7, 1))
    torch.testing.assert_close(out, plain(x))
    torch.testing.assert_close(masked.running_var, plain.running_var)
    torch.testing.assert_close(masked.running_mean, plain.running_mean)


def test_fine_tuning_from_files(tones, tmp_path):
    sf = pytest.importorskip("soundfile")
    clips, y = tones
    paths = []
    for k, clip in enumerate(clips):
        paths.append(str(tmp_path / f"clip{k}.flac"))
        sf.write(paths[-1], resample(clip, RATE, 22050), 22050)
    clf = FineTuneClassifier("keyword_cnn", freeze=3, max_epochs=2, **FAST)
    clf.fit(paths, y)
    from_files = clf.predict_proba(paths)
    # Arrays at 22.05 kHz, stated: the same clips as the (lossless) files.
    at_file_rate = [resample(c, RATE, 22050) for c in clips]
    from_arrays = clf.set_params(sample_rate=22050).predict_proba(at_file_rate)
    np.testing.assert_allclose(from_files, from_arrays, atol=1e-4)
    assert clf.score(paths, y) >= 0.9


def test_domain_adaptation_on_audio(tones):
    clips, y = tones
    target = [0.5 * clip[::-1].copy() for clip in clips[:6]]  # another "domain"
    X = clips + target
    labels = np.concatenate([y, -np.ones(6, dtype=int)])
    domain = np.concatenate([np.ones(16, dtype=int), -np.ones(6, dtype=int)])
    clf = FineTuneClassifier(
        "keyword_cnn", adaptation="coral", freeze=3, max_epochs=2, **FAST
    ).fit(X, labels, sample_domain=domain)
    assert clf.predict(target).shape == (6,)
    assert set(clf.classes_) == {0, 1}


def test_keyword_cnn_keeps_its_batchnorm_statistics_unless_told(tones):
    clips, y = tones
    from sktransfer.backbones import resolve_backbone

    pretrained = resolve_backbone("keyword_cnn", "DEFAULT").state_dict()
    key = "stages.stem.norm.running_mean"
    params = {"freeze": 0, "max_epochs": 1, "random_state": 0, **FAST}
    kept = FineTuneClassifier("keyword_cnn", **params).fit(clips, y)
    torch.testing.assert_close(kept.module_.backbone.state_dict()[key], pretrained[key])
    refit = FineTuneClassifier("keyword_cnn", freeze_batchnorm=False, **params)
    refit.fit(clips, y)
    assert not torch.equal(refit.module_.backbone.state_dict()[key], pretrained[key])


@pytest.mark.parametrize(
    "estimator",
    [
        PretrainedFeatureExtractor("voice_encoder", sample_rate=8000),
        FineTuneClassifier("keyword_cnn", sample_rate=22050),
    ],
    ids=["extractor", "classifier"],
)
@pytest.mark.parametrize(
    "check",
    ["check_get_params_invariance", "check_set_params", "check_estimator_repr"],
)
def test_scikit_learn_checks_that_need_no_tabular_data(estimator, check):
    """scikit-learn's checks feed tabular rows, which are not clips; these run
    on the estimator object itself, with an audio backbone."""
    from sklearn.utils import estimator_checks

    getattr(estimator_checks, check)(type(estimator).__name__, estimator)


def test_voice_encoder_phone_embeds_a_telephone_voice_where_ge2e_embeds_it_clean():
    """Two phrases by voices held out from its training, heard over a phone."""
    import hashlib
    from importlib import resources
    from pathlib import Path

    from sktransfer.backbones._audio_frontend import band_limit
    from sktransfer.backbones._shipped import packaged_json

    metadata = packaged_json("voice_encoder_phone.json")
    weights = resources.files("sktransfer._data").joinpath(
        "voice_encoder_phone.safetensors"
    )
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == metadata["sha256"]
    assert backbone_modality("voice_encoder_phone") == "audio"
    with np.load(Path(__file__).parent / "data" / "espeak_phrases.npz") as data:
        audio, offsets = data["audio"].astype(np.float32) / 32767, data["offsets"]
    clean = [audio[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
    generator = torch.Generator().manual_seed(0)
    phone = []
    for clip in clean:  # 300-3400 Hz and noise at 10 dB SNR, three draws
        wave = torch.as_tensor(clip)[None].repeat(3, 1)
        band = band_limit(
            wave, 16000, torch.full((3, 1), 300.0), torch.full((3, 1), 3400.0)
        )
        noise = torch.randn(band.shape, generator=generator)
        noise *= band.pow(2).mean().sqrt() / 10 ** (10 / 20)
        phone += list((band + noise).numpy())

    def embed(name, clips):  # the L2-normalised GE2E embedding (layer=None)
        return PretrainedFeatureExtractor(name, layer=None).fit_transform(clips)

    reference = np.repeat(embed("voice_encoder", clean), 3, axis=0)
    ge2e = np.sum(embed("voice_encoder", phone) * reference, axis=1)
    distilled = np.sum(embed("voice_encoder_phone", phone) * reference, axis=1)
    assert distilled.min() > ge2e.max()
