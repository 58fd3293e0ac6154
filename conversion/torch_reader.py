"""Read PyTorch checkpoints into numpy, without torch and without running any pickle code.

Two formats:

* `.pt` / `.pth` zip archives (what `torch.save` writes since PyTorch 1.6): `<root>/data.pkl`
  holds the object tree as a pickle, `<root>/data/<key>` the raw bytes of each storage. The
  pickle is read by `_RestrictedUnpickler`, whose `find_class` resolves only the handful of
  globals a state_dict needs, each to a function of this module (never to torch's or anything
  importable), and refuses every other global with an error naming it. A checkpoint crafted to
  run `os.system` on `torch.load(weights_only=False)` is refused before anything runs, because
  unpickling can call nothing but what `find_class` hands out.
* `.safetensors`: an 8-byte little-endian header length, a JSON header
  `{name: {dtype, shape, data_offsets}}`, then the bytes. Read by the `safetensors` package
  (numpy framework), which validates the header against the format's rules (JSON object, every
  field present and typed, offsets contiguous and inside the file, no shape overflow); a fault
  becomes one ValueError naming the file.

Hostile archives: every storage entry's declared size must equal what its tensor needs
(numel x itemsize) before a byte is inflated, reads are bounded by that size, and compressed
entries (torch itself stores storages uncompressed) may inflate to MAX_INFLATED_BYTES in all, so
a small file cannot claim gigabytes. A file cut short is reported as truncated.

Tensors come back as numpy arrays in their stored dtype (bf16 via `ml_dtypes`); callers cast.
Training checkpoints that wrap state_dicts (`{"model": ..., "ema": ..., "opt": ...}`) are
unwrapped by `load_state_dict`, which takes `ema` unless told otherwise.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import os
import pickle
import zipfile
from typing import Any, Mapping

import ml_dtypes
import numpy as np
import safetensors

# torch storage class name (as pickled) -> numpy dtype.
_STORAGE_DTYPES: dict[str, np.dtype] = {
    "DoubleStorage": np.dtype(np.float64),
    "FloatStorage": np.dtype(np.float32),
    "HalfStorage": np.dtype(np.float16),
    "BFloat16Storage": np.dtype(ml_dtypes.bfloat16),
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
}

# safetensors dtype tag -> numpy dtype.
_SAFETENSORS_DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype(np.float64),
    "F32": np.dtype(np.float32),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "I64": np.dtype(np.int64),
    "I32": np.dtype(np.int32),
    "I16": np.dtype(np.int16),
    "I8": np.dtype(np.int8),
    "U8": np.dtype(np.uint8),
    "BOOL": np.dtype(np.bool_),
}

MAX_PICKLE_BYTES = 256 * 2**20  # data.pkl is the object tree, not the tensors: megabytes at most
MAX_INFLATED_BYTES = 2**30  # what compressed entries of one archive may inflate to, in all
ZIP_MAGIC = b"PK\x03\x04"

# Keys under which training checkpoints keep their state_dicts, in the order tried when the
# caller names none: the EMA weights are what one samples with, so they come first.
WRAPPER_KEYS: tuple[str, ...] = ("ema", "model", "state_dict", "module", "net")


class UnsafeCheckpointError(ValueError):
    """The pickle asks for something other than tensors and plain containers."""


@dataclasses.dataclass(frozen=True)
class _StorageType:
    """What `torch.HalfStorage` & co. resolve to: only their element dtype matters."""

    name: str
    dtype: np.dtype


class _Storages:
    """Reads each storage's bytes from the archive once, on first use."""

    def __init__(self, archive: zipfile.ZipFile, root: str, big_endian: bool, path: str):
        self._archive, self._root, self._big_endian, self._path = archive, root, big_endian, path
        self._cache: dict[str, np.ndarray] = {}
        self._inflated = 0

    def get(self, key: str, dtype: np.dtype, numel: int) -> np.ndarray:
        if key not in self._cache:
            expected = numel * dtype.itemsize
            raw = self._read(f"{self._root}/data/{key}", expected)
            if len(raw) < expected:
                raise ValueError(f"{self._path}: storage {key!r} holds {len(raw)} bytes, expected {expected}")
            flat = np.frombuffer(raw, dtype=dtype.newbyteorder(">") if self._big_endian else dtype, count=numel)
            self._cache[key] = flat.astype(dtype) if self._big_endian else flat
        return self._cache[key]

    def _read(self, name: str, expected: int) -> bytes:
        """The entry's bytes, after checking its declared size against `expected` and the
        inflation budget, so nothing is inflated that the tensor does not need."""
        try:
            info = self._archive.getinfo(name)
        except KeyError:
            raise ValueError(f"{self._path}: storage entry {name!r} is missing") from None
        if info.file_size != expected:
            raise ValueError(f"{self._path}: storage entry {name!r} declares {info.file_size} bytes; its tensor "
                             f"needs {expected} (refused before inflating)")
        if info.compress_type != zipfile.ZIP_STORED:
            self._inflated += expected
            if self._inflated > MAX_INFLATED_BYTES:
                raise ValueError(f"{self._path}: compressed storages would inflate to more than "
                                 f"{MAX_INFLATED_BYTES / 2**30:.0f} GiB (a zip bomb?); torch.save stores them uncompressed")
        return _read_entry(self._archive, info, expected, self._path)


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, path: str) -> bytes:
    try:
        with archive.open(info) as entry:
            return entry.read(limit)
    except (zipfile.BadZipFile, EOFError, OSError) as error:  # CRC mismatch, cut short, bad deflate
        raise ValueError(f"{path}: entry {info.filename!r} is corrupt or truncated ({error})") from None


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    """Stands in for torch._utils._rebuild_tensor_v2: a strided view copied out contiguously."""
    del requires_grad, backward_hooks, metadata  # autograd bookkeeping, meaningless here
    if not isinstance(storage, np.ndarray):
        raise UnsafeCheckpointError(f"tensor rebuilt from a {type(storage).__name__}, not a storage")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if any(s < 0 for s in size) or any(s < 0 for s in stride) or storage_offset < 0:
        raise ValueError(f"negative size/stride/offset in tensor {size} {stride} {storage_offset}")
    if 0 in size:
        return np.zeros(size, storage.dtype)
    # The last element reachable through the strides must lie inside the storage.
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.size:
        raise ValueError(f"tensor of size {size}, stride {stride}, offset {storage_offset} overruns its storage of {storage.size}")
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[storage_offset:], shape=size, strides=tuple(s * item for s in stride), writeable=False
    )
    return np.ascontiguousarray(view)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    """Stands in for torch._utils._rebuild_parameter: an nn.Parameter is just its data."""
    del requires_grad, backward_hooks
    return data


