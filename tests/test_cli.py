"""`python -m harness expand / infer` end to end on tiny presets and the real MiniLM."""
import json

import numpy as np
import pytest

from harness.cli import main
from harness.core.families import param_shapes
from harness.core.formats.checkpoint import load_checkpoint
from harness.suite.tokenizer import minilm_dir


def test_expand_both_frameworks_writes_identical_models_and_provenance(tmp_path, capsys, ms_default_executor):
    out = tmp_path / "grown"
    assert main(["expand", "--model", "gpt2", "--src", "tiny", "--dst", "tiny_wd", "--method", "aki",
                 "--framework", "both", "--seed", "4", "--out", str(out)]) == 0
    cfg_pt, pt = load_checkpoint(out / "model.safetensors")
    cfg_ms, ms = load_checkpoint(out / "model.ckpt")
    assert cfg_pt == cfg_ms and list(pt) == list(ms) == list(param_shapes(cfg_pt))
    for name in pt:
        assert np.array_equal(pt[name], ms[name]), name
    log = json.loads((out / "plan.json").read_text())
    assert log["plan"]["method"] == "aki" and log["plan"]["seed"] == 4
    assert len(log["plan"]["hidden_map"]) == 96
    tensors = log["tensors"]["tensors"]
    assert set(tensors) == set(pt)
    assert tensors["transformer.h.0.mlp.c_fc.weight"]["sources"] == ["transformer.h.0.mlp.c_fc.weight",
                                                                     "transformer.h.1.mlp.c_fc.weight"]
    assert set(log["seconds"]) == {"PyTorch", "MindSpore"}
    assert log["executor"] == {"PyTorch": "ops", "MindSpore": ms_default_executor}
    printed = capsys.readouterr().out
    assert "expand s" in printed
    # not a terminal: the table is whole (rich would cut it to 80 columns: "framewo…", "/tmp/c…")
    assert "framework" in printed and str(out / "model.ckpt") in printed and "…" not in printed


def test_expand_ms_by_its_own_ops_writes_the_same_checkpoint(tmp_path, capsys, needs_kernel):
    args = ["expand", "--model", "bert", "--src", "tiny", "--dst", "tiny_wd", "--method", "aki", "--framework", "ms"]
    assert main([*args, "--out", str(tmp_path / "kernel")]) == 0
    assert main([*args, "--ms-executor", "ops", "--out", str(tmp_path / "ops")]) == 0
    assert (tmp_path / "kernel" / "model.ckpt").read_bytes() == (tmp_path / "ops" / "model.ckpt").read_bytes()
    assert json.loads((tmp_path / "kernel" / "plan.json").read_text())["executor"] == {"MindSpore": "kernel"}
    assert json.loads((tmp_path / "ops" / "plan.json").read_text())["executor"] == {"MindSpore": "ops"}


@pytest.mark.parametrize("framework,executor,says", [("ms", "fast", "unknown MindSpore executor 'fast'"),
                                                      ("pt", "ops", "--ms-executor applies to MindSpore")])
def test_a_wrong_ms_executor_is_refused_before_any_work(tmp_path, capsys, framework, executor, says):
    assert main(["expand", "--model", "bert", "--src", "tiny", "--dst", "tiny_w", "--framework", framework,
                 "--ms-executor", executor, "--out", str(tmp_path / "o")]) == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_minilm_grows_to_768_and_loads_in_stock_transformers(tmp_path, capsys):
    import torch
    from transformers import AutoModel
    out = tmp_path / "minilm768"
    assert main(["expand", "--model", "bert", "--dst", "minilm2x", "--src-ckpt", str(minilm_dir()),
                 "--method", "fpi", "--sampling", "balanced", "--framework", "pt", "--out", str(out)]) == 0
    model = AutoModel.from_pretrained(out)
    assert model.config.hidden_size == 768 and model.config.num_attention_heads == 24
    _, grown = load_checkpoint(out)
    for name, p in model.named_parameters():
        assert torch.equal(p.detach(), torch.from_numpy(grown[name])), name


