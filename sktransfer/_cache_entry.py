"""One entry of the frozen-output cache on disk: its format, written and checked.

An entry is a directory holding one raw ``.npy`` file per array and a
``meta.json`` sidecar: the key (a JSON document), each array's name, file, shape
and dtype, the sktransfer version and the format version. :func:`write_entry`
fills a directory; :func:`check_entry` accepts a directory only if it is exactly
that, for the expected key, and reads the arrays with numpy's ``.npy`` reader and
``allow_pickle=False``. Nothing here ever unpickles anything: a pickle, a
truncated array or a sidecar of another format raises :class:`InvalidEntry`,
saying which path is wrong and why.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping

import numpy as np

from ._version import __version__

__all__ = [
    "SIDECAR",
    "InvalidEntry",
    "canonical",
    "check_entry",
    "read_sidecar",
    "touch",
    "write_entry",
]

_FORMAT = "sktransfer.frozen_outputs"
_FORMAT_VERSION = 1
SIDECAR = "meta.json"
_MAX_SIDECAR_BYTES = 1 << 20
_ARRAY_FILE = re.compile(r"[0-9]+\.npy")
_DTYPES = {"float16", "float32", "float64", "bool", "int32", "int64", "uint8"}


class InvalidEntry(Exception):
    """What is stored under an entry's name is not a valid entry (and why)."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def canonical(key: Mapping) -> str:
    """The key as compact JSON with sorted fields: what its hash is taken of."""
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


def read_sidecar(path: str) -> dict:
    """The sidecar of the entry at ``path``, if it is one of this format version."""
    sidecar = os.path.join(path, SIDECAR)
    with open(sidecar, "rb") as f:
        text = f.read(_MAX_SIDECAR_BYTES + 1)
    if len(text) > _MAX_SIDECAR_BYTES:
        raise InvalidEntry(sidecar, "the sidecar is larger than 1 MiB")
    try:
        meta = json.loads(text.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise InvalidEntry(sidecar, f"not JSON ({type(exc).__name__})") from exc
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise InvalidEntry(sidecar, f"not a sidecar of the {_FORMAT!r} format")
    if meta.get("format_version") != _FORMAT_VERSION:
        raise InvalidEntry(
            sidecar,
            f"format version {meta.get('format_version')!r}; this version of "
            f"sktransfer reads version {_FORMAT_VERSION}",
        )
    return meta


def _array_records(path: str, meta: dict) -> list[dict]:
    """The sidecar's array records, checked; the directory holds nothing else."""
    records = meta.get("arrays")
    if not isinstance(records, list):
        raise InvalidEntry(os.path.join(path, SIDECAR), "no list of arrays")
    for record in records:
        ok = (
            isinstance(record, dict)
            and isinstance(record.get("name"), str)
            and _ARRAY_FILE.fullmatch(str(record.get("file")))
            and record.get("dtype") in _DTYPES
            and isinstance(record.get("shape"), list)
            and all(type(n) is int and n >= 0 for n in record["shape"])
        )
        if not ok:
            raise InvalidEntry(os.path.join(path, SIDECAR), "a malformed array")
    expected = {SIDECAR} | {record["file"] for record in records}
    names = {record["name"] for record in records}
    if len(expected) != len(records) + 1 or len(names) != len(records):
        raise InvalidEntry(os.path.join(path, SIDECAR), "repeated array names")
    for name in sorted(set(os.listdir(path)) ^ expected):
        what = "unexpected file" if name not in expected else "missing file"
        raise InvalidEntry(os.path.join(path, name), what)
    return records


def _open_array(path: str, record: dict, load: bool) -> np.ndarray | None:
    """Check one ``.npy`` file's header and size against its record; load it."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise InvalidEntry(path, f"unsupported .npy version {version}")
        if dtype.hasobject or dtype != np.dtype(record["dtype"]) or fortran:
            raise InvalidEntry(path, f"holds {dtype}, not {record['dtype']} arrays")
        if list(shape) != record["shape"]:
            raise InvalidEntry(path, f"shape {shape}, not {tuple(record['shape'])}")
        size = f.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        actual = os.fstat(f.fileno()).st_size
        if actual != size:
            raise InvalidEntry(path, f"{actual} bytes instead of {size} (truncated?)")
        if not load:
            return None
        f.seek(0)
        return np.lib.format.read_array(f, allow_pickle=False)


def check_entry(path: str, key: Mapping, load: bool) -> dict[str, np.ndarray]:
    """The arrays of the entry at ``path`` (empty unless ``load``).

    Raises :class:`InvalidEntry` unless ``path`` is a valid entry for ``key``.
    """
    try:
        if os.path.islink(path) or not os.path.isdir(path):
            raise InvalidEntry(path, "not an entry directory (a file or a link)")
        meta = read_sidecar(path)
        if meta.get("key") != json.loads(canonical(key)):
            raise InvalidEntry(os.path.join(path, SIDECAR), "another key")
        arrays = {}
        for record in _array_records(path, meta):
            array = _open_array(os.path.join(path, record["file"]), record, load)
            arrays[record["name"]] = array
        return arrays if load else {}
    except InvalidEntry:
        raise
    except (OSError, ValueError, EOFError, TypeError, KeyError, RecursionError) as exc:
        raise InvalidEntry(path, f"unreadable ({type(exc).__name__}: {exc})") from exc


def write_entry(directory: str, key: Mapping, arrays: Mapping[str, np.ndarray]):
    """Write ``arrays`` and the sidecar for ``key`` into the empty ``directory``.

    The sidecar's mtime, the entry's last use, is set to the nanosecond: finer
    than the filesystem's clock, so that eviction orders quick writes right.
    """
    records = []
    for index, (name, array) in enumerate(arrays.items()):
        array = np.ascontiguousarray(array)
        file = f"{index}.npy"
        with open(os.path.join(directory, file), "wb") as f:
            np.save(f, array, allow_pickle=False)
        shape, dtype = list(array.shape), array.dtype.name
        records.append({"name": name, "file": file, "shape": shape, "dtype": dtype})
    meta = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "sktransfer_version": __version__,
        "key": json.loads(canonical(key)),
        "arrays": records,
    }
    sidecar = os.path.join(directory, SIDECAR)
    with open(sidecar, "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
    touch(sidecar)


def touch(sidecar: str) -> None:
    """Record now as the entry's last use."""
    os.utime(sidecar, ns=(time.time_ns(),) * 2)
