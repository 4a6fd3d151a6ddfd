"""Real and synthetic speech for the few-shot speech benchmarks.

Real recordings: the voice prompts of the Asterisk PBX, as Debian packages (fetched
at benchmark time with ``apt-get download``, never committed). Eight recording
sets by seven professional voices in five languages, all 8 kHz mono:

================  ================================  ========  ======================
speaker id        package                           format    voice (licence)
================  ================================  ========  ======================
``en-allison``    asterisk-core-sounds-en-wav       wav       Allison Smith, en-US
``es-allison``    asterisk-core-sounds-es-wav       wav       Allison Smith, es-MX
``fr-june``       asterisk-core-sounds-fr-wav       wav       June Wallack, fr-CA
``it-carlo``      asterisk-core-sounds-it-wav       wav       Carlo Flora, it-IT
``ru-ivrvoice``   asterisk-core-sounds-ru-wav       wav       ivrvoice.ru, ru-RU
``es-july``       asterisk-prompt-es-co             raw GSM   July E. Jiménez, es-CO
``fr-armelle``    asterisk-prompt-fr-armelle        raw GSM   Armelle Desjardins
``it-menardi``    asterisk-prompt-it-menardi-wav    wav       Menardi / Dal Zot
================  ================================  ========  ======================

The voices are named in each package's ``copyright`` (``LEEME`` for es-co). The
core sets are CC-BY-SA-3.0 (Russian: CC-BY-3.0), it-menardi CC-BY-SA-3.0 (IT),
es-co GPL-2, fr-armelle a BSD-style licence. Allison Smith recorded both the
English and the Mexican Spanish core set, so :data:`SPEAKER_ID_SPEAKERS` leaves
``es-allison`` out. es-co and fr-armelle exist in Debian only as raw GSM 6.10,
which ``soundfile`` decodes; the other sets are 16-bit PCM wav.

Synthetic words: ``espeak-ng`` (Debian package ``espeak-ng``) with English accents
and voice variants, split into :data:`PRETRAIN_VOICES` (for pretraining a
backbone on :data:`PRETRAIN_VOCABULARY`) and the disjoint :data:`HELDOUT_VOICES`
(for the benchmarks' few-shot pools).

Downloads and caches go to ``$SKTRANSFER_DATA`` (default ``~/.cache/sktransfer``),
as for the text data: ``asterisk/`` and ``espeak/`` there.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import NamedTuple

import numpy as np

SAMPLE_RATE = 16000

# ------------------------------------------------------------------ the speakers
PACKAGES = (
    "asterisk-core-sounds-en-wav",
    "asterisk-core-sounds-es-wav",
    "asterisk-core-sounds-fr-wav",
    "asterisk-core-sounds-it-wav",
    "asterisk-core-sounds-ru-wav",
    "asterisk-prompt-es-co",
    "asterisk-prompt-fr-armelle",
    "asterisk-prompt-it-menardi-wav",
)
SOUNDS = Path("usr/share/asterisk/sounds")


class Speaker(NamedTuple):
    """One recording set: its package, folder under :data:`SOUNDS` and voice."""

    package: str
    folder: str
    language: str
    voice: str


SPEAKERS = {
    "en-allison": Speaker(PACKAGES[0], "en_US_f_Allison", "en", "Allison Smith"),
    "es-allison": Speaker(PACKAGES[1], "es_MX_f_Allison", "es", "Allison Smith"),
    "fr-june": Speaker(PACKAGES[2], "fr_CA_f_June", "fr", "June Wallack"),
    "it-carlo": Speaker(PACKAGES[3], "it_IT_m_Carlo", "it", "Carlo Flora"),
    "ru-ivrvoice": Speaker(PACKAGES[4], "ru_RU_f_IvrvoiceRU", "ru", "ivrvoice.ru"),
    "es-july": Speaker(PACKAGES[5], "es", "es", "July E. Jiménez"),
    "fr-armelle": Speaker(PACKAGES[6], "fr", "fr", "Armelle Desjardins"),
    "it-menardi": Speaker(PACKAGES[7], "it_IT_f_Menardi", "it", "Menardi/Dal Zot"),
}
# Seven different people: Allison Smith's Spanish set would be an eighth class
# with the same voice as en-allison.
SPEAKER_ID_SPEAKERS = tuple(name for name in SPEAKERS if name != "es-allison")
# Language identification: train on one speaker per language, test on the other.
LANGUAGE_TRAIN_SPEAKERS = ("es-allison", "fr-june", "it-carlo")
LANGUAGE_TEST_SPEAKERS = ("es-july", "fr-armelle", "it-menardi")

# Tones and beeps among the prompts (the ``silence/`` folders are skipped too).
NON_SPEECH = frozenset(
    ["beep", "beeperr", "ascending-2tone", "descending-2tone"]
    + ["confbridge-join", "confbridge-leave"]
)

# ------------------------------------------------------------------- vocabulary
DIGIT_WORDS = tuple("zero one two three four five six seven eight nine".split())
"""``DIGIT_WORDS[i]`` is what ``digits/i`` of a recording set says."""

COMMAND_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
"""The ten core words of Speech Commands, kept out of pretraining."""

LETTER_WORDS = tuple("abcdefghijklmnopqrstuvwxyz")
PHONETIC_WORDS = tuple(
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
    "november oscar papa quebec romeo sierra tango uniform victor whiskey x-ray "
    "yankee zulu".split()
)
"""NATO code word of each letter: the ``word`` of ``phonetic/<letter>_p`` clips."""

# fmt: off
PRETRAIN_VOCABULARY = (
    # one syllable
    "book", "car", "fish", "milk", "bread", "chair", "door", "light", "hand", "head",
    "foot", "ship", "road", "rain", "snow", "wind", "sun", "moon", "star", "ball",
    "box", "desk", "shoe", "coat", "hat", "bag", "key", "clock", "phone", "fire",
    "rice", "meat", "cheese", "egg", "bike", "train", "plane", "boat", "shop", "bank",
    "park", "school", "word", "name", "time", "week", "year", "home", "work", "play",
    "walk", "jump", "sing", "swim", "give", "take", "find", "turn", "move", "help",
    "wait", "start", "look", "talk", "call", "ask", "smile", "laugh", "sleep", "dream",
    "think", "teach", "build", "break", "fix", "paint", "drive", "fly", "grow", "cold",
    "hot", "warm", "big", "small", "long", "short", "fast", "slow", "dark", "good",
    "bad", "new", "old", "young", "blue", "green", "red", "white", "black", "brown",
    "pink", "glass", "wood", "stone", "sand", "lunch", "spring", "heart", "mouth",
    "nose", "hair", "face", "friend", "game", "song", "dance", "bridge", "king",
    "queen", "horse", "mouse", "snake", "bear", "fox",
    # two syllables
    "apple", "water", "paper", "table", "window", "garden", "morning", "evening",
    "river", "mountain", "market", "doctor", "teacher", "children", "mother", "father",
    "sister", "brother", "people", "money", "music", "picture", "story", "number",
    "yellow", "orange", "purple", "silver", "winter", "summer", "autumn", "weather",
    "birthday", "dinner", "breakfast", "butter", "sugar", "chicken", "pepper", "lemon",
    "carrot", "button", "pocket", "jacket", "pencil", "basket", "bottle", "blanket",
    "pillow", "kitchen", "station", "airport", "island", "forest", "desert", "ocean",
    "planet", "engine", "rocket", "robot", "monkey", "rabbit", "tiger", "lion",
    "turtle", "spider", "dragon", "pizza", "cookie", "candy", "honey", "cotton",
    "hammer", "ladder", "mirror", "magnet", "guitar", "puppy", "kitten", "baby",
    "person", "problem", "question", "answer", "moment", "minute", "quiet", "simple",
    "easy", "busy", "funny", "angry", "hungry", "tired", "pretty", "clever", "gentle",
    "careful", "empty", "heavy", "narrow", "travel", "visit", "finish", "begin",
    "wonder", "enter", "borrow", "carry", "hurry", "study", "forget", "return",
    "explain", "decide", "agree", "arrive", "protect", "repeat", "giraffe",
    # three syllables
    "banana", "potato", "tomato", "animal", "elephant", "kangaroo", "computer",
    "telephone", "umbrella", "beautiful", "wonderful", "important", "holiday", "family",
    "library", "hospital", "chocolate", "strawberry", "dinosaur", "butterfly",
    "crocodile", "bicycle", "piano", "video", "radio", "camera", "energy", "history",
    "newspaper", "afternoon", "tomorrow", "together", "remember", "another", "possible",
    "difficult", "popular", "favorite", "delicious", "excellent", "terrible",
    "exercise", "medicine", "galaxy", "volcano", "tornado", "internet", "calendar",
    "magazine", "adventure", "basketball", "cinema", "gorilla", "violin",
)
# fmt: on
"""Common English words (1-3 syllables) for pretraining a spoken-word backbone.

