"""
Speaker and command recognition with pretrained speech backbones
================================================================

Clips of speech go through the same estimators as images. Two questions, two
backbones, each used for what it was pretrained on:

- *who is speaking?* ``"voice_encoder"`` (a GE2E speaker encoder) + logistic
  regression, enrolled on clean clips and tested on clips heard over a noisy
  telephone-like channel;
- *which command was said?* ``"keyword_cnn"`` (a log-mel CNN pretrained on ~300
  other English words) + logistic regression, then ``FineTuneClassifier`` with
  ``freeze`` chosen by ``GridSearchCV``.

The clips are synthesised offline with ``espeak-ng`` (``apt-get install
espeak-ng``): its voice variants play the speakers. Your own recordings go in
the same way, as a list of arrays or of file paths. Runs in about a minute on 2
CPU cores: ``./dev python examples/speech_recognition.py``.
"""

# %%
import io
import shutil
import subprocess
import time

import numpy as np
import soundfile
from scipy.signal import butter, sosfilt
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor

if shutil.which("espeak-ng") is None:
    raise SystemExit("This example synthesises speech: apt-get install espeak-ng")


def say(word: str, voice: str, rate: int = 160, pitch: int = 50):
    """One clip (float32, 22050 Hz) of ``word`` spoken by an espeak-ng voice."""
    command = ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch)]
    wav = subprocess.run([*command, "--stdout", word], capture_output=True).stdout
    samples, _ = soundfile.read(io.BytesIO(wav), dtype="float32")
    return samples


RATE = 22050  # espeak-ng's rate: the estimators resample to their backbone's

# %%
# Who is speaking? Six "speakers" (voice variants), four sentences each to
# enrol, and two other sentences heard over a band-limited, noisy line.
speakers = ["en-us+m1", "en-us+f2", "en-gb+m3", "en-gb+f4", "en-us+m7", "en-gb+f1"]
enrol = ["good morning", "the weather is nice", "see you later", "thank you"]
test = ["where is the station", "I will call you back"]
rng = np.random.default_rng(0)
line = butter(4, [300, 3400], btype="band", fs=RATE, output="sos")


def telephone(clip):
    band = sosfilt(line, clip).astype(np.float32)
    noise = rng.standard_normal(len(clip)).astype(np.float32)
    return band + noise * np.sqrt(np.mean(band**2) / 10)  # 10 dB SNR


X_enrol = [say(s, v) for v in speakers for s in enrol]
y_enrol = np.repeat(speakers, len(enrol))
X_test = [telephone(say(s, v)) for v in speakers for s in test]
y_test = np.repeat(speakers, len(test))

start = time.perf_counter()
who = make_pipeline(
    PretrainedFeatureExtractor("voice_encoder", sample_rate=RATE),
    LogisticRegression(max_iter=1000),
)
accuracy = who.fit(X_enrol, y_enrol).score(X_test, y_test)
print(f"speaker accuracy over the line: {accuracy:.2f}")
print(f"({time.perf_counter() - start:.1f} s; chance {1 / len(speakers):.2f})")

# %%
# Which command? The ten Speech Commands words, never heard by the backbone in
# pretraining: five voices to train, three others to test.
commands = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
train_voices = ["en-us+m2", "en-gb+f3", "en-us+f5", "en-gb+m5", "en-us"]
test_voices = ["en-gb-scotland+m4", "en-029+f2", "en-us-nyc+m6"]
X_train = [say(w, v) for v in train_voices for w in commands]
y_train = np.tile(commands, len(train_voices))
X_test = [say(w, v) for v in test_voices for w in commands]
y_test = np.tile(commands, len(test_voices))

start = time.perf_counter()
what = make_pipeline(
    PretrainedFeatureExtractor("keyword_cnn", sample_rate=RATE),
    LogisticRegression(max_iter=1000),
)
print(
    f"command accuracy, frozen: {what.fit(X_train, y_train).score(X_test, y_test):.2f}"
)
print(f"({time.perf_counter() - start:.1f} s; chance 0.10)")

# %%
# Fine-tuning, with the freeze depth chosen by cross-validation like any other
# hyperparameter ("all": the probe alone; 3: the last blocks train too).
start = time.perf_counter()
search = GridSearchCV(
    FineTuneClassifier("keyword_cnn", sample_rate=RATE, random_state=0),
    {"freeze": [3, "all"]},
    cv=2,
).fit(X_train, y_train)
print(f"best {search.best_params_}, test accuracy {search.score(X_test, y_test):.2f}")
print(f"({time.perf_counter() - start:.1f} s)")
