"""Streaming writers (harness.core.formats.writers): MindSpore's .ckpt bytes, safetensors order checks,
and no partial file under the final name on any failure."""
import numpy as np
import pytest

from harness.core.formats.writers import CkptStream, SafetensorsStream


def _state(rng):
    return {"encoder.layer.0.attention.self.query.weight": rng.standard_normal((7, 5), dtype=np.float32),
            "bias": rng.standard_normal(300, dtype=np.float32),
            "half": rng.standard_normal((3, 4)).astype(np.float16),
            "ids": np.arange(6, dtype=np.int64).reshape(2, 3),
            "empty": np.zeros((0, 4), np.float32)}


def _ckpt_state(rng):
    return {k: v for k, v in _state(rng).items() if v.size}


def _ckpt_bytes(path, state, chunk=None):
    writer = CkptStream(path) if chunk is None else CkptStream(path, chunk=chunk)
    with writer:
        for name, a in state.items():
            writer.write(name, a)
    return path.read_bytes()


def test_ckpt_bytes_equal_mindspore_save_checkpoint(tmp_path):
    import mindspore as ms
    state = _ckpt_state(np.random.default_rng(0))
    ms.save_checkpoint(state, str(tmp_path / "ms.ckpt"))
    assert _ckpt_bytes(tmp_path / "ours.ckpt", state) == (tmp_path / "ms.ckpt").read_bytes()
    loaded = ms.load_checkpoint(str(tmp_path / "ours.ckpt"))
    assert list(loaded) == list(state)
    for name, a in state.items():
        assert loaded[name].asnumpy().dtype == a.dtype
        np.testing.assert_array_equal(loaded[name].asnumpy(), a)


def test_ckpt_chunking_equals_mindspore_slices(tmp_path, monkeypatch):
    """Tensors over the chunk size are split into byte chunks, as save_checkpoint splits at 512 MiB."""
    import mindspore as ms
    from mindspore.train import serialization
    monkeypatch.setattr(serialization, "SLICE_SIZE", 1)   # KiB: chunks of 1024 * 1 bytes
    state = _ckpt_state(np.random.default_rng(1))
    ms.save_checkpoint(state, str(tmp_path / "ms.ckpt"))
    ours = _ckpt_bytes(tmp_path / "ours.ckpt", state, chunk=1024)
    assert ours == (tmp_path / "ms.ckpt").read_bytes()
    assert ours.count(b"\n\x04bias") == 2      # 1200 bytes: two chunks, each naming the tensor
    np.testing.assert_array_equal(ms.load_checkpoint(str(tmp_path / "ours.ckpt"))["bias"].asnumpy(), state["bias"])


def test_safetensors_stream_reads_back(tmp_path):
    from safetensors.numpy import load_file
    state = _state(np.random.default_rng(2))
    path = tmp_path / "m.safetensors"
    with SafetensorsStream(path, [(n, a.shape, a.dtype) for n, a in state.items()]) as w:
        for n, a in state.items():
            w.write(n, a)
    back = load_file(str(path))
    assert set(back) == set(state)
    for n, a in state.items():
        np.testing.assert_array_equal(back[n], a)


@pytest.mark.parametrize("fault", ["wrong order", "wrong shape", "missing last"])
def test_safetensors_stream_refuses_what_the_header_does_not_say(tmp_path, fault):
    state = _state(np.random.default_rng(3))
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"earlier output")
    names = list(state)
    with pytest.raises(ValueError) as err:
        with SafetensorsStream(path, [(n, a.shape, a.dtype) for n, a in state.items()]) as w:
            if fault == "wrong order":
                w.write(names[1], state[names[1]])
            elif fault == "wrong shape":
                w.write(names[0], state[names[0]].T.copy())
            else:
                for n in names[:-1]:
                    w.write(n, state[n])
    expected = {"wrong order": f"got tensor {names[1]} ",
                "wrong shape": f"got tensor {names[0]} float32(5, 7), expected {names[0]} float32(7, 5)",
                "missing last": "4 of 5 tensors were written (next missing: empty)"}[fault]
    assert expected in str(err.value), str(err.value)
    assert path.read_bytes() == b"earlier output"           # the earlier file is untouched
    assert [p.name for p in tmp_path.iterdir()] == [path.name]   # and no temporary file is left


