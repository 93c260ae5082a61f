"""harness.core.formats.torch_zip: PyTorch's zip checkpoints read into numpy without torch."""
import zipfile

import numpy as np
import pytest

from harness.core.errors import BadInput
from harness.core.formats.checkpoint import read_tensors
from harness.core.formats.torch_zip import Refused, read_torch_zip

torch = pytest.importorskip("torch")


def test_every_dtype_and_layout_reads_as_torch_wrote_it(tmp_path):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    tensors = {"f32": base, "f16": base.half(), "f64": base.double(), "i64": base.long(), "i32": base.int(),
               "u8": base.to(torch.uint8), "bool": base > 5, "scalar": torch.tensor(3.5),
               "transposed": base.t(), "slice": base[1:3, 2:5], "empty": torch.zeros(0, 3),
               "param": torch.nn.Parameter(base.clone())}
    path = tmp_path / "m.bin"
    torch.save(tensors, path)
    got = read_torch_zip(path)
    assert list(got) == list(tensors)
    for name, t in tensors.items():
        want = t.detach().numpy()
        assert got[name].dtype == want.dtype and got[name].shape == want.shape, name
        assert np.array_equal(got[name], want), name


def test_a_shared_storage_is_read_per_view(tmp_path):
    base = torch.arange(10, dtype=torch.float32)
    path = tmp_path / "m.pt"
    torch.save({"a": base[:4], "b": base[6:]}, path)
    got = read_tensors(path)
    assert got["a"].tolist() == [0, 1, 2, 3] and got["b"].tolist() == [6, 7, 8, 9]


def _rewrite_pickle(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info, edit(data) if info.filename.endswith("data.pkl") else data)


def test_a_tensor_reaching_past_its_storage_is_refused(tmp_path):
    torch.save({"a": torch.zeros(2, 3)}, tmp_path / "ok.bin")
    # size (2, 3) -> (2, 9): the same pickle bytes, one BININT1 changed (3 -> 9)
    _rewrite_pickle(tmp_path / "ok.bin", tmp_path / "bad.bin",
                    lambda d: d.replace(b"K\x02K\x03\x86", b"K\x02K\x09\x86"))
    with pytest.raises(Refused, match="reads past its storage"):
        read_torch_zip(tmp_path / "bad.bin")
    with pytest.raises(BadInput) as e:
        read_tensors(tmp_path / "bad.bin")
    assert "bad.bin" in e.value.what and "reads past its storage" in e.value.what


def test_an_unknown_global_is_refused_before_it_is_built(tmp_path):
    torch.save({"a": torch.zeros(2).bfloat16()}, tmp_path / "bf16.bin")
    with pytest.raises(BadInput) as e:
        read_tensors(tmp_path / "bf16.bin")
    assert "torch.BFloat16Storage" in e.value.what and "weights_only=True" in e.value.fix


def test_a_flipped_data_byte_fails_its_crc(tmp_path):
    torch.save({"a": torch.ones(64)}, tmp_path / "m.bin")
    data = bytearray((tmp_path / "m.bin").read_bytes())
    at = data.index(np.ones(64, np.float32).tobytes())
    data[at + 5] ^= 0x01
    (tmp_path / "flipped.bin").write_bytes(bytes(data))
    with pytest.raises(BadInput) as e:
        read_tensors(tmp_path / "flipped.bin")
    assert "CRC" in e.value.what


def test_the_legacy_format_is_refused_with_the_fix(tmp_path):
    torch.save({"a": torch.ones(2)}, tmp_path / "old.bin", _use_new_zipfile_serialization=False)
    with pytest.raises(BadInput) as e:
        read_tensors(tmp_path / "old.bin")
    assert "not a PyTorch zip checkpoint" in e.value.what and "torch.save" in e.value.fix
