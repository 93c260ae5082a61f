"""Streamed growth (harness/kinds/growth/stream.py): the same bytes as the in-memory path, one target
tensor at a time; the streamed parity of two files; the drawn source; reading tensors on demand."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.core.config import preset
from harness.core.errors import BadInput
from harness.core.families import param_shapes
from harness.core.formats.checkpoint import sha256, write_ckpt, write_safetensors
from harness.core.formats.tensor_source import SequentialReader, SourceWindow, TensorFile
from harness.core.plan import build_plan
from harness.core.recipe import compile_recipes
from harness.core.seeded_init import init_state
from harness.kinds.growth import pipeline, stream
from harness.suite import frameworks

ROOT = Path(__file__).resolve().parent.parent
# (family, src, dst, method, sampling): both bert2BERT methods and the lossless method (docs/lossless.md;
# its GPT-2 targets at widths that are no multiple, BERT where post-LN allows), as in cases/cases.toml
TINY = [("bert", "tiny", "tiny_wd", "aki", "paper"), ("bert", "tiny", "tiny2x", "fpi", "paper"),
        ("gpt2", "tiny", "tiny_wd", "aki", "paper"), ("gpt2", "tiny_w", "tiny_wd", "fpi", "paper"),
        ("gpt2", "tiny", "tiny_wd", "lossless", "paper"), ("gpt2", "tiny", "tiny_w112", "lossless", "balanced"),
        ("bert", "tiny", "tiny2x_d", "lossless", "balanced")]


def _in_memory(name, recipes, src_cfg, dst_cfg, seed, out):
    """Today's path: the whole target in memory, then saved (pipeline.expand + pipeline.save)."""
    state, _ = pipeline.load_source(name, src_cfg, None, seed)
    return pipeline.save(pipeline.expand(name, recipes, state), dst_cfg, out)


@pytest.mark.parametrize("family, src, dst, method, sampling", TINY)
def test_streamed_files_are_the_bytes_of_the_in_memory_path(tmp_path, family, src, dst, method, sampling):
    plan = build_plan(preset(family, src), preset(family, dst), method, sampling, 3)
    src_cfg, dst_cfg = plan.src, plan.dst   # as grown: a lossless GPT-2 target's LayerNorm eps is scaled
    recipes = compile_recipes(plan)
    source = stream.Source.open(None, src_cfg, 3, scratch=tmp_path)
    files = {}
    try:
        for name in ("pt", "ms"):
            streamed = stream.grow(name, recipes, source, dst_cfg, tmp_path / f"streamed_{name}")
            whole = _in_memory(name, recipes, src_cfg, dst_cfg, 3, tmp_path / f"whole_{name}")
            assert streamed.weights_path.read_bytes() == whole.read_bytes(), name
            assert (tmp_path / f"streamed_{name}" / "config.json").read_bytes() == \
                (tmp_path / f"whole_{name}" / "config.json").read_bytes()
            assert streamed.source_reads >= len(param_shapes(src_cfg))
            files[name] = streamed.weights_path
    finally:
        source.close()
    assert not list(tmp_path.glob(".drawn-source*")), "the drawn source is removed by close()"
    parity = stream.compare_files(files["ms"], files["pt"])   # the streamed parity: MindSpore = PyTorch, bit for bit
    assert parity.identical and parity.max_ulp == 0 and parity.compared == len(recipes), parity.summary()


@pytest.mark.slow
def test_streamed_seed_case_bert_small2base_aki_writes_the_bytes_of_the_in_memory_path(tmp_path):
    """A seed-size case (cases/cases.toml bert_small2base_aki), both frameworks: the same files."""
    src_cfg, dst_cfg = preset("bert", "small"), preset("bert", "base")
    recipes = compile_recipes(build_plan(src_cfg, dst_cfg, "aki", "paper", 0))
    source = stream.Source.open(None, src_cfg, 0, scratch=tmp_path)
    try:
        for name in ("pt", "ms"):
            streamed = stream.grow(name, recipes, source, dst_cfg, tmp_path / "s")
            whole = _in_memory(name, recipes, src_cfg, dst_cfg, 0, tmp_path / "w")
            assert sha256(streamed.weights_path) == sha256(whole), name
            streamed.weights_path.unlink()
            whole.unlink()
    finally:
        source.close()


def test_drawn_source_holds_init_state_and_reads_tensor_by_tensor(tmp_path):
    cfg = preset("gpt2", "tiny_wd")
    path = stream.draw_source(cfg, 5, tmp_path / "src.safetensors")
    want = init_state(cfg, 5)
    with TensorFile(path) as f:
        assert list(f) == list(want)
        for name, value in want.items():
            got = f[name]
            assert got.dtype == np.float32 and np.array_equal(got, value), name
            assert got.flags.writeable and got.flags.c_contiguous   # MindSpore's from_numpy takes it as is
        assert f.bytes_read == sum(v.nbytes for v in want.values())
    write_ckpt(tmp_path / "src.ckpt", want)
    with TensorFile(tmp_path / "src.ckpt") as f:
        for name, value in want.items():
            assert np.array_equal(f[name], value), name