Leaves out the Speech Commands words (core and auxiliary), digits and their
homophones ("oh", "won", "to", "for", "ate"), letter names and their homophones
("see", "you", "why", "are", ...), the NATO alphabet, and words that contain a
command word ("yesterday", "nobody", "upstairs", ...).
"""

# ------------------------------------------------------------------ the voices
ACCENTS = tuple(
    "en-us en-gb en-gb-x-rp en-gb-x-gbclan en-gb-x-gbcwmd en-us-nyc en-029 "
    "en-gb-scotland".split()
)
VARIANTS = ("", *"m1 m2 m3 m4 m5 m6 m7 f1 f2 f3 f4 f5 croak whisper".split())
"""espeak-ng voice variants (``+name``); ``""`` is the accent's own voice."""
HELDOUT_ACCENTS = ("en-029", "en-gb-scotland")
HELDOUT_VARIANTS = ("m3", "f2", "f4")


def _combine(accents: Sequence[str], variants: Sequence[str]) -> tuple[str, ...]:
    return tuple(f"{a}+{v}" if v else a for a in accents for v in variants)


PRETRAIN_VOICES = _combine(
    [a for a in ACCENTS if a not in HELDOUT_ACCENTS],
    [v for v in VARIANTS if v not in HELDOUT_VARIANTS],
)
"""72 voices: six accents x twelve variants, none held out."""
HELDOUT_VOICES = _combine(HELDOUT_ACCENTS, HELDOUT_VARIANTS)
"""6 voices (2 accents x 3 variants) sharing neither accent nor variant with
:data:`PRETRAIN_VOICES`."""