@pytest.mark.parametrize("framework", ["pt", "ms"])
def test_infer_prints_sentence_embedding(tmp_path, capsys, framework):
    assert main(["infer", "--sentence", "I like it", "--ckpt", str(minilm_dir()), "--framework", framework]) == 0
    text = capsys.readouterr().out
    assert "shape (384,)" in text and "L2 norm" in text and "[101, 1045, 2066, 2009, 102]" in text


def test_infer_agrees_across_frameworks_on_a_grown_model(tmp_path, capsys):
    out = tmp_path / "g"
    assert main(["expand", "--model", "bert", "--dst", "minilm2x", "--src-ckpt", str(minilm_dir()),
                 "--method", "aki", "--out", str(out)]) == 0
    norms, firsts = {}, {}
    for framework, ckpt in (("pt", out / "model.safetensors"), ("ms", out / "model.ckpt")):
        capsys.readouterr()
        assert main(["infer", "--sentence", "I like it", "--ckpt", str(ckpt), "--framework", framework]) == 0
        text = capsys.readouterr().out
        assert "MiniLM's; the checkpoint has none" in text
        norms[framework] = float(text.split("L2 norm ")[1].split()[0])
        firsts[framework] = np.array([float(v) for v in text.split("first values: ")[1].split()])
    assert abs(norms["pt"] - norms["ms"]) <= 1e-5 * norms["pt"]
    # printed to 6 decimals: a permuted or sign-flipped embedding with the same norm fails here
    assert len(firsts["pt"]) == 8 and np.abs(firsts["pt"] - firsts["ms"]).max() <= 2e-6


def test_infer_refuses_ids_outside_the_vocabulary(tmp_path, capsys):
    assert main(["init", "--model", "bert", "--size", "tiny", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["infer", "--sentence", "Photosynthesis is remarkable", "--ckpt", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "outside the model's vocabulary (1000)" in err and "fix:" in err


def test_expand_to_a_smaller_target_is_refused_before_any_work(tmp_path, capsys):
    assert main(["expand", "--model", "bert", "--src", "tiny2x", "--dst", "tiny", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "hidden" in err and "128" in err and "64" in err
    assert not (tmp_path / "o").exists()


def test_expand_lossless_grows_gpt2_to_a_width_that_is_no_multiple(tmp_path, capsys):
    out = tmp_path / "grown"
    assert main(["expand", "--model", "gpt2", "--src", "tiny", "--dst", "tiny_w80", "--method", "lossless",
                 "--framework", "both", "--out", str(out)]) == 0
    cfg_pt, pt = load_checkpoint(out / "model.safetensors")
    cfg_ms, ms = load_checkpoint(out / "model.ckpt")
    assert cfg_pt == cfg_ms and cfg_pt.hidden == 80 and cfg_pt.heads == 5
    assert cfg_pt.eps == pytest.approx(1e-5 * 64 / 80)   # the LayerNorm epsilon scaled with the stream
    for name in pt:
        assert np.array_equal(pt[name].view(np.uint32), ms[name].view(np.uint32)), name
    log = json.loads((out / "plan.json").read_text())
    assert log["plan"]["method"] == "lossless" and log["plan"]["depth_map"] == [0, 1]
    assert "the mean" in log["tensors"]["tensors"]["transformer.wte.weight"]["rule"]


def test_expand_lossless_bert_to_no_multiple_is_refused_before_any_work(tmp_path, capsys):
    assert main(["expand", "--model", "bert", "--src", "tiny", "--dst", "tiny_w", "--method", "lossless",
                 "--sampling", "balanced", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "64 -> 96" in err and "multiple" in err and "hidden 128 (heads 8)" in err and "fix:" in err
    assert not (tmp_path / "o").exists()
