"""A pickle-free on-disk store of frozen-stage outputs: :class:`FrozenOutputCache`.

Each entry is one directory named by the SHA-256 of its key (a JSON document:
fingerprint of the frozen parameters, stop stages, preprocessing, input content,
storage dtype), in the format of ``_cache_entry.py``: raw ``.npy`` arrays, read
with ``allow_pickle=False``, and a JSON sidecar. Nothing in the directory is ever
unpickled: whoever can write there can change what is read, but cannot run code
in the readers.

An entry is written into a temporary directory next to its final name and
renamed into place, so concurrent workers never see a half-written one; when the
name is already taken by a valid entry, that one is kept. Anything under an
entry's name that is not a valid entry of this format is ignored with a warning
and replaced. Reads touch the sidecar, so its mtime is the entry's last use,
which orders the size-bounded eviction.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from numbers import Integral
from typing import NamedTuple

import joblib
import numpy as np

from ._cache_entry import (
    SIDECAR,
    InvalidEntry,
    canonical,
    check_entry,
    read_sidecar,
    touch,
    write_entry,
)

__all__ = ["CacheEntry", "FrozenOutputCache", "as_cache"]

# Entries are named by the SHA-256 of their key; writes in progress (.tmp-) and
# entries being deleted (.del-) are temporaries.
_ENTRY = re.compile(r"[0-9a-f]{64}")
_TEMPORARY = re.compile(r"\.(tmp|del)-[0-9a-f]{64}-[a-z0-9_]+")


class CacheEntry(NamedTuple):
    """One entry of a :class:`FrozenOutputCache`, as :meth:`~FrozenOutputCache.entries`
    lists it."""

    path: str
    nbytes: int
    last_used: float
    key: dict | None


def _digest(key: Mapping) -> str:
    return hashlib.sha256(canonical(key).encode()).hexdigest()


def _tree_bytes(path: str) -> int:
    if os.path.islink(path) or not os.path.isdir(path):
        return os.lstat(path).st_size
    return sum(e.stat(follow_symlinks=False).st_size for e in os.scandir(path))


def _remove(path: str) -> None:
    """Delete a file, link or directory tree; already gone is fine."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _discard(path: str) -> None:
    """Delete the entry at ``path`` (or whatever took its name).

    It is first renamed aside, so readers see it whole or not at all; an entry
    another process deleted meanwhile is fine.
    """
    root, name = os.path.split(path)
    trash = os.path.join(root, f".del-{name}-{secrets.token_hex(4)}")
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return
    except OSError:
        trash = path
    _remove(trash)