# -------------------------------------------------------------- paths and caches
def data_dir() -> Path:
    """Where downloads and caches go: ``$SKTRANSFER_DATA`` or ~/.cache/sktransfer."""
    return Path(os.environ.get("SKTRANSFER_DATA", "~/.cache/sktransfer")).expanduser()


def ensure_asterisk(cache_dir: str | os.PathLike | None = None) -> Path:
    """Download and unpack the eight Asterisk prompt packages, once.

    The ``.deb`` files are fetched with ``apt-get download`` into a temporary
    folder and extracted with ``dpkg-deb -x``; later calls find the extracted
    tree and return at once.

    Parameters
    ----------
    cache_dir : path, optional
        Where to extract; default ``data_dir() / "asterisk"``.

    Returns
    -------
    Path
        The folder; the recordings are under ``SOUNDS`` in it.
    """
    root = Path(cache_dir) if cache_dir else data_dir() / "asterisk"
    marker = root / "packages.txt"
    if marker.exists():
        return root
    missing = [tool for tool in ("apt-get", "dpkg-deb") if not shutil.which(tool)]
    if missing:
        raise RuntimeError(
            f"The speech data needs {' and '.join(missing)} (Debian/Ubuntu) to "
            f"fetch the packages {', '.join(PACKAGES)}; or extract those .deb "
            f"files into {root} by hand (dpkg-deb -x) and list them in {marker}."
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent) as tmp:
        debs = _download_debs(Path(tmp))
        staging = Path(tmp) / "tree"
        for deb in debs:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(staging)], check=True)
        (staging / marker.name).write_text("\n".join(d.name for d in debs) + "\n")
        try:
            staging.rename(root)
        except OSError:  # another process extracted it first
            if not marker.exists():
                raise
    return root


def _download_debs(folder: Path) -> list[Path]:
    command = ["apt-get", "download", *PACKAGES]
    print("fetching the speech data once:", " ".join(command), flush=True)
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(
            f"{' '.join(command)} failed (run apt-get update first?):\n"
            + done.stderr.strip()
        )
    return sorted(folder.glob("*.deb"))


