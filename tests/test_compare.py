"""`python -m harness compare` and `convert` end to end: our HF folder against its .ckpt and against
converted copies (0 ULP, every tensor named), byte-identical round trips, an older transformers' .bin,
bad input; and the maps' sensitivity: four planted mapping faults, each caught and named."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.core.config import preset
from harness.core.families import param_shapes
from harness.core.formats.checkpoint import read_tensors, write_json, write_safetensors
from harness.kinds.growth.compare import compare_params
from harness.kinds.registry import load_tolerances
from harness.suite.checkpoints import compare_checkpoints

MAPS = Path(__file__).resolve().parent / "fixtures" / "maps"


def _rows(reports: Path) -> list[dict]:
    with open(reports / "parity.csv", newline="") as f:
        return list(csv.DictReader(f))


def _hf_folder(path: Path, family: str, seed: int = 0, extra: dict | None = None) -> dict:
    """A Hugging Face folder of `family`'s tiny preset, every tensor random (no two equal)."""
    cfg = preset(family, "tiny")
    rng = np.random.default_rng(seed)
    state = {n: rng.standard_normal(s).astype(np.float32) for n, s in param_shapes(cfg).items()}
    path.mkdir(parents=True)
    write_safetensors(path / "model.safetensors", {**state, **(extra or {})}, {"format": "pt"})
    write_json(path / "config.json", cfg.to_hf())
    return state


def _compare(capsys, tmp_path, *args) -> tuple[int, str, list[dict]]:
    reports = tmp_path / "reports"
    code = main(["compare", *map(str, args), "--reports", str(reports)])
    out = capsys.readouterr().out
    return code, out, _rows(reports) if (reports / "parity.csv").exists() else []


# -- acceptance: our checkpoints ----------------------------------------------------------------------
@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_hf_folder_against_its_ckpt_and_converted_copies_is_0_ulp_every_tensor_named(tmp_path, capsys, family):
    src = tmp_path / "m"
    assert main(["init", "--model", family, "--size", "tiny", "--framework", "both", "--out", str(src)]) == 0
    names = list(param_shapes(preset(family, "tiny")))
    code, out, rows = _compare(capsys, tmp_path, src, src / "model.ckpt")
    assert code == 0, out
    for name in names:   # one console line and a max ULP row of 0 per tensor
        assert f" {name} " in out
    ulp = {r["metric"][:-len(".max_ulp")]: r for r in rows if r["metric"].endswith(".max_ulp")}
    assert list(ulp) == names and all(r["value"] == "0" and r["status"] == "pass" for r in ulp.values())
    assert {r["kind"] for r in rows} == {"compare"} and not [r for r in rows if r["status"] == "fail"]
    assert "compare: pass" in out
    for target in ("ms-zoo", "ms-cells"):
        assert main(["convert", str(src), "--to", target, "--out", str(tmp_path / target)]) == 0
        assert f"as {family}/{target}" in capsys.readouterr().out
        code, out, rows = _compare(capsys, tmp_path, src, tmp_path / target)
        assert code == 0 and f"B: {tmp_path / target / 'model.ckpt'}: {family}/{target}" in out, out
        assert sum(r["metric"].endswith(".max_ulp") and r["value"] == "0" for r in rows) == len(names)


@pytest.mark.parametrize("family,target", [("bert", "ms-zoo"), ("gpt2", "ms-zoo"), ("gpt2", "ms-cells")])
def test_a_round_trip_gives_byte_identical_files(tmp_path, family, target):
    src = tmp_path / "m"
    assert main(["init", "--model", family, "--size", "tiny", "--framework", "both", "--out", str(src)]) == 0
    assert main(["convert", str(src), "--to", target, "--out", str(tmp_path / "a")]) == 0
    assert main(["convert", str(tmp_path / "a"), "--to", "hf", "--out", str(tmp_path / "hf")]) == 0
    assert main(["convert", str(tmp_path / "hf"), "--to", target, "--out", str(tmp_path / "b")]) == 0
    assert main(["convert", str(tmp_path / "b"), "--to", "ms", "--out", str(tmp_path / "ms")]) == 0
    assert (tmp_path / "hf" / "model.safetensors").read_bytes() == (src / "model.safetensors").read_bytes()
    assert (tmp_path / "hf" / "config.json").read_bytes() == (src / "config.json").read_bytes()
    assert (tmp_path / "a" / "model.ckpt").read_bytes() == (tmp_path / "b" / "model.ckpt").read_bytes()
    assert (tmp_path / "ms" / "model.ckpt").read_bytes() == (src / "model.ckpt").read_bytes()   # as `init` wrote it