# (module, name) -> the callable or class this reader hands out for it. Nothing else resolves.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name, dtype) for name, dtype in _STORAGE_DTYPES.items()},
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, storages: _Storages):
        super().__init__(file)
        self._storages = storages

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafeCheckpointError(
                f"refusing to load: the checkpoint's pickle references the global '{module}.{name}', "
                "which is neither a tensor storage nor a plain container (allowed: "
                + ", ".join(sorted(f"{m}.{n}" for m, n in _ALLOWED_GLOBALS)) + ")"
            ) from None

    def persistent_load(self, pid):
        # torch's protocol: ("storage", storage_type, key, location, numel).
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise UnsafeCheckpointError(f"refusing to load: unknown persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise UnsafeCheckpointError(f"refusing to load: persistent id names {storage_type!r}, not a storage type")
        if not isinstance(key, str) or "/" in key or ".." in key or not isinstance(numel, int):
            raise UnsafeCheckpointError(f"refusing to load: malformed storage reference {pid!r}")
        if numel < 0:
            raise UnsafeCheckpointError(f"refusing to load: negative storage size in {pid!r}")
        return self._storages.get(key, storage_type.dtype, numel)


def _zip_root(archive: zipfile.ZipFile, path: str) -> str:
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise ValueError(f"{path}: not a PyTorch zip checkpoint (found {len(pickles)} '<root>/data.pkl' entries)")
    return pickles[0][: -len("/data.pkl")]


def read_pt(path: str | os.PathLike) -> Any:
    """The object tree of a `torch.save` zip archive, tensors as numpy arrays.

    Raises UnsafeCheckpointError for any global other than tensor storages and OrderedDict.
    """
    path = os.fspath(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(_not_a_zip(path))
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise ValueError(f"{path}: a damaged zip archive ({error})") from None
    with archive:
        root = _zip_root(archive, path)
        names = set(archive.namelist())
        big_endian = f"{root}/byteorder" in names and _read_entry(archive, archive.getinfo(f"{root}/byteorder"), 16, path).strip() == b"big"
        storages = _Storages(archive, root, big_endian, path)
        pickle_info = archive.getinfo(f"{root}/data.pkl")
        if pickle_info.file_size > MAX_PICKLE_BYTES:
            raise ValueError(f"{path}: data.pkl declares {pickle_info.file_size} bytes; an object tree is at most "
                             f"{MAX_PICKLE_BYTES // 2**20} MiB (refused before inflating)")
        data = _read_entry(archive, pickle_info, MAX_PICKLE_BYTES, path)
        return _RestrictedUnpickler(io.BytesIO(data), storages).load()


def _not_a_zip(path: str) -> str:
    """Why a .pt file is no zip archive: cut short, or another format."""
    with open(path, "rb") as f:
        start = f.read(4)
    if start == ZIP_MAGIC:
        return (f"{path}: truncated: it starts as a zip archive (torch.save) but its end, the zip directory, is "
                "missing; copy or download it again")
    if not start:
        return f"{path}: the file is empty"
    return (f"{path}: not a zip archive; legacy (pre-1.6) torch.save files and plain pickles are not "
            "read (re-save with a current PyTorch, or convert to .safetensors)")


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A .safetensors file as {name: array}; the `__metadata__` entry is dropped.

    The `safetensors` package checks the header against the format's rules; this function adds
    the dtypes numpy can hold here (bf16 through ml_dtypes) and turns every fault into one
    ValueError naming the file.
    """
    path = os.fspath(path)
    try:
        with safetensors.safe_open(path, framework="numpy") as f:
            out = {}
            for name in f.keys():
                tag = f.get_slice(name).get_dtype()
                if tag not in _SAFETENSORS_DTYPES:
                    raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {tag} "
                                     f"(readable: {', '.join(_SAFETENSORS_DTYPES)})")
                out[name] = np.array(f.get_tensor(name), dtype=_SAFETENSORS_DTYPES[tag])  # own copy, not the mmap
            return out
    except safetensors.SafetensorError as error:
        raise ValueError(f"{path}: not a valid safetensors file: {error}") from None


def read_checkpoint(path: str | os.PathLike) -> Any:
    """Either format, by content: safetensors files are not zip archives."""
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        return read_safetensors(path)
    return read_pt(path)


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, np.ndarray) for v in obj.values())


def _flatten(obj: Mapping, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in obj.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, name + "."))
        else:
            out[name] = v
    return out


@dataclasses.dataclass(frozen=True)
class StateDict:
    """A flat {name: array} plus where it came from inside the file (None: the file was one)."""

    tensors: dict[str, np.ndarray]
    source_key: str | None


def load_state_dict(path: str | os.PathLike, key: str | None = None) -> StateDict:
    """The state_dict in `path`, unwrapping training checkpoints.

    key: which entry of a wrapping dict to take; default: the first of WRAPPER_KEYS present
    ("ema" first). Nested dicts of tensors are flattened with "." as PyTorch names them.
    """
    obj = read_checkpoint(path)
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: top-level object is a {type(obj).__name__}, not a dict of tensors")
    source = None
    if key is not None:
        if key not in obj:
            raise KeyError(f"{path}: no entry {key!r}; top-level keys are {sorted(map(str, obj))}")
        obj, source = obj[key], key
    elif not _is_state_dict(obj):
        present = [k for k in WRAPPER_KEYS if k in obj and isinstance(obj[k], Mapping)]
        if present:
            obj, source = obj[present[0]], present[0]
        elif not all(isinstance(v, (np.ndarray, Mapping)) for v in obj.values()):
            raise ValueError(
                f"{path}: neither a state_dict nor a training checkpoint with one of {list(WRAPPER_KEYS)}; "
                f"top-level keys are {sorted(map(str, obj))} (pass key=... to choose)"
            )
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: entry {source!r} is a {type(obj).__name__}, not a dict of tensors")
    flat = _flatten(obj)
    bad = sorted(k for k, v in flat.items() if not isinstance(v, np.ndarray))
    if bad:
        raise ValueError(f"{path}: entry {source!r} holds non-tensor values at {bad[:10]}")
    return StateDict(tensors=flat, source_key=source)