# --------------------------------------------------------------------- the clips
@dataclass(frozen=True)
class Clip:
    """One recording: where it is, who says what, and how long it lasts.

    ``word`` is the digit (``"3"``), letter (``"b"``) or NATO code word
    (``"alpha"``) for those kinds, else the path under the speaker's folder
    without suffix (``"agent-pass"``, ``"digits/h-1"``).
    """

    path: Path
    speaker: str
    language: str
    kind: str  # "digit", "letter", "phonetic" or "prompt"
    word: str
    duration: float  # seconds

    def load(self, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """The waveform, float32 mono at ``sample_rate`` (:func:`read_clip`)."""
        return read_clip(self.path, sample_rate)


def load_speakers(
    speakers: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    min_duration: float = 0.0,
    cache_dir: str | os.PathLike | None = None,
) -> list[Clip]:
    """Every speech clip of the given speakers, in a fixed order.

    Parameters
    ----------
    speakers : sequence of str, optional
        Keys of :data:`SPEAKERS`; default all eight.
    kinds : sequence of str, optional
        Keep these kinds only ("digit", "letter", "phonetic", "prompt").
    min_duration : float
        Drop clips shorter than this many seconds.
    cache_dir : path, optional
        Passed to :func:`ensure_asterisk`.

    Returns
    -------
    list of Clip
        Sorted by speaker, then path. Tones, beeps and silences are left out.
    """
    sounds = ensure_asterisk(cache_dir) / SOUNDS
    clips = []
    for name in speakers or SPEAKERS:
        speaker = SPEAKERS[name]
        folder = sounds / speaker.folder
        for path in sorted(folder.rglob("*")):
            label = _kind_and_word(path.relative_to(folder))
            if label is None or (kinds and label[0] not in kinds):
                continue
            duration = _duration(path)
            if duration >= min_duration:
                clips.append(Clip(path, name, speaker.language, *label, duration))
    return clips


def _kind_and_word(relative: Path) -> tuple[str, str] | None:
    """(kind, word) of a file under a speaker's folder; None if not speech."""
    if relative.suffix not in (".wav", ".gsm") or relative.parts[0] == "silence":
        return None
    stem, parent = relative.stem.lower(), relative.parts[0]
    if stem in NON_SPEECH:
        return None
    if parent == "digits" and re.fullmatch("[0-9]", stem):
        return "digit", stem
    if parent == "letters" and re.fullmatch("[a-z]", stem):
        return "letter", stem
    phonetic = re.fullmatch("([a-z9])_p", stem)
    if parent == "phonetic" and phonetic:
        letter = phonetic.group(1)
        word = "niner" if letter == "9" else PHONETIC_WORDS[ord(letter) - ord("a")]
        return "phonetic", word
    return "prompt", relative.with_suffix("").as_posix()


def _duration(path: Path) -> float:
    if path.suffix == ".gsm":  # 33-byte frames of 160 samples at 8 kHz
        return path.stat().st_size // 33 * 160 / 8000
    import soundfile

    return soundfile.info(str(path)).duration


# --------------------------------------------------------------------- the audio
def read_clip(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read an audio file as float32 mono at ``sample_rate`` Hz.

    Raw ``.gsm`` files (GSM 6.10 at 8 kHz, no header) are decoded too; other
    files are whatever ``soundfile`` reads. Resampling is scipy's polyphase
    filter (``resample_poly``).
    """
    import soundfile

    path = Path(path)
    if path.suffix == ".gsm":
        raw = {"format": "RAW", "subtype": "GSM610", "samplerate": 8000, "channels": 1}
        data, rate = soundfile.read(path, dtype="float32", always_2d=True, **raw)
    else:
        data, rate = soundfile.read(path, dtype="float32", always_2d=True)
    return resample(data.mean(axis=1), rate, sample_rate)


def resample(waveform: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Resample a 1-D waveform from ``rate`` to ``target`` Hz, as float32."""
    if rate != target:
        from scipy.signal import resample_poly

        common = gcd(int(rate), int(target))
        waveform = resample_poly(waveform, target // common, rate // common)
    return np.asarray(waveform, dtype=np.float32)


def _fit(waveform: np.ndarray, length: int) -> np.ndarray:
    """Cut or zero-pad to ``length`` samples."""
    if len(waveform) >= length:
        return waveform[:length]
    return np.pad(waveform, (0, length - len(waveform)))


def gsm_roundtrip(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """Encode a waveform with the GSM 6.10 codec at 8 kHz and decode it again.

    Used to give clean recordings the codec of the raw-GSM recording sets, so
    the codec tells nothing about the speaker or language.
    """
    import soundfile

    narrow = np.clip(resample(waveform, sample_rate, 8000), -1.0, 1.0)
    buffer = io.BytesIO()
    soundfile.write(buffer, narrow, 8000, format="WAV", subtype="GSM610")
    buffer.seek(0)
    coded, _ = soundfile.read(buffer, dtype="float32")
    coded = np.clip(resample(coded, 8000, sample_rate), -1.0, 1.0)
    return _fit(coded, len(waveform))


def telephone(
    waveform: np.ndarray,
    sample_rate: int,
    rng: np.random.Generator,
    snr_db: float = 10.0,
    codec: str | None = "mulaw",
    band: tuple[float, float] = (300.0, 3400.0),
) -> np.ndarray:
    """A telephone line: band-pass, noise at a given SNR, then a codec.

    1. 4th-order Butterworth band-pass over ``band`` Hz (the telephone band);
    2. white noise, band-passed the same way, scaled so that the mean power of
       the filtered speech over that of the noise is ``snr_db`` (over the whole
       clip, pauses included, so the SNR while speaking is higher);
    3. ``codec``: ``"mulaw"`` quantises to 8-bit G.711 mu-law levels, ``"gsm"``
       runs :func:`gsm_roundtrip`, None keeps the samples; the result is
       clipped to [-1, 1].

    Parameters
    ----------
    waveform : 1-D array
    sample_rate : int
        Rate of ``waveform``; the output has the same rate and length.
    rng : numpy.random.Generator
        Draws the noise.
    snr_db : float
    codec : {"mulaw", "gsm", None}
    band : (low, high)

    Returns
    -------
    1-D float32 array
    """
    from scipy.signal import butter, sosfilt

    sos = butter(4, band, btype="bandpass", fs=sample_rate, output="sos")
    speech = sosfilt(sos, waveform)
    noise = sosfilt(sos, rng.standard_normal(len(waveform)))
    power = np.mean(speech**2) / max(np.mean(noise**2), 1e-20)
    line = speech + noise * np.sqrt(power / 10 ** (snr_db / 10))
    if codec == "mulaw":
        line = _mulaw(line)
    elif codec == "gsm":
        line = gsm_roundtrip(line, sample_rate)
    elif codec is not None:
        raise ValueError(f"codec must be 'mulaw', 'gsm' or None, not {codec!r}")
    return np.clip(line, -1.0, 1.0).astype(np.float32)


def no_channel(waveform: np.ndarray, sample_rate: int, rng) -> np.ndarray:
    """The clip as it was recorded (a test channel that changes nothing)."""
    return np.asarray(waveform, dtype=np.float32)


def room(
    waveform: np.ndarray,
    sample_rate: int,
    rng: np.random.Generator,
    rt60: float = 0.5,
    snr_db: float = 20.0,
) -> np.ndarray:
    """A reverberant room: a synthetic impulse response, then white noise.

    The impulse response is a direct path followed by Gaussian noise decaying
    by 60 dB over ``rt60`` seconds (a diffuse tail); the reverberant clip keeps
    the peak level of the dry one, and full-band white noise is added at
    ``snr_db`` (mean power over the whole clip).
    """
    from scipy.signal import fftconvolve

    t = np.arange(int(rt60 * sample_rate)) / sample_rate
    response = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
    response[0] = 1.0
    wet = fftconvolve(waveform, response)[: len(waveform)]
    wet *= np.max(np.abs(waveform)) / max(float(np.max(np.abs(wet))), 1e-9)
    noise = rng.standard_normal(len(wet))
    wet = wet + noise * np.sqrt(np.mean(wet**2) / 10 ** (snr_db / 10))
    return np.clip(wet, -1.0, 1.0).astype(np.float32)


def _mulaw(waveform: np.ndarray, mu: float = 255.0) -> np.ndarray:
    """Quantise to 256 mu-law levels (G.711) and expand back."""
    x = np.clip(waveform, -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    y = np.round(y * 127) / 127
    return np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu


# ------------------------------------------------------------ synthetic speech
def _espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise RuntimeError(
            "Synthetic speech needs espeak-ng: apt-get install -y espeak-ng"
        )
    return path


def synthesize(
    word: str,
    voice: str,
    rate: int = 175,
    pitch: int = 50,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Say ``word`` with espeak-ng; float32 mono at ``sample_rate`` Hz.

    Runs ``espeak-ng -v VOICE -s RATE -p PITCH --stdout WORD`` (a 22,050 Hz wav
    on stdout). ``rate`` is in words per minute, ``pitch`` in 0-99.
    """
    import soundfile

    command = [_espeak(), "-v", voice, "-s", str(rate), "-p", str(pitch)]
    wav = subprocess.run(
        [*command, "--stdout", word], capture_output=True, check=True
    ).stdout
    data, rate_in = soundfile.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    return resample(data.mean(axis=1), rate_in, sample_rate)


def voice_variants(
    languages: Sequence[str] = ACCENTS,
    variants: Sequence[str] = VARIANTS,
    split: str | None = None,
) -> list[str]:
    """espeak-ng voices ``accent+variant`` that this espeak-ng has, in order.

    Parameters
    ----------
    languages : sequence of str
        English voices, i.e. accents (``espeak-ng --voices=en``).
    variants : sequence of str
        Variant files (``espeak-ng --voices=variant``); ``""`` for none.
    split : {None, "pretrain", "heldout"}
        ``"pretrain"`` drops :data:`HELDOUT_ACCENTS` and
        :data:`HELDOUT_VARIANTS`; ``"heldout"`` keeps only those.

    Returns
    -------
    list of str
    """
    accents = list(languages)
    if split == "pretrain":
        accents = [a for a in accents if a not in HELDOUT_ACCENTS]
        variants = [v for v in variants if v not in HELDOUT_VARIANTS]
    elif split == "heldout":
        accents = [a for a in accents if a in HELDOUT_ACCENTS]
        variants = [v for v in variants if v in HELDOUT_VARIANTS]
    elif split is not None:
        raise ValueError(f"split must be None, 'pretrain' or 'heldout': {split!r}")
    have_accents = _espeak_voices("en", column=1)
    have_variants = {""} | {f.split("/")[-1] for f in _espeak_voices("variant", 4)}
    accents = [a for a in accents if a in have_accents]
    return list(_combine(accents, [v for v in variants if v in have_variants]))


def _espeak_voices(language: str, column: int) -> set[str]:
    """One column of the table that ``espeak-ng --voices=LANGUAGE`` prints."""
    listing = subprocess.run(
        [_espeak(), f"--voices={language}"], capture_output=True, text=True, check=True
    ).stdout
    return {
        fields[column]
        for fields in (line.split() for line in listing.splitlines()[1:])
        if len(fields) > column
    }


def synthetic_words(
    words: Sequence[str],
    voices: Sequence[str],
    rates: Sequence[int] = (140, 175, 210),
    pitches: Sequence[int] = (35, 50, 70),
    seed: int | None = 0,
    cache_dir: str | os.PathLike | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Every word said by every voice at every rate and pitch (espeak-ng).

    Clips are made by at most two processes and cached as one ``.npz`` per
    argument set (16-bit), so a second call only reads the file.

    Parameters
    ----------
    words, voices : sequence of str
        What to say and who says it (see :func:`voice_variants`).
    rates, pitches : sequence of int
        espeak-ng ``-s`` (words per minute) and ``-p`` (0-99) settings.
    seed : int or None
        Jitters each clip's rate by up to +-10 wpm and pitch by up to +-5,
        reproducibly; None uses the settings as given.
    cache_dir : path, optional
        Default ``data_dir() / "espeak"``.
    sample_rate : int

    Returns
    -------
    waveforms : list of 1-D float32 arrays
        Ordered by word, then voice, rate and pitch.
    labels : array of str
        The word of each clip.
    """
    jobs = _synthesis_jobs(words, voices, rates, pitches, seed, sample_rate)
    key = json.dumps([jobs, _espeak_version()]).encode()
    folder = Path(cache_dir) if cache_dir else data_dir() / "espeak"
    path = folder / f"words-{hashlib.sha256(key).hexdigest()[:16]}.npz"
    if path.exists():
        return _read_cache(path)
    if len(jobs) < 32:
        clips = [_synthesize_job(job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
            clips = list(pool.map(_synthesize_job, jobs, chunksize=16))
    labels = np.array([job[0] for job in jobs])
    _write_cache(path, clips, labels)
    return clips, labels


def _synthesis_jobs(words, voices, rates, pitches, seed, sample_rate) -> list[tuple]:
    """(word, voice, rate, pitch, sample_rate) of each clip, jittered by ``seed``."""
    grid = [
        (w, v, int(r), int(p))
        for w in words
        for v in voices
        for r in rates
        for p in pitches
    ]
    if seed is None:
        return [(*job, sample_rate) for job in grid]
    rng = np.random.default_rng(seed)
    d_rate = rng.integers(-10, 11, len(grid))
    d_pitch = rng.integers(-5, 6, len(grid))
    return [
        (w, v, r + int(dr), int(np.clip(p + dp, 0, 99)), sample_rate)
        for (w, v, r, p), dr, dp in zip(grid, d_rate, d_pitch)
    ]


def _synthesize_job(job: tuple) -> np.ndarray:
    word, voice, rate, pitch, sample_rate = job
    return synthesize(word, voice, rate, pitch, sample_rate)


def _espeak_version() -> str:
    done = subprocess.run([_espeak(), "--version"], capture_output=True, text=True)
    return done.stdout.split(" Data")[0].strip()


def _write_cache(path: Path, clips: list[np.ndarray], labels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = np.concatenate(clips) if clips else np.zeros(0, np.float32)
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
    offsets = np.cumsum([0] + [len(clip) for clip in clips])
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, audio=pcm, offsets=offsets, labels=labels)
    tmp.replace(path)


def _read_cache(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    with np.load(path) as data:
        audio = data["audio"].astype(np.float32) / 32767
        offsets, labels = data["offsets"], data["labels"]
    clips = [audio[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
    return clips, labels


# --------------------------------------------------------------------- the tasks
class SpeechTask(NamedTuple):
    """A few-shot task: a labelled pool to draw training clips from, a test set.

    Unpacks as ``X_pool, y_pool, X_test, y_test, meta``. Clips are 1-D float32
    arrays at ``meta["sample_rate"]``.
    """

    X_pool: list[np.ndarray]
    y_pool: np.ndarray
    X_test: list[np.ndarray]
    y_test: np.ndarray
    meta: dict

    def subsample(self, k: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
        """``k`` pool clips of each class, drawn with ``seed`` (:func:`few_shot`)."""
        chosen = few_shot(self.y_pool, k, seed)
        return [self.X_pool[i] for i in chosen], self.y_pool[chosen]


def few_shot(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Positions of ``k`` random clips of each class in ``labels``, sorted."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    picks = [
        rng.choice(np.flatnonzero(labels == label), k, replace=False)
        for label in np.unique(labels)
    ]
    return np.sort(np.concatenate(picks))


def _cap(clips: list[Clip], key, per_class: int, rng) -> list[Clip]:
    """At most ``per_class`` clips of each ``key(clip)``, drawn with ``rng``."""
    kept = []
    for label in sorted({key(clip) for clip in clips}):
        group = [clip for clip in clips if key(clip) == label]
        if len(group) > per_class:
            order = np.sort(rng.choice(len(group), per_class, replace=False))
            group = [group[i] for i in order]
        kept += group
    return kept


def _split_texts(clips: list[Clip], rng) -> tuple[set[str], set[str]]:
    """Split the prompt names in two random halves (pool texts, test texts)."""
    names = np.array(sorted({clip.word for clip in clips}))
    order = rng.permutation(len(names))
    half = len(names) // 2
    return set(names[order[:half]]), set(names[order[half:]])


def _load(
    clips: list[Clip], sample_rate: int, max_seconds: float, equalize_codec: bool
) -> list[np.ndarray]:
    """Waveforms of ``clips``, cut to ``max_seconds``, GSM-coded if asked."""
    out = []
    for clip in clips:
        waveform = clip.load(sample_rate)[: int(max_seconds * sample_rate)]
        if equalize_codec and clip.path.suffix != ".gsm":
            waveform = gsm_roundtrip(waveform, sample_rate)
        out.append(waveform)
    return out


def _prompt_task(
    pool: list[Clip],
    test: list[Clip],
    key,
    sizes: tuple[int, int],
    rng,
    load_args: tuple[int, float, bool],
) -> tuple[list, np.ndarray, list, np.ndarray, dict]:
    """Cap, load and label the pool and test clips of a prompt task."""
    pool, test = _cap(pool, key, sizes[0], rng), _cap(test, key, sizes[1], rng)
    labels_pool = np.array([key(clip) for clip in pool])
    labels_test = np.array([key(clip) for clip in test])
    files = {
        "pool_files": [str(clip.path) for clip in pool],
        "test_files": [str(clip.path) for clip in test],
    }
    X_pool, X_test = _load(pool, *load_args), _load(test, *load_args)
    return X_pool, labels_pool, X_test, labels_test, files


def speaker_id_task(
    speakers: Sequence[str] = SPEAKER_ID_SPEAKERS,
    pool_per_class: int = 60,
    test_per_class: int = 100,
    snr_db: float = 10.0,
    min_seconds: float = 0.4,
    max_seconds: float = 4.0,
    equalize_codec: bool = True,
    seed: int = 0,
    sample_rate: int = SAMPLE_RATE,
    cache_dir: str | os.PathLike | None = None,
    channel=None,
) -> SpeechTask:
    """Speaker identification: enrol on clean prompts, recognise over the phone.

    Classes are the speakers (:data:`SPEAKER_ID_SPEAKERS`: seven people in five
    languages). The prompt names are split at random in two halves: the pool
    holds each speaker's prompts of the first half, the test set those of the
    second, so no file and no sentence is in both. Test clips go through
    :func:`telephone` at ``snr_db``. Clips shorter than ``min_seconds`` are
    dropped, longer than ``max_seconds`` cut.

    Parameters
    ----------
    speakers : sequence of str
    pool_per_class, test_per_class : int
        Caps on clips per speaker (each speaker has ~80-180 prompts per half).
    snr_db : float
    min_seconds, max_seconds : float
    equalize_codec : bool
        GSM-code the wav recordings too (:func:`gsm_roundtrip`), so the codec
        does not give away the two raw-GSM speakers.
    seed : int
        Fixes the text split, the caps and the telephone noise.
    sample_rate : int
    cache_dir : path, optional
        Passed to :func:`ensure_asterisk`.
    channel : callable, optional
        ``channel(waveform, sample_rate, rng)`` replaces :func:`telephone` for
        the test clips (``snr_db`` is then unused); :func:`no_channel` keeps
        them clean.

    Returns
    -------
    SpeechTask
    """
    rng = np.random.default_rng(seed)
    if channel is None:
        channel = functools.partial(telephone, snr_db=snr_db)
    clips = load_speakers(speakers, ("prompt",), min_seconds, cache_dir)
    pool_texts, test_texts = _split_texts(clips, rng)
    X_pool, y_pool, X_test, y_test, files = _prompt_task(
        [clip for clip in clips if clip.word in pool_texts],
        [clip for clip in clips if clip.word in test_texts],
        lambda clip: clip.speaker,
        (pool_per_class, test_per_class),
        rng,
        (sample_rate, max_seconds, equalize_codec),
    )
    X_test = [channel(x, sample_rate, rng) for x in X_test]
    meta = {
        "task": "speaker identification, clean enrolment, telephone test",
        "classes": list(speakers),
        "sample_rate": sample_rate,
        "snr_db": snr_db,
        **files,
    }
    return SpeechTask(X_pool, y_pool, X_test, y_test, meta)


def language_id_task(
    train_speakers: Sequence[str] = LANGUAGE_TRAIN_SPEAKERS,
    test_speakers: Sequence[str] = LANGUAGE_TEST_SPEAKERS,
    pool_per_class: int = 60,
    test_per_class: int = 200,
    disjoint_texts: bool = True,
    min_seconds: float = 0.4,
    max_seconds: float = 4.0,
    equalize_codec: bool = True,
    seed: int = 0,
    sample_rate: int = SAMPLE_RATE,
    cache_dir: str | os.PathLike | None = None,
) -> SpeechTask:
    """Spoken language identification across speakers (es, fr, it).

    The pool holds prompts of ``train_speakers``, the test set prompts of
    ``test_speakers`` (by default the other speaker of each language); labels
    are the languages. With ``disjoint_texts`` the prompt names are split in two
    random halves, pool and test taking one each, so the test sentences were
    not heard in training either. Clip lengths and codec as in
    :func:`speaker_id_task`.

    Parameters
    ----------
    train_speakers, test_speakers : sequence of str
        Disjoint; every test language needs a training speaker.
    pool_per_class, test_per_class : int
    disjoint_texts : bool
    min_seconds, max_seconds : float
    equalize_codec : bool
    seed : int
    sample_rate : int
    cache_dir : path, optional

    Returns
    -------
    SpeechTask
    """
    languages = sorted({SPEAKERS[name].language for name in train_speakers})
    if set(train_speakers) & set(test_speakers) or any(
        SPEAKERS[name].language not in languages for name in test_speakers
    ):
        raise ValueError("test speakers must be new voices of the training languages")
    rng = np.random.default_rng(seed)
    speakers = [*train_speakers, *test_speakers]
    clips = load_speakers(speakers, ("prompt",), min_seconds, cache_dir)
    pool_texts, test_texts = _split_texts(clips, rng)
    if not disjoint_texts:
        pool_texts = test_texts = pool_texts | test_texts
    X_pool, y_pool, X_test, y_test, files = _prompt_task(
        [c for c in clips if c.speaker in train_speakers and c.word in pool_texts],
        [c for c in clips if c.speaker in test_speakers and c.word in test_texts],
        lambda clip: clip.language,
        (pool_per_class, test_per_class),
        rng,
        (sample_rate, max_seconds, equalize_codec),
    )
    meta = {
        "task": "language identification, new speakers at test time",
        "classes": languages,
        "train_speakers": list(train_speakers),
        "test_speakers": list(test_speakers),
        "sample_rate": sample_rate,
        **files,
    }
    return SpeechTask(X_pool, y_pool, X_test, y_test, meta)


WORD_SETS = {
    # name: (kind of the real clips, label of a clip's word, words to synthesise)
    "digits": ("digit", lambda word: DIGIT_WORDS[int(word)], DIGIT_WORDS),
    "letters": ("letter", lambda word: word, LETTER_WORDS),
    "phonetic": ("phonetic", lambda word: word, PHONETIC_WORDS),
}


def spoken_word_task(
    word_set: str = "digits",
    voices: Sequence[str] = HELDOUT_VOICES,
    speakers: Sequence[str] = ("en-allison",),
    pool_per_class: int = 60,
    phone_copies: int = 4,
    snr_range: tuple[float, float] = (5.0, 20.0),
    seed: int = 0,
    sample_rate: int = SAMPLE_RATE,
    cache_dir: str | os.PathLike | None = None,
    synth_cache_dir: str | os.PathLike | None = None,
) -> SpeechTask:
    """Spoken words: train on synthetic voices, test on a real speaker.

    The pool is :func:`synthetic_words` of ``voices`` (by default
    :data:`HELDOUT_VOICES`, never used in pretraining) at three rates and three
    pitches; the test set is the real recordings of the English ``speakers``
    (Debian has one: Allison Smith), each once clean and ``phone_copies`` times
    through :func:`telephone` at an SNR drawn from ``snr_range``.
    ``meta["test_recording"]`` names the recording behind each test clip: there
    are only 10 (digits) or 26 (letters, phonetic) different ones.

    Parameters
    ----------
    word_set : {"digits", "letters", "phonetic"}
        Labels ``DIGIT_WORDS`` ("zero"...), ``LETTER_WORDS`` ("a"...) or
        ``PHONETIC_WORDS`` ("alpha"...).
    voices : sequence of str
    speakers : sequence of str
        English keys of :data:`SPEAKERS`.
    pool_per_class : int
        Cap on synthetic clips per word (6 voices x 9 settings = 54 by default).
    phone_copies : int
    snr_range : (low, high)
        In dB.
    seed : int
        Fixes the cap and the telephone noise (the synthesis uses seed 0).
    sample_rate : int
    cache_dir, synth_cache_dir : path, optional
        For :func:`ensure_asterisk` and :func:`synthetic_words`.

    Returns
    -------
    SpeechTask
    """
    kind, label_of, words = WORD_SETS[word_set]
    rng = np.random.default_rng(seed)
    X_pool, y_pool = synthetic_words(  # one pool whatever the seed: cached once
        words, voices, seed=0, cache_dir=synth_cache_dir, sample_rate=sample_rate
    )
    keep = few_shot(y_pool, min(pool_per_class, len(y_pool) // len(words)), seed)
    X_pool, y_pool = [X_pool[i] for i in keep], y_pool[keep]
    clips = load_speakers(speakers, (kind,), cache_dir=cache_dir)
    clips = [clip for clip in clips if label_of(clip.word) in words]  # no "niner"
    X_test, y_test, recordings = [], [], []
    for clip in clips:
        clean = clip.load(sample_rate)
        snrs = rng.uniform(*snr_range, phone_copies)
        X_test += [clean] + [telephone(clean, sample_rate, rng, s) for s in snrs]
        y_test += [label_of(clip.word)] * (1 + phone_copies)
        recordings += [str(clip.path)] * (1 + phone_copies)
    meta = {
        "task": f"spoken {word_set}: synthetic voices to a real speaker",
        "classes": list(words),
        "voices": list(voices),
        "speakers": list(speakers),
        "sample_rate": sample_rate,
        "test_recording": recordings,
    }
    return SpeechTask(X_pool, y_pool, X_test, np.array(y_test), meta)


def synthetic_word_task(
    words: Sequence[str] = COMMAND_WORDS,
    voices: Sequence[str] = HELDOUT_VOICES,
    snr_db: float | None = None,
    seed: int = 0,
    sample_rate: int = SAMPLE_RATE,
    synth_cache_dir: str | os.PathLike | None = None,
) -> SpeechTask:
    """Held-out words, all synthetic: the pool and test set use different voices.

    Every other voice of ``voices`` (``voices[::2]``) makes the pool, the others
    the test set (with the defaults each side has both held-out accents and
    27 clips per word). ``snr_db`` sends the test clips through
    :func:`telephone`.

    Parameters
    ----------
    words : sequence of str
        Default :data:`COMMAND_WORDS`, which pretraining never saw.
    voices : sequence of str
    snr_db : float or None
    seed : int
        Fixes the telephone noise (the synthesis uses seeds 0 and 1, so the
        clips are made and cached once).
    sample_rate : int
    synth_cache_dir : path, optional

    Returns
    -------
    SpeechTask
    """
    pool_voices, test_voices = list(voices[::2]), list(voices[1::2])
    X_pool, y_pool = synthetic_words(
        words,
        pool_voices,
        seed=0,
        cache_dir=synth_cache_dir,
        sample_rate=sample_rate,
    )
    X_test, y_test = synthetic_words(
        words,
        test_voices,
        seed=1,
        cache_dir=synth_cache_dir,
        sample_rate=sample_rate,
    )
    if snr_db is not None:
        rng = np.random.default_rng(seed)
        X_test = [telephone(x, sample_rate, rng, snr_db) for x in X_test]
    meta = {
        "task": "held-out words, synthetic voices not seen in the pool",
        "classes": list(words),
        "pool_voices": pool_voices,
        "test_voices": test_voices,
        "sample_rate": sample_rate,
    }
    return SpeechTask(X_pool, y_pool, X_test, y_test, meta)
