"""Checkpoints both ways, seeded init, and the loaders' clear errors."""
import numpy as np
import pytest

from harness.cli import main
from harness.core.config import preset
from harness.core.errors import BadInput
from harness.core.families import param_shapes
from harness.core.formats.checkpoint import load_checkpoint, sha256, write_safetensors
from harness.core.seeded_init import init_state
from harness.suite import frameworks


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_init_same_seed_gives_byte_identical_files(tmp_path, family):
    for run in ("a", "b"):
        assert main(["init", "--model", family, "--size", "tiny", "--seed", "7", "--out", str(tmp_path / run)]) == 0
    for name in ("model.safetensors", "model.ckpt"):
        assert sha256(tmp_path / "a" / name) == sha256(tmp_path / "b" / name), name
    assert main(["init", "--model", family, "--size", "tiny", "--seed", "8", "--out", str(tmp_path / "c")]) == 0
    assert sha256(tmp_path / "a" / "model.safetensors") != sha256(tmp_path / "c" / "model.safetensors")


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_init_writes_identical_values_in_both_formats(tmp_path, family):
    assert main(["init", "--model", family, "--size", "tiny", "--seed", "3", "--out", str(tmp_path)]) == 0
    cfg = preset(family, "tiny")
    _, from_st = load_checkpoint(tmp_path / "model.safetensors", cfg)
    _, from_ckpt = load_checkpoint(tmp_path / "model.ckpt", cfg)
    expected = init_state(cfg, 3)
    assert list(from_st) == list(from_ckpt) == list(param_shapes(cfg))
    for name, value in expected.items():
        assert np.array_equal(from_st[name], value), name
        assert np.array_equal(from_ckpt[name], value), name


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_round_trip_ms_pt_ms_is_bit_identical(tmp_path, family):
    cfg = preset(family, "tiny")
    original = init_state(cfg, 11)
    pt, ms = frameworks.load("pt"), frameworks.load("ms")
    ms.io.save(tmp_path / "ms1", cfg, {k: ms.io.to_tensor(v.copy()) for k, v in original.items()})
    _, pt_state = pt.io.load(tmp_path / "ms1" / "model.ckpt")          # PyTorch reads MindSpore's file
    pt.io.save(tmp_path / "pt", cfg, pt_state)
    _, ms_state = ms.io.load(tmp_path / "pt" / "model.safetensors")    # MindSpore reads PyTorch's file
    ms.io.save(tmp_path / "ms2", cfg, ms_state)
    _, back = load_checkpoint(tmp_path / "ms2")
    assert list(back) == list(original)
    for name in original:
        assert np.array_equal(back[name], original[name]), name
        assert np.array_equal(pt.io.to_numpy(pt_state[name]), original[name]), name


def test_pytorch_folder_loads_in_stock_transformers(tmp_path):
    import torch
    from transformers import AutoModel
    cfg = preset("bert", "tiny")
    assert main(["init", "--model", "bert", "--size", "tiny", "--seed", "0", "--framework", "pt",
                 "--out", str(tmp_path)]) == 0
    model = AutoModel.from_pretrained(tmp_path)
    expected = init_state(cfg, 0)
    got = dict(model.named_parameters())
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert torch.equal(got[name].detach(), torch.from_numpy(value)), name


def _bad_state(tmp_path, edit):
    cfg = preset("bert", "tiny")
    state = init_state(cfg, 0)
    edit(state)
    write_safetensors(tmp_path / "bad.safetensors", state)
    return tmp_path / "bad.safetensors", cfg


def test_missing_tensor_is_named(tmp_path):
    path, cfg = _bad_state(tmp_path, lambda s: s.pop("encoder.layer.1.output.dense.bias"))
    with pytest.raises(BadInput, match="missing tensor encoder.layer.1.output.dense.bias"):
        load_checkpoint(path, cfg)


def test_wrong_shape_is_named_with_expected_and_found(tmp_path):
    def edit(s):
        s["pooler.dense.weight"] = np.zeros((64, 65), np.float32)
    path, cfg = _bad_state(tmp_path, edit)
    with pytest.raises(BadInput, match=r"pooler.dense.weight has shape \(64, 65\), expected \(64, 64\)"):
        load_checkpoint(path, cfg)


def test_extra_tensor_and_wrong_dtype_are_named(tmp_path):
    path, cfg = _bad_state(tmp_path, lambda s: s.__setitem__("encoder.layer.9.x", np.zeros(3, np.float32)))
    with pytest.raises(BadInput, match="unexpected tensor encoder.layer.9.x"):
        load_checkpoint(path, cfg)
    path, cfg = _bad_state(tmp_path, lambda s: s.__setitem__("pooler.dense.bias", np.zeros(64, np.float16)))
    with pytest.raises(BadInput, match="pooler.dense.bias has dtype float16, expected float32"):
        load_checkpoint(path, cfg)


def test_nonfinite_refused_unless_allowed(tmp_path):
    def edit(s):
        s["embeddings.LayerNorm.weight"][3] = np.nan
    path, cfg = _bad_state(tmp_path, edit)
    with pytest.raises(BadInput, match="embeddings.LayerNorm.weight holds NaN or Inf"):
        load_checkpoint(path, cfg)
    _, state = load_checkpoint(path, cfg, allow_nonfinite=True)
    assert np.isnan(state["embeddings.LayerNorm.weight"][3])


def test_written_files_get_umask_modes_not_private_or_read_only(tmp_path):
    import os
    import stat
    assert main(["init", "--model", "gpt2", "--size", "tiny", "--out", str(tmp_path)]) == 0
    umask = os.umask(0)
    os.umask(umask)
    for name in ("model.safetensors", "model.ckpt", "config.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name


def test_ckpt_reader_equals_mindspores_own_loader(tmp_path):
    """The .ckpt is read without MindSpore (harness.core.formats.ckpt_framing.read_ckpt); on files
    MindSpore itself wrote, with and without a checksum, it must give what load_checkpoint gives."""
    import mindspore as ms

    from harness.core.formats.ckpt_framing import read_ckpt
    rng = np.random.default_rng(5)
    arrays = {"f32": rng.standard_normal((3, 5)).astype(np.float32), "f16": rng.standard_normal(7).astype(np.float16),
              "f64": rng.standard_normal((2, 2)), "i64": np.arange(6, dtype=np.int64).reshape(2, 3),
              "i32": np.arange(4, dtype=np.int32), "u8": np.arange(3, dtype=np.uint8), "b": np.array([True, False])}
    for crc in (False, True):
        path = tmp_path / f"m_{crc}.ckpt"
        ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in arrays.items()], str(path), crc_check=crc)
        ours, theirs = read_ckpt(path), {k: p.asnumpy() for k, p in ms.load_checkpoint(str(path)).items()}
        assert list(ours) == list(theirs) == list(arrays)
        for name, value in arrays.items():
            assert ours[name].dtype == theirs[name].dtype == value.dtype, name
            assert np.array_equal(ours[name], theirs[name]) and np.array_equal(ours[name], value), name