class FrozenOutputCache:
    """A directory of frozen-stage outputs, stored without pickle.

    Pass it (or just the directory path) as ``cache=`` to
    :class:`FineTuneClassifier` and :class:`PretrainedFeatureExtractor`. Entries
    are raw ``.npy`` arrays plus a JSON sidecar, one directory per entry named by
    a hash of its key; nothing is ever unpickled, and anything under an entry's
    name that is not a valid entry is ignored (with a warning) and recomputed.
    Writes are atomic, so several processes can share the directory.

    Parameters
    ----------
    directory : str or path
        Where the entries live; created on the first write. Other files kept
        there are left alone.
    max_bytes : int or None, default=None
        Bound on the entries' total size on disk. After each write, the least
        recently used entries are deleted until the total is within it; the
        entry just written is always kept, even when it alone exceeds the
        bound. None keeps everything.

    See Also
    --------
    FineTuneClassifier : its ``cache_max_bytes`` bounds one fit's outputs in
        memory; ``max_bytes`` here bounds the directory.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn.datasets import load_digits
    >>> from sktransfer import FrozenOutputCache, PretrainedFeatureExtractor
    >>> X = load_digits().images[:20] / 16.0
    >>> cache = FrozenOutputCache(tempfile.mkdtemp(), max_bytes=2**20)
    >>> extractor = PretrainedFeatureExtractor(
    ...     "fmnist_resnet", layer="mid", device="cpu", cache=cache
    ... )
    >>> extractor.fit_transform(X).shape
    (20, 1536)
    >>> len(cache.entries()), cache.size() > 0
    (1, True)
    >>> cache.clear()
    >>> cache.size()
    0
    """

    def __init__(self, directory, max_bytes=None):
        if not isinstance(directory, str | os.PathLike):
            raise TypeError(
                "The 'directory' parameter of FrozenOutputCache must be a str or "
                f"path; got {directory!r} instead."
            )
        if max_bytes is not None and (
            not isinstance(max_bytes, Integral)
            or isinstance(max_bytes, bool)
            or max_bytes < 0
        ):
            raise ValueError(
                "The 'max_bytes' parameter of FrozenOutputCache must be None or an "
                f"int >= 0; got {max_bytes!r} instead. For example, "
                "max_bytes=10 * 2**30 keeps at most 10 GiB."
            )
        self.directory = directory
        self.max_bytes = max_bytes

    def __repr__(self) -> str:
        return (
            f"FrozenOutputCache({os.fspath(self.directory)!r}, "
            f"max_bytes={self.max_bytes!r})"
        )

    @property
    def _root(self) -> str:
        return os.fspath(self.directory)

    def _names(self, pattern: re.Pattern) -> list[str]:
        try:
            names = os.listdir(self._root)
        except FileNotFoundError:
            return []
        return sorted(name for name in names if pattern.fullmatch(name))

    def entries(self) -> list[CacheEntry]:
        """The stored entries, least recently used first.

        Returns
        -------
        entries : list of CacheEntry
            Named tuples ``(path, nbytes, last_used, key)``: the entry's
            directory, its size on disk in bytes, when it was last written or
            read (seconds since the epoch) and its key (None when its sidecar
            cannot be read; such an entry is replaced when next needed).
        """
        found = []
        for name in self._names(_ENTRY):
            path = os.path.join(self._root, name)
            try:
                nbytes = _tree_bytes(path)
                sidecar = os.path.join(path, SIDECAR)
                used = os.lstat(sidecar if os.path.isfile(sidecar) else path).st_mtime
            except FileNotFoundError:  # deleted by another process meanwhile
                continue
            try:
                key = read_sidecar(path).get("key")
            except (InvalidEntry, OSError, ValueError, RecursionError):
                key = None
            found.append(CacheEntry(path, nbytes, used, key))
        return sorted(found, key=lambda entry: entry.last_used)

    def size(self) -> int:
        """Total size on disk of the entries.

        Returns
        -------
        nbytes : int
            The sum of :meth:`entries`' sizes, in bytes.
        """
        return sum(entry.nbytes for entry in self.entries())

    def clear(self) -> None:
        """Delete every entry and leftover temporary; other files stay.

        Only names this format uses (64 hexadecimal digits, and temporaries
        starting with ``.tmp-`` or ``.del-``) are deleted. Entries that
        ``joblib.Memory`` wrote (under ``joblib/``) are not touched.
        """
        for name in self._names(_ENTRY):
            _discard(os.path.join(self._root, name))
        for name in self._names(_TEMPORARY):
            _remove(os.path.join(self._root, name))

    # ----------------------------------------------------- used by _cache
    def _read(self, key: Mapping) -> dict[str, np.ndarray] | None:
        """The arrays stored for ``key``, or None (absent or invalid: warned)."""
        path = os.path.join(self._root, _digest(key))
        if not os.path.lexists(path):
            return None
        try:
            arrays = check_entry(path, key, load=True)
        except InvalidEntry as exc:
            if os.path.lexists(path):  # else: evicted meanwhile, a plain miss
                warnings.warn(
                    f"Ignoring {exc.path!r} in the frozen-output cache: "
                    f"{exc.reason}. sktransfer never unpickles cache files; the "
                    "entry is recomputed and replaced.",
                    UserWarning,
                    stacklevel=4,
                )
            return None
        try:
            touch(os.path.join(path, SIDECAR))  # last use, for eviction
        except OSError:
            pass  # a read-only cache
        return arrays

    def _write(self, key: Mapping, arrays: Mapping[str, np.ndarray]) -> None:
        """Store ``arrays`` for ``key`` atomically, then evict beyond the bound."""
        digest = _digest(key)
        try:
            os.makedirs(self._root, exist_ok=True)
            tmp = tempfile.mkdtemp(prefix=f".tmp-{digest}-", dir=self._root)
        except OSError as exc:
            warnings.warn(f"Not caching frozen outputs: {exc}", stacklevel=4)
            return
        try:
            write_entry(tmp, key, arrays)
            self._publish(tmp, os.path.join(self._root, digest), key)
        except OSError as exc:
            warnings.warn(f"Not caching frozen outputs: {exc}", stacklevel=4)
        finally:
            if os.path.lexists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
        if self.max_bytes is not None:
            self._evict(keep=os.path.join(self._root, digest))

    def _forget(self, key: Mapping) -> str:
        """Delete the entry for ``key``; return its path."""
        path = os.path.join(self._root, _digest(key))
        _discard(path)
        return path

    def _publish(self, tmp: str, final: str, key: Mapping) -> None:
        """Rename ``tmp`` to ``final``, unless a valid entry got there first."""
        try:
            os.rename(tmp, final)
            return
        except OSError:
            pass
        try:
            check_entry(final, key, load=False)
            return  # another worker stored the same entry: keep it
        except InvalidEntry:
            _discard(final)
        try:
            os.rename(tmp, final)
        except OSError:
            pass  # yet another worker won the race; theirs is kept

    def _evict(self, keep: str) -> None:
        entries = self.entries()
        total = sum(entry.nbytes for entry in entries)
        for entry in entries:
            if total <= self.max_bytes:
                break
            if entry.path != keep:
                _discard(entry.path)
                total -= entry.nbytes


def as_cache(cache) -> FrozenOutputCache | None:
    """The estimators' ``cache`` parameter as a :class:`FrozenOutputCache` or None.

    A ``joblib.Memory`` stands for its ``location`` directory (None when it has
    none), in this pickle-free format; joblib's own entries are never read.
    """
    if cache is None or isinstance(cache, FrozenOutputCache):
        return cache
    if isinstance(cache, joblib.Memory):
        location = cache.location
        return None if location is None else FrozenOutputCache(location)
    if isinstance(cache, str | os.PathLike):
        return FrozenOutputCache(cache)
    raise TypeError(
        "The 'cache' parameter must be None, a directory path, a "
        f"FrozenOutputCache or a joblib.Memory; got {type(cache).__name__} "
        "instead. Pass cache='some/dir' to keep frozen outputs there."
    )