def test_ckpt_refuses_an_empty_tensor_it_could_not_keep(tmp_path):
    from harness.core.errors import BadInput
    with pytest.raises(BadInput, match="tensor empty is empty"):
        with CkptStream(tmp_path / "m.ckpt") as w:
            w.write("empty", np.zeros((0, 4), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_a_temporary_folder_replaces_an_earlier_one_whole_or_not_at_all(tmp_path):
    from harness.core.formats.atomic import _LIVE, commit, discard, temp_beside
    final = tmp_path / "onnx_fp32"
    final.mkdir()
    (final / "old.onnx").write_bytes(b"earlier")
    tmp = temp_beside(final, folder=True)
    (tmp / "model.onnx").write_bytes(b"new")
    assert tmp in _LIVE and tmp.name.startswith(f".onnx_fp32.{__import__('os').getpid()}.")
    commit(tmp, final)
    assert [p.name for p in final.iterdir()] == ["model.onnx"] and tmp not in _LIVE
    failed = temp_beside(final, folder=True)
    (failed / "model.onnx").write_bytes(b"half")
    discard(failed)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx_fp32"]
    assert (final / "model.onnx").read_bytes() == b"new"


# -- direct I/O ----------------------------------------------------------------------
def _direct_state(rng):
    """Tensors whose sizes straddle the (patched) 8 KiB staging buffer and 4 KiB blocks."""
    return {"a": rng.standard_normal(1000, dtype=np.float32),        # 4000 bytes
            "b": rng.standard_normal((33, 100), dtype=np.float32),   # 13200: crosses a stage boundary
            "c": rng.standard_normal(2048, dtype=np.float32),        # exactly 8192
            "d": rng.standard_normal(3, dtype=np.float32)}           # a short tail: padded, then cut


def _write_st(path, state):
    with SafetensorsStream(path, [(n, a.shape, a.dtype) for n, a in state.items()]) as w:
        direct = w.direct
        for n, a in state.items():
            w.write(n, a)
    return direct, path.read_bytes()


def _buffered(monkeypatch):
    from harness.core.formats import writers
    monkeypatch.setattr(writers, "O_DIRECT", 0)


def test_direct_writes_give_the_bytes_buffered_writes_give(tmp_path, monkeypatch):
    from harness.core.formats import writers
    if not writers.O_DIRECT:
        pytest.skip("this platform has no O_DIRECT")
    monkeypatch.setattr(writers, "DIRECT_STAGE", 8192)
    state = _direct_state(np.random.default_rng(3))
    direct, got = _write_st(tmp_path / "direct.safetensors", state)
    if not direct:
        pytest.skip(f"the file system of {tmp_path} refuses O_DIRECT")
    ckpt_direct = _ckpt_bytes(tmp_path / "direct.ckpt", state, chunk=5000)
    _buffered(monkeypatch)
    assert (False, got) == _write_st(tmp_path / "buffered.safetensors", state)
    assert ckpt_direct == _ckpt_bytes(tmp_path / "buffered.ckpt", state, chunk=5000)
    assert len(got) % 4096 != 0              # the padding of the last block was cut off
    assert not list(tmp_path.glob(".*partial*"))


def test_a_refused_direct_write_falls_back_to_buffered(tmp_path, monkeypatch):
    """A file system that opens with O_DIRECT but refuses a write (EINVAL, after part of it went
    through) gets the rest of the file buffered, from where the whole direct writes stopped."""
    import errno
    import fcntl
    import os

    from harness.core.formats import writers
    if not writers.O_DIRECT:
        pytest.skip("this platform has no O_DIRECT")
    monkeypatch.setattr(writers, "DIRECT_STAGE", 8192)
    real_write, calls = writers._write_all, []

    def refuse_the_second_direct_write(fd, data):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & writers.O_DIRECT:
            calls.append(len(memoryview(data)))
            if len(calls) == 2:               # a block goes through, then the refusal
                os.write(fd, memoryview(data)[:4096])
                raise OSError(errno.EINVAL, "Invalid argument")
        real_write(fd, data)

    monkeypatch.setattr(writers, "_write_all", refuse_the_second_direct_write)
    state = _direct_state(np.random.default_rng(4))
    direct, got = _write_st(tmp_path / "fallback.safetensors", state)
    if not direct:
        pytest.skip(f"the file system of {tmp_path} refuses O_DIRECT")
    assert len(calls) == 2                   # one direct write went through, the second fell back
    _buffered(monkeypatch)
    assert got == _write_st(tmp_path / "buffered.safetensors", state)[1]   # bytes and length: no padding left


def test_tmpfs_gets_the_same_bytes(tmp_path):
    """tmpfs refuses O_DIRECT at open on older kernels (the writer then writes buffered) and takes
    it on newer ones: either way the file holds the same bytes."""
    from pathlib import Path
    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no /dev/shm (tmpfs) here")
    import tempfile
    with tempfile.TemporaryDirectory(dir=shm) as folder:
        state = _direct_state(np.random.default_rng(5))
        _, got = _write_st(Path(folder) / "m.safetensors", state)
        assert _write_st(tmp_path / "m.safetensors", state)[1] == got


def test_a_failed_folder_rename_puts_the_earlier_folder_back(tmp_path, monkeypatch):
    import os

    from harness.core.formats import atomic
    final = tmp_path / "onnx_fp32"
    final.mkdir()
    (final / "old.onnx").write_bytes(b"earlier")
    tmp = atomic.temp_beside(final, folder=True)
    (tmp / "model.onnx").write_bytes(b"new")
    real_replace = os.replace

    def refuse_the_new_folder(src, dst):
        if str(src) == str(tmp):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", refuse_the_new_folder)
    with pytest.raises(OSError):
        atomic.commit(tmp, final)
    monkeypatch.undo()
    atomic.discard(tmp)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx_fp32"]
    assert (final / "old.onnx").read_bytes() == b"earlier"
