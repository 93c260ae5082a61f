"""The language-model heads: BERT's masked-LM head (BertForMaskedLM) and GPT-2's tied one.

- both model trees against stock transformers on the same weights (names, logits);
- growth keeps the head's function (exact FPI and lossless: logits equal the source's);
- folders this tool writes load in stock transformers (AutoModelForMaskedLM, GPT2LMHeadModel),
  offline, every weight in place, and its logits agree with ours;
- a source without a head (real MiniLM) gets a seeded one, and the command says so.
Run with -s to see the numbers.
"""
import numpy as np
import pytest
import torch
import transformers

from harness.cli import main
from harness.core.config import preset
from harness.core.families import param_shapes
from harness.core.formats.checkpoint import load_checkpoint
from harness.core.lm_head import add_mlm_head, seeded_mlm_head, with_mlm_head
from harness.core.plan import build_plan
from harness.core.reference import reference_expand
from harness.suite import frameworks
from harness.suite.metrics import relative
from harness.suite.tokenizer import minilm_dir

LIMIT = {"pt": 1e-6, "ms": 1e-5}   # as tests/test_models.py: PyTorch runs transformers' kernels


def _noisy(cfg, seed):
    """Weights N(0, 0.02), LayerNorm scales 1 + N(0, 0.02), biases N(0, 0.02): a wrong axis shows."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in param_shapes(cfg).items():
        value = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
        if ".LayerNorm." in name and name.endswith(".weight"):
            value += np.float32(1.0)
        state[name] = value
    return state


def _ours(fw_name, cfg, state, ids):
    fw = frameworks.load(fw_name)
    model = fw.models.build_model(cfg)
    fw.models.load_numpy_state(model, state)
    return fw.models.run_forward(model, ids, np.ones_like(ids))


def _hf_logits(model, ids):
    model.eval()
    with torch.inference_mode():
        return model(input_ids=torch.from_numpy(ids)).logits.numpy()


def test_mlm_table_is_bert_for_masked_lm_without_the_prefix():
    cfg = with_mlm_head(preset("bert", "tiny"))
    hf = transformers.BertForMaskedLM(transformers.BertConfig(**cfg.to_hf()))
    theirs = {n.removeprefix("bert."): tuple(p.shape) for n, p in hf.named_parameters()}
    assert theirs == param_shapes(cfg)   # decoder weight and bias are ties: not parameters of their own
    assert "pooler.dense.weight" not in param_shapes(cfg) and cfg.to_hf()["architectures"] == ["BertForMaskedLM"]


@pytest.mark.parametrize("fw", ["pt", "ms"])
def test_mlm_logits_match_transformers(fw):
    cfg = with_mlm_head(preset("bert", "tiny"))
    state = _noisy(cfg, 3)
    hf = transformers.BertForMaskedLM(transformers.BertConfig(**cfg.to_hf(), attn_implementation="eager"))
    with torch.no_grad():
        for name, p in hf.named_parameters():
            p.copy_(torch.from_numpy(state[name.removeprefix("bert.")]))
    assert hf.cls.predictions.decoder.weight is hf.bert.embeddings.word_embeddings.weight
    ids = np.random.default_rng(3).integers(0, cfg.vocab, (3, 16))
    ref = _hf_logits(hf, ids)
    got = _ours(fw, cfg, state, ids)
    err = relative(got["logits"], ref)
    print(f"\nbert tiny + MLM head, {fw} vs transformers BertForMaskedLM: logits rel {err:.2e}")
    assert got["logits"].shape == (3, 16, cfg.vocab) and err <= LIMIT[fw]


def test_seeded_head_is_drawn_from_the_seed_and_drops_the_pooler():
    cfg = preset("bert", "tiny")
    state = _noisy(cfg, 1)
    with_head, note = add_mlm_head(state, cfg, seed=7)
    assert list(with_head) == list(param_shapes(with_mlm_head(cfg)))
    assert "seeded (seed 7)" in note and "pooler dropped" in note
    again = seeded_mlm_head(cfg, 7)
    assert all(np.array_equal(with_head[n], again[n]) for n in again)
    assert not np.array_equal(seeded_mlm_head(cfg, 8)["cls.predictions.transform.dense.weight"],
                              again["cls.predictions.transform.dense.weight"])
    kept, note = add_mlm_head(with_head, cfg, seed=9)   # a state with a head keeps it
    assert note == "" and all(kept[n] is with_head[n] for n in kept)


@pytest.mark.parametrize("method,src,dst", [("fpi", "tiny", "tiny2x"), ("lossless", "tiny", "tiny2x_d")])
@pytest.mark.parametrize("fw", ["pt", "ms"])
def test_growth_keeps_the_masked_lm_function(fw, method, src, dst):
    """Exact FPI (balanced, width doubled) and lossless (width doubled, 2 -> 5 layers): the grown
    BertForMaskedLM's logits are the source's (the tied decoder sums the copies: its LayerNorm / c_h)."""
    src_cfg, dst_cfg = with_mlm_head(preset("bert", src)), with_mlm_head(preset("bert", dst))
    state = _noisy(src_cfg, 4)
    plan = build_plan(src_cfg, dst_cfg, method, "balanced", seed=2)
    grown = reference_expand(plan, state)
    ids = np.random.default_rng(4).integers(0, src_cfg.vocab, (2, 12))
    before, after = _ours(fw, src_cfg, state, ids), _ours(fw, plan.dst, grown, ids)
    err = relative(after["logits"], before["logits"])
    print(f"\n{method} {src} -> {dst} with the MLM head ({fw}): logits rel {err:.2e}")
    assert err <= 1e-5


def test_growth_without_the_head_division_would_change_the_logits():
    """The planted fault for the rule above: the head's LayerNorm grown like the stream's (no / c_h)
    doubles the logits, which the preservation check sees."""
    src_cfg, dst_cfg = with_mlm_head(preset("bert", "tiny")), with_mlm_head(preset("bert", "tiny2x"))
    state = _noisy(src_cfg, 4)
    plan = build_plan(src_cfg, dst_cfg, "fpi", "balanced", seed=2)
    grown = reference_expand(plan, state)
    for p in ("weight", "bias"):
        name = f"cls.predictions.transform.LayerNorm.{p}"
        grown[name] = state[name][plan.hidden_map]
    ids = np.random.default_rng(4).integers(0, src_cfg.vocab, (2, 12))
    assert relative(_ours("pt", dst_cfg, grown, ids)["logits"], _ours("pt", src_cfg, state, ids)["logits"]) > 0.1


def test_grown_mlm_folder_loads_in_auto_model_for_masked_lm(tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "grown"
    assert main(["init", "--model", "bert", "--size", "tiny", "--head", "mlm", "--seed", "3", "--out", str(src)]) == 0
    assert main(["expand", "--model", "bert", "--src-ckpt", str(src), "--dst", "tiny_wd", "--method", "aki",
                 "--out", str(out)]) == 0
    cfg, state = load_checkpoint(out / "model.safetensors")
    _, state_ms = load_checkpoint(out / "model.ckpt")
    assert cfg.head == "mlm" and all(np.array_equal(state[n], state_ms[n]) for n in state)
    model, info = transformers.AutoModelForMaskedLM.from_pretrained(
        out, output_loading_info=True, attn_implementation="eager")
    assert type(model).__name__ == "BertForMaskedLM"
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    ids = np.random.default_rng(0).integers(0, cfg.vocab, (2, 10))
    ref = _hf_logits(model, ids)
    for fw in ("pt", "ms"):
        err = relative(_ours(fw, cfg, state, ids)["logits"], ref)
        print(f"\ngrown tiny_wd BertForMaskedLM, {fw} vs transformers: logits rel {err:.2e}")
        assert err <= LIMIT[fw]


def test_minilm_without_a_head_gets_a_seeded_one_and_says_so(tmp_path, capsys):
    out = tmp_path / "minilm_mlm"
    assert main(["expand", "--model", "bert", "--src-ckpt", str(minilm_dir()), "--dst", "minilm", "--head", "mlm",
                 "--method", "fpi", "--framework", "pt", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "masked-LM head seeded (seed 0): the source has none" in printed.out
    cfg, state = load_checkpoint(out)
    assert cfg.head == "mlm" and "pooler.dense.weight" not in state
    _, source = load_checkpoint(minilm_dir())
    assert np.array_equal(state["encoder.layer.5.output.dense.weight"], source["encoder.layer.5.output.dense.weight"])
    model = transformers.AutoModelForMaskedLM.from_pretrained(out, attn_implementation="eager")
    ids = np.array([[101, 1996, 4937, 2938, 2006, 1996, 13523, 1012, 102]])
    assert relative(_ours("pt", cfg, state, ids)["logits"], _hf_logits(model, ids)) <= LIMIT["pt"]


@pytest.mark.parametrize("args, says", [
    (["--model", "gpt2", "--head", "mlm"], "unknown gpt2 head 'mlm'"),
    (["--model", "bert", "--head", "nsp"], "unknown bert head 'nsp'"),
])
def test_a_head_the_family_has_not_is_refused(tmp_path, capsys, args, says):
    assert main(["init", *args, "--size", "tiny", "--out", str(tmp_path / "o")]) == 2
    assert says in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_grown_gpt2_folder_loads_in_gpt2_lm_head_model(tmp_path, capsys):
    out = tmp_path / "grown"
    assert main(["expand", "--model", "gpt2", "--src", "tiny", "--dst", "tiny_wd", "--method", "aki",
                 "--out", str(out)]) == 0
    cfg, state = load_checkpoint(out)
    model, info = transformers.GPT2LMHeadModel.from_pretrained(
        out, output_loading_info=True, attn_implementation="eager")
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    assert model.lm_head.weight is model.transformer.wte.weight
    ids = np.random.default_rng(0).integers(0, cfg.vocab, (2, 10))
    ref = _hf_logits(model, ids)
    for fw in ("pt", "ms"):
        err = relative(_ours(fw, cfg, state, ids)["logits"], ref)
        print(f"\ngrown tiny_wd GPT-2, {fw} vs transformers GPT2LMHeadModel: logits rel {err:.2e}")
        assert err <= LIMIT[fw]
