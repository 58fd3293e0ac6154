"""wm_jax.conversion.torch_reader: torch.save archives and safetensors into numpy, never running pickle code."""

from __future__ import annotations

import collections
import json
import os
import struct
import zipfile

import ml_dtypes
import numpy as np
import pytest

from wm_jax.conversion import torch_reader

torch = pytest.importorskip("torch")


def _sd():
    g = torch.Generator().manual_seed(0)
    return collections.OrderedDict(
        w32=torch.randn(4, 3, generator=g),
        w16=torch.randn(2, 5, generator=g).half(),
        wbf=torch.randn(3, generator=g).bfloat16(),
        steps=torch.arange(6, dtype=torch.int64),
        flag=torch.tensor([True, False]),
    )


def _assert_same(arrays, tensors):
    assert set(arrays) == set(tensors)
    for k, t in tensors.items():
        a = arrays[k]
        if t.dtype == torch.bfloat16:
            assert a.dtype == ml_dtypes.bfloat16
            np.testing.assert_array_equal(a.astype(np.float32), t.float().numpy())
        else:
            assert a.dtype == t.numpy().dtype, k
            np.testing.assert_array_equal(a, t.numpy())


def test_reads_fp32_fp16_bf16_int_bool(tmp_path):
    sd = _sd()
    torch.save(sd, tmp_path / "m.pt")
    got = torch_reader.load_state_dict(tmp_path / "m.pt")
    assert got.source_key is None
    _assert_same(got.tensors, sd)


def test_views_shared_storage_and_parameters(tmp_path):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    sd = {
        "t": base.t(),  # non-contiguous: strides (1, 6)
        "row": base[2],  # offset into a shared storage
        "p": torch.nn.Parameter(torch.ones(2, 2)),  # pickled via _rebuild_parameter
        "empty": torch.zeros(0, 3),
    }
    torch.save(sd, tmp_path / "v.pth")
    got = torch_reader.load_state_dict(tmp_path / "v.pth").tensors
    np.testing.assert_array_equal(got["t"], base.t().numpy())
    np.testing.assert_array_equal(got["row"], base[2].numpy())
    np.testing.assert_array_equal(got["p"], np.ones((2, 2), np.float32))
    assert got["empty"].shape == (0, 3)


def test_module_state_dict_with_metadata(tmp_path):
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.GroupNorm(2, 4))
    torch.save(module.state_dict(), tmp_path / "mod.pth")
    _assert_same(torch_reader.load_state_dict(tmp_path / "mod.pth").tensors, module.state_dict())


def test_training_checkpoint_takes_ema_by_default_and_key_on_request(tmp_path):
    model = {"a.weight": torch.zeros(2), "b": {"c": torch.ones(1)}}
    ema = {"a.weight": torch.full((2,), 7.0), "b": {"c": torch.full((1,), 8.0)}}
    opt = {"state": {0: {"step": 3}}, "param_groups": [{"lr": 1e-4, "params": [0]}]}
    torch.save({"model": model, "ema": ema, "opt": opt, "step": 10}, tmp_path / "ckpt.pt")
    got = torch_reader.load_state_dict(tmp_path / "ckpt.pt")
    assert got.source_key == "ema"
    assert set(got.tensors) == {"a.weight", "b.c"}  # nested dicts flatten with "."
    assert got.tensors["a.weight"][0] == 7.0 and got.tensors["b.c"][0] == 8.0
    model_sd = torch_reader.load_state_dict(tmp_path / "ckpt.pt", key="model")
    assert model_sd.source_key == "model" and model_sd.tensors["a.weight"][0] == 0.0
    with pytest.raises(KeyError, match="no entry 'emma'.*'ema'"):
        torch_reader.load_state_dict(tmp_path / "ckpt.pt", key="emma")
    with pytest.raises(ValueError, match="non-tensor values"):
        torch_reader.load_state_dict(tmp_path / "ckpt.pt", key="opt")


def test_without_ema_falls_back_to_model(tmp_path):
    torch.save({"model": {"w": torch.ones(3)}, "step": 1}, tmp_path / "c.pt")
    got = torch_reader.load_state_dict(tmp_path / "c.pt")
    assert got.source_key == "model" and got.tensors["w"].shape == (3,)


