"""The audio modality: clips of any lengths in, one list of mono waveforms per batch.

:class:`AudioModality` validates what users pass (a list of 1-D float arrays, a
2-D array of equal-length clips, paths to audio files, or a pandas Series of
either) and wraps it in an :class:`AudioSource`. Every check that needs no
decoding runs there, before any work; files are opened (header only) to check
they are readable. :meth:`AudioSource.load` decodes one batch: it reads files
with ``soundfile``, mixes stereo to mono and resamples with scipy's polyphase
filter to the rate the backbone asks for (its ``loading_size`` hint). Padding
and masks are the backbone's preprocessing
(:class:`~sktransfer.backbones._audio_frontend.AudioPreprocessing`).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..exceptions import AudioInputError
from ._source import InputSource, Modality, register_modality

__all__ = ["AudioModality", "AudioSource", "as_audio_source", "resample"]

# Rows this short are not clips: 2-D input with fewer columns looks like
# features or a spectrogram (5 ms at 16 kHz).
_MIN_CLIP_COLUMNS = 80
# A 2-D array with this few rows and many columns is probably one multichannel
# clip laid out (channels, samples), not a batch of clips.
_MAX_CHANNEL_ROWS = 2


def resample(clip: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Resample a 1-D clip from ``rate`` to ``target`` Hz (scipy's polyphase filter).

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer._inputs._audio import resample
    >>> resample(np.zeros(8000, dtype=np.float32), 8000, 16000).shape
    (16000,)
    """
    if rate == target:
        return clip
    from scipy.signal import resample_poly

    common = math.gcd(int(rate), int(target))
    out = resample_poly(clip, int(target) // common, int(rate) // common)
    return out.astype(np.float32, copy=False)


def _soundfile():
    try:
        import soundfile
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise ImportError(
            "Reading audio files needs the package soundfile: pip install soundfile"
        ) from exc
    return soundfile


class AudioSource(InputSource):
    """Validated clips (arrays or file paths), decoded one batch at a time.

    Parameters
    ----------
    clips : sequence of 1-D float arrays, or sequence of str / PathLike
        Already validated; kept by reference, never copied or modified.
    sample_rate : int
        Rate of the array clips (files carry their own).
    kind : {"array", "paths"}
        What the clips are.
    durations : sequence of float or None, default=None
        Seconds of every clip when already known (files' headers); else read
        when first needed.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer._inputs import as_audio_source
    >>> source = as_audio_source([np.zeros(800), np.zeros(1600)], sample_rate=8000)
    >>> [len(clip) for clip in source.load([1, 0], 16000)]
    [3200, 1600]
    >>> source.inference_order().tolist()
    [1, 0]
    """

    def __init__(self, clips: Sequence, sample_rate: int, kind: str, durations=None):
        self._clips = clips
        self.sample_rate = int(sample_rate)
        self.kind = kind
        # Files' durations come from the header reads that validated them.
        self._lengths = None if durations is None else np.asarray(durations, float)

    def __len__(self) -> int:
        return len(self._clips)

    def _read(self, i: int) -> tuple[np.ndarray, int]:
        if self.kind == "array":
            return np.asarray(self._clips[i], dtype=np.float32), self.sample_rate
        data, rate = _soundfile().read(
            os.fspath(self._clips[i]), dtype="float32", always_2d=True
        )
        return data.mean(axis=1), int(rate)  # stereo -> mono

    def load(self, indices, size: int | None = None) -> list[np.ndarray]:
        """Return clips ``indices`` as 1-D float32 arrays at ``size`` Hz.

        ``size`` is the backbone's rate (its preprocessing's ``loading_size``);
        None keeps the rate of the input.
        """
        if isinstance(indices, slice):
            indices = range(*indices.indices(len(self)))
        out = []
        for i in indices:
            clip, rate = self._read(int(i))
            out.append(resample(clip, rate, int(size)) if size else clip)
        return out

    def durations(self) -> np.ndarray:
        """Seconds of every clip (from the arrays, or from the files' headers)."""
        if self._lengths is None:
            if self.kind == "array":
                seconds = [len(clip) / self.sample_rate for clip in self._clips]
            else:
                info = _soundfile().info
                seconds = [info(os.fspath(path)).duration for path in self._clips]
            self._lengths = np.asarray(seconds, dtype=np.float64)
        return self._lengths

    def inference_order(self) -> np.ndarray:
        """Positions from the longest clip to the shortest (stable).

        Batches of similar lengths need little padding; callers write every
        output back at its own position.
        """
        return np.argsort(-self.durations(), kind="stable")

    def fingerprint(self) -> str:
        digest = hashlib.blake2b(
            f"audio|{self.kind}|{self.sample_rate}|{len(self)}".encode(),
            digest_size=16,
        )
        for clip in self._clips:
            if self.kind == "array":
                data = np.ascontiguousarray(clip, dtype=np.float32)
                digest.update(len(data).to_bytes(8, "little"))
                digest.update(data.tobytes())
            else:
                stat = os.stat(clip)
                digest.update(
                    f"{os.fspath(clip)}|{stat.st_size}|{stat.st_mtime_ns}|".encode()
                )
        return digest.hexdigest()


def _is_path(value: Any) -> bool:
    return isinstance(value, str | os.PathLike)


def check_sample_rate(sample_rate: Any, argument: str = "sample_rate") -> int:
    """Return ``sample_rate`` as an int, or explain what a valid one is."""
    valid = isinstance(sample_rate, int | np.integer) and not isinstance(
        sample_rate, bool
    )
    if not valid or not 1000 <= sample_rate <= 768_000:
        raise AudioInputError(
            f"{argument}={sample_rate!r} is not a sample rate; pass the rate of "
            "your array clips in Hz as an int, e.g. 16000 (files carry their own)."
        )
    return int(sample_rate)


def _check_array_clip(clip: Any, where: str) -> np.ndarray:
    """A 1-D finite float clip, or an AudioInputError saying how to make one."""
    array = np.asarray(clip)
    if array.dtype.kind in "iu":
        scale = {1: "128", 2: "32768", 4: "2**31"}.get(array.dtype.itemsize, "its")
        raise AudioInputError(
            f"{where} holds integer samples ({array.dtype}); their scale is not "
            f"stated. Convert to floats in [-1, 1] first, e.g. "
            f"clip.astype(np.float32) / {scale} for {array.dtype} PCM."
        )
    if array.dtype.kind != "f":
        raise AudioInputError(
            f"{where} has dtype {array.dtype}; audio clips are 1-D arrays of float "
            "samples in [-1, 1], or paths to audio files."
        )
    if array.ndim != 1:
        raise AudioInputError(
            f"{where} has shape {array.shape}; a clip is 1-D (mono samples). For "
            "a multichannel clip mix it to mono first, e.g. clip.mean(axis=0) for "
            "(channels, samples); a spectrogram is not accepted: pass the waveform."
        )
    if array.size == 0:
        raise AudioInputError(f"{where} is empty; every clip needs samples.")
    if not np.isfinite(array).all():
        position = int(np.flatnonzero(~np.isfinite(array))[0])
        raise AudioInputError(
            f"{where} holds NaN or inf (first at sample {position}); clean or drop "
            "that clip first."
        )
    return array


def _check_2d_batch(X: np.ndarray, argument: str) -> None:
    n_rows, n_columns = X.shape
    if n_columns < _MIN_CLIP_COLUMNS:
        raise AudioInputError(
            f"{argument} has shape {X.shape}: rows of {n_columns} values are not "
            "clips (a spectrogram or features?). Audio backbones take waveforms: "
            "a 2-D array (n_clips, n_samples), a list of 1-D clips or file paths."
        )
    if n_rows <= _MAX_CHANNEL_ROWS and n_columns >= 1000:
        raise AudioInputError(
            f"{argument} has shape {X.shape}, which looks like one clip laid out "
            "(channels, samples). Pass [X.mean(axis=0)] for one clip mixed to "
            "mono, or a list of 1-D clips, e.g. list(X), if the rows are clips."
        )


def _check_paths(paths: Sequence, argument: str) -> list[float]:
    """Read every file's header: its duration, or an error naming the file."""
    soundfile = _soundfile()
    durations = []
    for position, path in enumerate(paths):
        try:
            durations.append(soundfile.info(os.fspath(path)).duration)
        except Exception as error:
            reason = "no such file" if not os.path.exists(path) else str(error)
            raise AudioInputError(
                f"{argument}[{position}] = {os.fspath(path)!r} cannot be read as "
                f"audio ({reason}); pass paths to wav, flac or ogg files."
            ) from None
    return durations


def as_audio_source(
    X: Any, *, argument: str = "X", sample_rate: int = 16000
) -> AudioSource:
    """Validate ``X`` and wrap it in an :class:`AudioSource`; decode nothing.

    Parameters
    ----------
    X : list of 1-D float arrays, 2-D float array, list of paths, pandas Series
        One clip per sample, mono, floats in [-1, 1]; clips may differ in
        length. Paths name audio files that ``soundfile`` reads (wav, flac,
        ogg); they carry their own rate and stereo files are mixed to mono.
    argument : str, default="X"
        Name of ``X`` in error messages.
    sample_rate : int, default=16000
        Rate of the array clips in Hz.

    Returns
    -------
    source : AudioSource

    Raises
    ------
    AudioInputError
        For NaN or inf, empty clips, integer PCM (its scale is not stated),
        2-D arrays that look like one ``(channels, samples)`` clip or like
        spectrograms, 3-D arrays, unreadable files and a bad ``sample_rate``.

    Notes
    -----
    Silence is a valid clip: it gets the embedding the backbone gives silence.
    Clips shorter than a backbone's analysis window are zero-padded to it.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer._inputs import as_audio_source
    >>> as_audio_source([np.zeros(16000, dtype=np.int16)])
    Traceback (most recent call last):
    ...
    sktransfer.exceptions.AudioInputError: X[0] holds integer samples (int16)...
    """
    if isinstance(X, AudioSource):
        return X
    sample_rate = check_sample_rate(sample_rate)
    if _is_path(X):
        raise AudioInputError(
            f"{argument} is a single path; pass a list of paths, e.g. [{argument}]."
        )
    if hasattr(X, "iloc") and hasattr(X, "to_numpy"):  # pandas Series/DataFrame
        if getattr(X, "ndim", 1) != 1:
            raise AudioInputError(
                f"{argument} is a DataFrame; select the one column holding the "
                "clips or paths (df['audio'], not df[['audio']])."
            )
        X = X.to_numpy()
    if isinstance(X, np.ndarray) and X.dtype.kind not in "OUS":
        if X.ndim == 1:
            raise AudioInputError(
                f"{argument} is one 1-D array of {X.shape[0]} samples; pass a list "
                f"of clips, e.g. [{argument}], or a 2-D array (n_clips, n_samples)."
            )
        if X.ndim != 2:
            raise AudioInputError(
                f"{argument} has shape {X.shape}; audio input is 2-D (n_clips, "
                "n_samples) or a list of 1-D clips. Mix multichannel clips to mono "
                "and pass waveforms, not spectrograms."
            )
        _check_2d_batch(X, argument)
        for row in range(len(X)):
            _check_array_clip(X[row], f"{argument}[{row}]")
        return AudioSource(X, sample_rate, "array")
    if isinstance(X, np.ndarray):
        if X.ndim != 1:
            raise AudioInputError(
                f"{argument} is an object array of shape {X.shape}; pass a 1-D "
                "sequence of clips or paths."
            )
    elif not isinstance(X, list | tuple):
        raise AudioInputError(
            f"{argument} of type {type(X).__name__} is not supported; pass a list "
            "of 1-D float arrays, a 2-D array (n_clips, n_samples), a list of "
            "paths to audio files, or a pandas Series of either."
        )
    if len(X) == 0:
        raise AudioInputError(f"{argument} contains 0 clips; pass at least one.")
    paths = [_is_path(value) for value in X]
    if all(paths):
        return AudioSource(X, sample_rate, "paths", _check_paths(X, argument))
    if any(paths):
        raise AudioInputError(
            f"{argument} mixes file paths and arrays (item {paths.index(True)} is a "
            f"path, item {paths.index(False)} is not); pass one kind."
        )
    clips = [
        _check_array_clip(clip, f"{argument}[{position}]")
        for position, clip in enumerate(X)
    ]
    return AudioSource(clips, sample_rate, "array")


class AudioModality(Modality):
    """The ``"audio"`` modality: mono clips as arrays or files.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer._inputs import get_modality
    >>> source = get_modality("audio").as_source(np.zeros((3, 1600)))
    >>> source.kind, len(source)
    ('array', 3)
    """

    name = "audio"

    def as_source(
        self,
        X: Any,
        *,
        argument: str = "X",
        image_shape: tuple[int, ...] | None = None,
        sample_rate: int = 16000,
    ) -> AudioSource:
        """Wrap ``X`` with :func:`as_audio_source`; ``image_shape`` must be None."""
        if image_shape is not None:
            raise ValueError(
                f"image_shape={image_shape!r} applies to image backbones; this "
                "backbone takes audio. Leave image_shape=None."
            )
        return as_audio_source(X, argument=argument, sample_rate=sample_rate)

    def declare_input(self, input_tags, **options) -> None:
        input_tags.two_d_array = True
        input_tags.three_d_array = False


register_modality(AudioModality())