def test_a_grown_model_compares_through_the_same_path(tmp_path, capsys):
    out = tmp_path / "grown"
    assert main(["expand", "--model", "gpt2", "--src", "tiny", "--dst", "tiny_w", "--method", "aki",
                 "--framework", "both", "--out", str(out)]) == 0
    code, printed, rows = _compare(capsys, tmp_path, out / "model.safetensors", out / "model.ckpt")
    assert code == 0 and "compare: pass: 28 tensors, max ULP 0" in printed
    # compare_params (the growth cases' parameter rows) and compare agree: one comparison path
    tol = load_tolerances()
    got = read_tensors(out / "model.ckpt")
    got["transformer.h.1.mlp.c_fc.weight"] = np.nextafter(got["transformer.h.1.mlp.c_fc.weight"], np.float32(9))
    growth = {r.metric: r for r in compare_params("c", got, out / "model.safetensors", tol)}
    assert growth["max_ulp"].value == 1 and "worst tensor transformer.h.1.mlp.c_fc.weight" in growth["max_ulp"].detail


def test_an_older_transformers_bin_with_buffers_and_a_tied_head_compares_equal(tmp_path, capsys):
    import torch
    src = tmp_path / "m"
    state = _hf_folder(src, "gpt2")
    old = tmp_path / "old"
    old.mkdir()
    # GPT2LMHeadModel of an older transformers: causal-mask buffers per layer, lm_head stored though tied
    tensors = {n: torch.from_numpy(a) for n, a in state.items()}
    for i in range(2):
        tensors[f"transformer.h.{i}.attn.bias"] = torch.tril(torch.ones(1, 1, 64, 64, dtype=torch.uint8))
        tensors[f"transformer.h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    tensors["lm_head.weight"] = tensors["transformer.wte.weight"].clone()
    torch.save(tensors, old / "pytorch_model.bin")
    code, out, rows = _compare(capsys, tmp_path, old / "pytorch_model.bin", src)
    assert code == 0, out
    by = {r["metric"]: r for r in rows}
    assert by["ignored"]["value"] == "4" and "causal-mask buffer" in by["ignored"]["detail"]
    assert by["ties"]["value"] == "0" and "tied copies checked: 1" in by["ties"]["detail"]


def test_an_old_bert_bin_with_gamma_beta_prefix_and_heads_compares_equal(tmp_path, capsys):
    import torch
    src = tmp_path / "m"
    state = _hf_folder(src, "bert")
    old = tmp_path / "old"
    old.mkdir()
    # BertForPreTraining of pytorch-pretrained-bert days: "bert." prefix, LayerNorm gamma / beta, heads
    tensors = {"bert." + n.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"):
               torch.from_numpy(a) for n, a in state.items()}
    tensors["cls.predictions.bias"] = torch.zeros(1000)
    tensors["cls.seq_relationship.weight"] = torch.zeros(2, 64)
    tensors["bert.embeddings.position_ids"] = torch.arange(64)[None]
    torch.save(tensors, old / "pytorch_model.bin")
    code, out, rows = _compare(capsys, tmp_path, old / "pytorch_model.bin", src)
    assert code == 0, out
    assert f"A: {old / 'pytorch_model.bin'}: bert/hf-legacy (prefix 'bert.')" in out
    assert {r["metric"]: r for r in rows}["ignored"]["value"] == "3"
    assert main(["convert", str(old / "pytorch_model.bin"), "--to", "hf", "--size", "tiny",
                 "--out", str(tmp_path / "hf")]) == 0
    assert (tmp_path / "hf" / "model.safetensors").read_bytes() == (src / "model.safetensors").read_bytes()


def test_bad_input_is_exit_2_naming_what_and_how(tmp_path, capsys):
    src = tmp_path / "m"
    _hf_folder(src, "bert")
    assert main(["compare", str(src), str(src), "--map-a", "zoo"]) == 2
    assert "unknown naming scheme 'zoo'" in capsys.readouterr().err
    junk = tmp_path / "junk.safetensors"
    write_safetensors(junk, {"foo.weight": np.zeros(3, np.float32)})
    assert main(["compare", str(junk), str(src)]) == 2
    err = capsys.readouterr().err
    assert "none of its 1 tensor names fits a known naming scheme" in err and "fix:" in err
    # convert writes every stored tensor or nothing
    odd = tmp_path / "odd"
    _hf_folder(odd, "bert", extra={"encoder.layer.0.attention.rotary": np.zeros(2, np.float32)})
    assert main(["convert", str(odd), "--to", "ms-zoo", "--out", str(tmp_path / "o")]) == 2
    assert "encoder.layer.0.attention.rotary" in capsys.readouterr().err
    assert not (tmp_path / "o" / "model.ckpt").exists()
    assert main(["convert", str(junk), "--to", "hf", "--out", str(tmp_path / "o2"), "--from", "hf"]) == 2
    assert main(["convert", str(src / "model.safetensors"), "--to", "nope", "--out", str(tmp_path / "o3")]) == 2
    assert "unknown target 'nope'" in capsys.readouterr().err


def test_compare_of_two_families_is_bad_input(tmp_path, capsys):
    _hf_folder(tmp_path / "b", "bert")
    _hf_folder(tmp_path / "g", "gpt2")
    assert main(["compare", str(tmp_path / "b"), str(tmp_path / "g"), "--reports", str(tmp_path / "r")]) == 2
    assert "a gpt2 model, the other checkpoint a bert one" in capsys.readouterr().err


# -- the maps' sensitivity: four planted mapping faults ------------------------------------------------
def _faulty_map(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def _failed_tensors(rows: list[dict]) -> set[str]:
    return {r["metric"].rsplit(".", 1)[0] for r in rows if r["status"] == "fail" and r["metric"].count(".") > 1}


def test_planted_missing_transpose_on_a_square_matrix_is_caught_and_named(tmp_path, capsys):
    """A converter's map forgets the transpose of the attention's square c_proj (Conv1D (in, out) vs
    Dense (out, in)): every shape check passes; compare against the correct map names it."""
    a = tmp_path / "a"
    _hf_folder(a, "gpt2")
    faulty = _faulty_map(tmp_path, "no_transpose", """
[scheme]
family = "gpt2"
extends = "ms-cells"
[[tensor]]
canonical = "transformer.h.{i}.attn.c_proj.weight"
stored = "h.{i}.attn.c_proj.weight"
""")
    assert main(["convert", str(a), "--to", str(faulty), "--out", str(tmp_path / "b")]) == 0   # shapes pass
    code, out, rows = _compare(capsys, tmp_path, a, tmp_path / "b", "--map-b", "ms-cells")
    assert code == 1
    assert _failed_tensors(rows) == {f"transformer.h.{i}.attn.c_proj.weight" for i in range(2)}
    assert "FAIL transformer.h.0.attn.c_proj.weight.max_ulp" in out
    assert "A holds B's tensor transposed: a map misses (or adds) a transpose (a square matrix" in out
    assert {r["metric"]: r for r in rows}["shapes"]["value"] == "0"


def test_planted_swapped_q_k_split_is_caught_and_named(tmp_path, capsys):
    """A port with separate q / k / v projections read with a map that lists k before q."""
    a = tmp_path / "a"
    _hf_folder(a, "gpt2")
    assert main(["convert", str(a), "--to", str(MAPS / "gpt2_split_qkv.toml"), "--out", str(tmp_path / "b")]) == 0
    code, out, _ = _compare(capsys, tmp_path, a, tmp_path / "b", "--map-b", MAPS / "gpt2_split_qkv.toml")
    assert code == 0, out   # the right map: 0 ULP
    text = (MAPS / "gpt2_split_qkv.toml").read_text()
    for w in ("weight", "bias"):   # k listed before q
        text = text.replace(f'["h.{{i}}.attn.q_proj.{w}", "h.{{i}}.attn.k_proj.{w}"',
                            f'["h.{{i}}.attn.k_proj.{w}", "h.{{i}}.attn.q_proj.{w}"')
    assert text.count("k_proj") == 2 and text.index("k_proj") < text.index("q_proj")
    swapped = _faulty_map(tmp_path, "kqv", text)
    code, out, rows = _compare(capsys, tmp_path, a, tmp_path / "b", "--map-b", swapped)
    assert code == 1
    assert _failed_tensors(rows) == {f"transformer.h.{i}.attn.c_attn.{w}" for i in range(2) for w in ("weight", "bias")}
    assert "FAIL transformer.h.1.attn.c_attn.weight.max_ulp" in out
    assert ("the same 3 parts along axis 1 in another order: A's (q, k, v) are B's (k, q, v): "
            "a fused tensor split (or fused) in the wrong order") in out
    assert "the same 3 parts along axis 0 in another order" in out   # the bias


def test_planted_tied_weight_stored_twice_with_different_values_is_caught_and_named(tmp_path, capsys):
    a = tmp_path / "a"
    state = _hf_folder(a, "gpt2")
    head = state["transformer.wte.weight"].copy()
    head[7, 3] = np.nextafter(head[7, 3], np.float32(9))
    _hf_folder(tmp_path / "b", "gpt2", extra={"lm_head.weight": head})
    code, out, rows = _compare(capsys, tmp_path, tmp_path / "b", a)
    assert code == 1
    ties = {r["metric"]: r for r in rows}["ties"]
    assert ties["status"] == "fail" and ties["value"] == "1"
    assert ("A: lm_head.weight is tied to transformer.wte.weight but differs from transformer.wte.weight: "
            "max abs") in ties["detail"] and "(max ULP 1): the tied weight is stored twice" in ties["detail"]
    assert "ties: 1 (limit 0) fail: A: lm_head.weight is tied to transformer.wte.weight" in out
    assert _failed_tensors(rows) == set()   # every tensor itself is equal
    assert main(["convert", str(tmp_path / "b"), "--to", "ms-zoo", "--out", str(tmp_path / "c")]) == 2
    assert "lm_head.weight is tied to transformer.wte.weight but differs" in capsys.readouterr().err


def test_planted_wrong_layernorm_pairing_is_caught_and_named(tmp_path, capsys):
    """The model zoo's own trans_dict_py pairs ln_f.weight with beta and ln_f.bias with gamma."""
    a = tmp_path / "a"
    _hf_folder(a, "gpt2")
    assert main(["convert", str(a), "--to", "ms-zoo", "--out", str(tmp_path / "b")]) == 0
    swapped = _faulty_map(tmp_path, "ln_swapped", """
[scheme]
family = "gpt2"
extends = "ms-zoo"
[[tensor]]
canonical = "transformer.ln_f.weight"
stored = "layer_norm.layer_norm.beta"
[[tensor]]
canonical = "transformer.ln_f.bias"
stored = "layer_norm.layer_norm.gamma"
""")
    code, out, rows = _compare(capsys, tmp_path, a, tmp_path / "b", "--map-b", swapped)
    assert code == 1
    assert _failed_tensors(rows) == {"transformer.ln_f.weight", "transformer.ln_f.bias"}
    assert ("A's values are B's transformer.ln_f.bias: the maps pair transformer.ln_f.weight with "
            "transformer.ln_f.bias (a swapped pairing)") in out


def test_compare_checkpoints_returns_the_rows_it_reports(tmp_path):
    _hf_folder(tmp_path / "a", "bert")
    result = compare_checkpoints(tmp_path / "a", tmp_path / "a" / "model.safetensors", load_tolerances())
    assert not result.failed and len(result.diff.tensors) == 39
    assert json.dumps([r.value for r in result.rows if r.metric == "max_ulp"]) == "[0]"