def test_source_window_reads_each_tensor_once_while_it_is_needed_again_soon():
    reads = []

    class Counting(dict):
        def __getitem__(self, name):
            reads.append(name)
            return super().__getitem__(name)

    source = Counting(a=np.zeros(1), b=np.zeros(1), c=np.zeros(1))
    # a at 0 and 1 (within the window: kept); b at 1 and 5 (beyond it: read again); c once
    window = SourceWindow(source, [("a",), ("a", "b"), ("c",), (), (), ("b",)], window=2)
    for i in range(6):
        window.arrays(i)
        window.done(i)
    assert reads == ["a", "b", "c", "b"] and window.reads == 4 and not window.held


def _grown_pair(tmp_path, family="gpt2", src="tiny", dst="tiny_wd", method="aki"):
    src_cfg, dst_cfg = preset(family, src), preset(family, dst)
    recipes = compile_recipes(build_plan(src_cfg, dst_cfg, method, "paper", 1))
    source = stream.Source.open(None, src_cfg, 1, scratch=tmp_path)
    try:
        pt = stream.grow("pt", recipes, source, dst_cfg, tmp_path / "pt").weights_path
        ms = stream.grow("ms", recipes, source, dst_cfg, tmp_path / "ms").weights_path
    finally:
        source.close()
    return pt, ms


@pytest.mark.parametrize("piece", [None, 4096, 1000 * 4])
def test_compare_files_streams_both_files_and_hashes_them(tmp_path, piece):
    pt, ms = _grown_pair(tmp_path)
    parity = stream.compare_files(ms, pt, piece=piece)
    assert parity.identical and parity.max_ulp == 0 and parity.compared == len(TensorFile(pt))
    assert (parity.got_sha256, parity.ref_sha256) == (sha256(ms), sha256(pt))


def test_compare_files_lines_up_a_ckpt_split_in_slices(tmp_path):
    """MindSpore splits a tensor over 512 MiB into slices: the pieces of the two files do not line up."""
    cfg = preset("gpt2", "tiny")
    state = init_state(cfg, 0)
    write_safetensors(tmp_path / "a.safetensors", state)
    from harness.core.formats.writers import CkptStream
    with CkptStream(tmp_path / "a.ckpt", chunk=3000) as w:   # every large tensor in slices of 3000 bytes
        for name, value in state.items():
            w.write(name, value)
    parity = stream.compare_files(tmp_path / "a.ckpt", tmp_path / "a.safetensors", piece=4096 * 3)
    assert parity.identical and parity.compared == len(state)
    assert parity.got_sha256 == sha256(tmp_path / "a.ckpt")


def test_compare_files_names_the_tensor_one_ulp_off_and_missing_ones(tmp_path):
    cfg = preset("gpt2", "tiny")
    state = init_state(cfg, 0)
    write_safetensors(tmp_path / "ref.safetensors", state)
    bad = dict(state)
    name = "transformer.h.1.mlp.c_fc.weight"
    bad[name] = state[name].copy()
    bad[name][3, 7] = np.nextafter(bad[name][3, 7], np.float32(np.inf))
    bad["transformer.ln_f.bias"] = -0.0 * state["transformer.ln_f.bias"]     # -0 vs +0: 0 ULP, still a difference
    del bad["transformer.wpe.weight"]
    write_ckpt(tmp_path / "got.ckpt", bad)
    parity = stream.compare_files(tmp_path / "got.ckpt", tmp_path / "ref.safetensors")
    assert not parity.identical
    assert parity.max_ulp == 1 and parity.worst == name
    assert {d.name for d in parity.differing} == {name, "transformer.ln_f.bias"}
    assert any("transformer.wpe.weight" in p for p in parity.problems)


def test_compare_files_by_name_when_orders_differ(tmp_path):
    cfg = preset("bert", "tiny")
    state = init_state(cfg, 0)
    write_safetensors(tmp_path / "ref.safetensors", state)
    write_ckpt(tmp_path / "got.ckpt", dict(reversed(list(state.items()))))
    parity = stream.compare_files(tmp_path / "got.ckpt", tmp_path / "ref.safetensors")
    assert parity.identical and parity.compared == len(state)
    assert parity.got_sha256 == sha256(tmp_path / "got.ckpt")