class _RunsCode:
    """Unpickling this calls os.system: what torch.load(weights_only=False) would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"weight": torch.ones(2), "payload": _RunsCode(marker)}, tmp_path / "evil.pth")
    with pytest.raises(torch_reader.UnsafeCheckpointError, match=r"global '(posix|os)\.system'"):
        torch_reader.load_state_dict(tmp_path / "evil.pth")
    assert not marker.exists()
    # The file really is malicious: the unsafe loader runs the payload.
    torch.load(tmp_path / "evil.pth", weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("module,name", [("builtins", "eval"), ("torch", "load"), ("numpy.core.multiarray", "scalar"), ("torch._utils", "_rebuild_qtensor")])
def test_any_other_global_is_refused_by_name(tmp_path, module, name):
    # A hand-written pickle referencing the global, inside a torch-style archive.
    payload = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"q\x00."
    path = tmp_path / "x.pt"
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x/data.pkl", payload)
        z.writestr("x/byteorder", "little")
    with pytest.raises(torch_reader.UnsafeCheckpointError, match=rf"'{module}\.{name}'"):
        torch_reader.read_pt(path)


def test_legacy_or_non_zip_files_are_refused(tmp_path):
    (tmp_path / "old.pt").write_bytes(b"\x80\x02}q\x00.")
    with pytest.raises(ValueError, match="not a zip archive"):
        torch_reader.load_state_dict(tmp_path / "old.pt")


def _write_safetensors(path, tensors, metadata=None):
    """Writer from the format description: u64 LE header size, JSON header, raw little-endian bytes."""
    tags = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(ml_dtypes.bfloat16): "BF16", np.dtype(np.int64): "I64"}
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        raw = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": tags[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def test_safetensors(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {
        "a": rng.normal(size=(3, 4)).astype(np.float32),
        "b": rng.normal(size=(5,)).astype(np.float16),
        "c": rng.normal(size=(2, 2)).astype(ml_dtypes.bfloat16),
        "d": np.arange(3, dtype=np.int64),
    }
    _write_safetensors(tmp_path / "m.safetensors", tensors, metadata={"format": "pt"})
    got = torch_reader.load_state_dict(tmp_path / "m.safetensors")
    assert set(got.tensors) == set(tensors)
    for k, v in tensors.items():
        assert got.tensors[k].dtype == v.dtype
        np.testing.assert_array_equal(got.tensors[k], v)


def test_safetensors_with_bad_offsets_is_refused(tmp_path):
    path = tmp_path / "bad.safetensors"
    header = json.dumps({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    with pytest.raises(ValueError, match=r"bad\.safetensors: not a valid safetensors file"):
        torch_reader.load_state_dict(path)


# -- hostile files (issue 18): each refused with one line naming the file and the fault ----------


def _raw_safetensors(path, header, data=b""):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


@pytest.mark.parametrize("case, header, data, fault", [
    ("empty", None, b"", "header too small"),
    ("list", [1, 2], b"", "sequence"),  # was AttributeError
    ("no_dtype", {"a": {"shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, "dtype"),
    ("string_offsets", {"a": {"dtype": "F32", "shape": [2], "data_offsets": ["0", "8"]}}, b"\0" * 8, "string"),
    ("past_end", {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 800]}}, b"\0" * 8, "offset"),
    ("overflow", {"a": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 8]}}, b"\0" * 8, "overflow"),
    ("negative", {"a": {"dtype": "F32", "shape": [-1], "data_offsets": [4, 0]}}, b"\0" * 64, "-1"),  # was 15 elements
    ("f8", {"a": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}, b"\0", "unsupported dtype F8_E4M3"),
])
def test_hostile_safetensors_are_refused_in_one_line(tmp_path, case, header, data, fault):
    path = tmp_path / f"{case}.safetensors"
    if header is None:
        path.write_bytes(b"")
    else:
        _raw_safetensors(path, header, data)
    with pytest.raises(ValueError) as error:
        torch_reader.load_state_dict(path)
    message = str(error.value)
    assert "\n" not in message and message.startswith(str(path)) and fault in message, message


def test_zip_bomb_storage_is_refused_before_inflating(tmp_path):
    torch.save({"w": torch.zeros(4)}, tmp_path / "small.pt")

    def sixty_four_megabytes_of_zeros(out):  # deflates to ~64 kB; the tensor needs 16 bytes
        for _ in range(64):
            out.write(bytes(1 << 20))
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(tmp_path / "small.pt") as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename.endswith("/data/0"):
                with dst.open(info.filename, "w", force_zip64=True) as out:
                    sixty_four_megabytes_of_zeros(out)
            else:
                dst.writestr(info.filename, src.read(info))
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(ValueError, match=r"bomb\.pt: storage entry '.*data/0' declares 67108864 bytes; its tensor needs 16"):
        torch_reader.load_state_dict(bomb)


def test_compressed_storages_inflate_within_a_budget(tmp_path, monkeypatch):
    torch.save({"w": torch.zeros(1 << 19)}, tmp_path / "plain.pt")  # 2 MB of float32 zeros
    packed = tmp_path / "packed.pt"
    with zipfile.ZipFile(tmp_path / "plain.pt") as src, zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    assert packed.stat().st_size < 100_000
    assert torch_reader.load_state_dict(packed).tensors["w"].shape == (1 << 19,)  # within the budget: read
    monkeypatch.setattr(torch_reader, "MAX_INFLATED_BYTES", 1 << 20)
    with pytest.raises(ValueError, match=r"packed\.pt: compressed storages would inflate to more than"):
        torch_reader.load_state_dict(packed)


def test_truncated_pt_is_called_truncated(tmp_path):
    torch.save(_sd(), tmp_path / "whole.pt")
    data = (tmp_path / "whole.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.pt: truncated") as error:
        torch_reader.load_state_dict(tmp_path / "cut.pt")
    assert "legacy" not in str(error.value)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        torch_reader.load_state_dict(tmp_path / "empty.pt")