def test_sequential_reader_hashes_every_byte_and_refuses_nothing_whole(tmp_path):
    state = init_state(preset("bert", "tiny"), 0)
    write_ckpt(tmp_path / "m.ckpt", state)
    with SequentialReader(tmp_path / "m.ckpt", piece=8192) as r:
        for name, entry, pieces in r.tensors():
            got = b"".join(bytes(p) for p in pieces)
            assert got == state[name].tobytes(), name
            assert entry.nbytes == len(got)
    assert r.hexdigest() == sha256(tmp_path / "m.ckpt")


# -- the CLI ---------------------------------------------------------------------------------------
def test_cli_expand_is_streamed_reports_parity_and_leaves_no_scratch(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["expand", "--model", "bert", "--src", "tiny", "--dst", "tiny_wd", "--method", "aki",
                 "--seed", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "parity (streamed, model.ckpt vs model.safetensors):" in printed and "max ULP 0" in printed
    assert "peak RSS MB" in printed
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.ckpt", "model.safetensors", "plan.json"]
    log = json.loads((out / "plan.json").read_text())
    assert log["streamed"] and log["parity"]["identical"] and log["parity"]["max_ulp"] == 0
    assert log["parity"]["sha256"] == {"model.ckpt": sha256(out / "model.ckpt"),
                                       "model.safetensors": sha256(out / "model.safetensors")}


@pytest.mark.parametrize("executor", [None, "ops"])
def test_cli_expand_lossless_is_streamed_in_both_frameworks_0_ulp(tmp_path, capsys, executor):
    """--method lossless through the streamed path: MindSpore's file (its default executor, and its
    own ops) 0 ULP from PyTorch's, the grown config (LayerNorm eps scaled, harness.core.lossless)
    saved, the bytes those of the in-memory path."""
    out = tmp_path / "o"
    argv = ["expand", "--model", "gpt2", "--src", "tiny", "--dst", "tiny_w112", "--method", "lossless",
            "--sampling", "balanced", "--seed", "6", "--out", str(out)]
    assert main(argv + (["--ms-executor", executor] if executor else [])) == 0
    printed = capsys.readouterr().out
    assert "parity (streamed, model.ckpt vs model.safetensors):" in printed and "max ULP 0," in printed
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.ckpt", "model.safetensors", "plan.json"]
    log = json.loads((out / "plan.json").read_text())
    assert log["parity"]["identical"] and log["parity"]["max_ulp"] == 0 and log["parity"]["problems"] == []
    plan = build_plan(preset("gpt2", "tiny"), preset("gpt2", "tiny_w112"), "lossless", "balanced", 6)
    saved = json.loads((out / "config.json").read_text())
    assert saved == plan.dst.to_hf() and saved != preset("gpt2", "tiny_w112").to_hf()   # eps scaled
    whole = _in_memory("pt", compile_recipes(plan), plan.src, plan.dst, 6, tmp_path / "whole")
    assert sha256(out / "model.safetensors") == sha256(whole)


def test_cli_expand_from_a_ckpt_source_streams_it(tmp_path, capsys):
    cfg = preset("gpt2", "tiny")
    ms = frameworks.load("ms")
    ms.io.save(tmp_path / "src", cfg, {k: ms.io.to_tensor(v) for k, v in init_state(cfg, 4).items()})
    assert main(["expand", "--model", "gpt2", "--src", "tiny", "--dst", "tiny_wd", "--seed", "4", "--out",
                 str(tmp_path / "from_ckpt")]) == 0
    assert main(["expand", "--model", "gpt2", "--dst", "tiny_wd", "--seed", "4", "--src-ckpt",
                 str(tmp_path / "src" / "model.ckpt"), "--out", str(tmp_path / "from_file")]) == 0
    for weights in ("model.safetensors", "model.ckpt"):
        assert sha256(tmp_path / "from_ckpt" / weights) == sha256(tmp_path / "from_file" / weights), weights


def test_cli_expand_refuses_a_run_the_disk_cannot_hold_before_writing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(stream, "DISK_MARGIN", 1 << 60)
    out = tmp_path / "o"
    assert main(["expand", "--model", "gpt2", "--src", "tiny", "--dst", "tiny_wd", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "GB are free there" in err and "fix: free some disk" in err
    assert not out.exists()


def test_a_drawn_source_lives_in_a_scratch_folder_of_its_own_removed_by_close(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    source = stream.Source.open(None, preset("gpt2", "tiny"), 1, scratch=out)
    try:
        scratch = [p for p in out.iterdir() if p.name != "notes.txt"]
        assert len(scratch) == 1 and scratch[0].is_dir() and scratch[0].name.startswith(".drawn-source.")
        assert scratch[0].stat().st_mode & 0o777 == 0o700                     # private, as tempfile.mkdtemp's
        assert source.path.parent == scratch[0] and [p.name for p in scratch[0].iterdir()] == ["source.safetensors"]
    finally:
        source.close()
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    source.close()                                                            # twice: nothing more to do


@pytest.mark.parametrize("error", [BadInput("disk full", "free some"), KeyboardInterrupt()])
def test_a_draw_that_fails_or_is_interrupted_leaves_no_scratch_folder(tmp_path, monkeypatch, error):
    """Source.open removes its scratch folder itself when drawing fails (an error, Ctrl-C) midway."""
    real = stream.iter_init

    def failing(cfg, seed):
        for i, item in enumerate(real(cfg, seed)):
            if i == 3:
                raise error
            yield item
    monkeypatch.setattr(stream, "iter_init", failing)
    with pytest.raises(type(error)):
        stream.Source.open(None, preset("gpt2", "tiny"), 1, scratch=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_cleanup_removes_an_open_scratch_folder(tmp_path):
    """The CLI's interrupt path (discard_live) removes a drawn source's folder even where no close()
    runs: the folder is registered before it exists (harness.core.formats.atomic.temp_beside)."""
    from harness.core.formats.atomic import discard_live
    source = stream.Source.open(None, preset("gpt2", "tiny"), 1, scratch=tmp_path)
    assert len(list(tmp_path.iterdir())) == 1
    assert source.scratch in discard_live()
    assert list(tmp_path.iterdir()) == []
    source.close()


def test_a_scratch_folder_left_by_a_killed_run_is_removed_by_the_next_draw(tmp_path):
    """SIGKILL leaves the scratch folder behind (no cleanup runs); its pid names it, so the next run
    drawing a source into that output folder removes it (a live process's folder stays)."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".drawn-source.{int(dead.stdout)}.0badc0de.partial"
    live = tmp_path / f".drawn-source.{os.getppid()}.0badc0de.partial"
    for folder in (stale, live):
        folder.mkdir()
        (folder / "source.safetensors").write_bytes(b"left over")
    source = stream.Source.open(None, preset("gpt2", "tiny"), 1, scratch=tmp_path)
    source.close()
    assert [p.name for p in tmp_path.iterdir()] == [live.name]


def test_a_failing_write_stops_the_run_and_leaves_no_partial_file(tmp_path, monkeypatch):
    """An error on the writer thread (disk full, say) reaches the expander, which stops, and the
    temporary file goes; the drawn source, in its scratch folder inside the output folder as the CLI
    places it, goes with close()."""
    src_cfg, dst_cfg = preset("gpt2", "tiny"), preset("gpt2", "tiny_wd")
    recipes = compile_recipes(build_plan(src_cfg, dst_cfg, "aki", "paper", 1))
    from harness.core.formats.writers import SafetensorsStream
    real, calls = SafetensorsStream.write, []

    def write(self, name, array):
        calls.append(name)
        if len(calls) == 5:
            raise BadInput(f"{self.path}: cannot write: No space left on device", "free some disk")
        return real(self, name, array)

    source = stream.Source.open(None, src_cfg, 1, scratch=tmp_path / "o")
    monkeypatch.setattr(SafetensorsStream, "write", write)
    try:
        with pytest.raises(BadInput, match="No space left"):
            stream.grow("pt", recipes, source, dst_cfg, tmp_path / "o")
        assert [p.name for p in (tmp_path / "o").iterdir()] == [source.scratch.name]   # no partial weights file
    finally:
        source.close()
    assert len(calls) <= 6   # stopped at once: at most the tensor already queued was offered
    assert list((tmp_path / "o").iterdir()) == []


def test_peak_rss_reads_the_os_and_resets():
    before = stream.peak_rss()
    assert before >= stream.current_rss() > 0
    block = np.ones(64 << 20, np.uint8)
    assert stream.peak_rss() >= before
    del block
    if stream.reset_peak_rss():
        assert stream.peak_rss() <= stream.current_rss() + (8 << 20)


@pytest.mark.slow
def test_streamed_growth_holds_less_than_the_target(tmp_path):
    """gpt2 medium -> large (3.1 GB target), each framework in a child process: peak RSS beyond the
    process after imports stays under a third of the target."""
    for name in ("pt", "ms"):
        done = subprocess.run([sys.executable, str(ROOT / "tools" / "bench_scale.py"), "--one", "gpt2:medium:large",
                               "--frameworks", name, "--workdir", str(tmp_path), "--no-floor", "--json"],
                              cwd=ROOT, capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, done.stderr[-3000:]
        row = json.loads(done.stdout.strip().splitlines()[-1])[0]
        assert row["rss_beyond_bytes"] < row["target_bytes"] / 3, row
