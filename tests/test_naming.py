"""Naming schemes (harness/core/naming): the built-in maps round-trip every tensor bit for bit, the
model zoo maps give exactly the zoo's parameter list (tests/fixtures/zoo/, derived from the zoo's
source by tools/derive_zoo_params.py), and bad map files are refused naming file and entry."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.core.config import preset
from harness.core.errors import BadInput
from harness.core.families import param_shapes
from harness.core.naming import scheme as schemes
from harness.core.naming.engine import detect, from_canonical, to_canonical
from harness.core.seeded_init import init_state

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "tests" / "fixtures" / "zoo"
MAPS = ROOT / "tests" / "fixtures" / "maps"
BUILTIN = [(f, n) for f, n in schemes.builtin_paths()]


def _random_state(family: str, size: str = "tiny", seed: int = 0) -> dict[str, np.ndarray]:
    """Every tensor random (LayerNorm weights and biases too, so no two tensors are equal)."""
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(s).astype(np.float32) for n, s in param_shapes(preset(family, size)).items()}


@pytest.mark.parametrize("family,name", BUILTIN, ids=[f"{f}-{n}" for f, n in BUILTIN])
def test_every_builtin_map_round_trips_every_tensor_bit_for_bit_and_is_detected(family, name):
    state = init_state(preset(family, "tiny"), 0)
    scheme = schemes.builtin(family, name)
    stored = from_canonical(scheme, state)
    assert all(n.startswith(scheme.write_prefix) for n in stored) and len(stored) == len(state)
    back = to_canonical(scheme, stored)
    assert list(back.tensors) == list(state)   # the family's table order
    assert not (back.unmapped or back.problems or back.ignored or back.ties)
    for n, array in state.items():
        assert back.tensors[n].dtype == array.dtype and np.array_equal(back.tensors[n], array), n
    found, prefix = detect(list(stored))
    assert (found.family, found.name, prefix) == (family, name, scheme.write_prefix)
    for other in scheme.prefixes[1:]:   # every prefix the map accepts reads the same state
        again = to_canonical(scheme, from_canonical(scheme, state, other))
        assert again.prefix == other and list(again.tensors) == list(state)


def test_transposed_rules_store_the_matrix_transposed():
    state = _random_state("gpt2")
    stored = from_canonical(schemes.builtin("gpt2", "ms-cells"), state)
    w = state["transformer.h.1.attn.c_attn.weight"]
    assert stored["transformer.h.1.attn.c_attn.weight"].shape == w.shape[::-1]
    assert np.array_equal(stored["transformer.h.1.attn.c_attn.weight"], w.T)
    assert np.array_equal(stored["transformer.h.1.ln_2.gamma"], state["transformer.h.1.ln_2.weight"])


def test_a_user_map_splits_the_fused_qkv_in_order_and_fuses_it_back():
    state = _random_state("gpt2")
    split = schemes.load_file(MAPS / "gpt2_split_qkv.toml")
    stored = from_canonical(split, state)
    d = preset("gpt2", "tiny").hidden
    w, b = state["transformer.h.0.attn.c_attn.weight"], state["transformer.h.0.attn.c_attn.bias"]
    for k, part in enumerate(("q", "k", "v")):
        assert np.array_equal(stored[f"transformer.h.0.attn.{part}_proj.weight"], w[:, k * d:(k + 1) * d].T)
        assert np.array_equal(stored[f"transformer.h.0.attn.{part}_proj.bias"], b[k * d:(k + 1) * d])
    assert "transformer.h.0.attn.c_attn.weight" not in stored
    back = to_canonical(split, stored)
    assert all(np.array_equal(back.tensors[n], state[n]) for n in state)
    assert back.origin["transformer.h.0.attn.c_attn.weight"].how == "fused from 3 stored parts along axis 1, transposed"


def test_a_map_may_fuse_canonical_tensors_into_one_stored_tensor(tmp_path):
    path = tmp_path / "fused.toml"
    path.write_text("""
[scheme]
family = "bert"
extends = "hf"
[[tensor]]
canonical = ["encoder.layer.{i}.attention.self.query.weight", "encoder.layer.{i}.attention.self.key.weight",
             "encoder.layer.{i}.attention.self.value.weight"]
stored = "encoder.layer.{i}.attention.qkv.weight"
axis = 0
""")
    scheme = schemes.load_file(path)
    state = _random_state("bert")
    stored = from_canonical(scheme, state)
    qkv = stored["encoder.layer.1.attention.qkv.weight"]
    assert qkv.shape == (192, 64)
    assert np.array_equal(qkv[64:128], state["encoder.layer.1.attention.self.key.weight"])
    back = to_canonical(scheme, stored)
    assert list(back.tensors) == list(state) and all(np.array_equal(back.tensors[n], state[n]) for n in state)


def test_stored_names_are_mapped_tied_ignored_or_reported_never_dropped():
    state = _random_state("gpt2")
    stored = from_canonical(schemes.builtin("gpt2", "hf"), state)
    stored["lm_head.weight"] = stored["transformer.wte.weight"].copy()
    stored["transformer.h.0.attn.bias"] = np.ones((1, 1, 4, 4), np.float32)   # an old causal-mask buffer
    stored["transformer.h.0.attn.rotary"] = np.zeros(3, np.float32)
    del stored["transformer.h.1.mlp.c_fc.bias"]
    got = to_canonical(schemes.builtin("gpt2", "hf"), stored)
    assert [t.stored for t in got.ties] == ["lm_head.weight"] and got.ties[0].equal
    assert [n for n, _ in got.ignored] == ["transformer.h.0.attn.bias"]
    assert got.unmapped == ["transformer.h.0.attn.rotary"]
    assert "transformer.h.1.mlp.c_fc.bias" not in got.tensors
    assert len(got.tensors) + len(got.ties) + len(got.ignored) + len(got.unmapped) == len(stored)


def test_a_rule_whose_shapes_do_not_fit_is_a_problem_naming_what_it_tried():
    split = schemes.load_file(MAPS / "gpt2_split_qkv.toml")
    stored = from_canonical(split, _random_state("gpt2"))
    stored["transformer.h.0.attn.k_proj.weight"] = np.zeros((64, 32), np.float32)
    got = to_canonical(split, stored)
    assert "transformer.h.0.attn.c_attn.weight" not in got.tensors
    assert any("do not line up along axis 1" in p and "fused from 3 stored parts" in p for p in got.problems)
    del stored["transformer.h.0.attn.v_proj.bias"]
    assert any("but not transformer.h.0.attn.v_proj.bias" in p for p in to_canonical(split, stored).problems)


# -- the model zoo's parameter lists ------------------------------------------------------------------
ZOO_CASES = {"bert": ("bert_base.json", "base", dict(vocab_size="vocab", hidden_size="hidden",
                                                    num_hidden_layers="layers", num_attention_heads="heads",
                                                    intermediate_size="ffn", max_position_embeddings="positions",
                                                    type_vocab_size="type_vocab")),
             "gpt2": ("gpt2_small.json", "base", dict(vocab_size="vocab", d_model="hidden", num_hidden_layers="layers",
                                                      num_attention_heads="heads", intermediate_size="ffn",
                                                      max_position_embeddings="positions"))}


@pytest.mark.parametrize("family", ZOO_CASES)
def test_converted_zoo_names_and_shapes_are_the_zoo_networks_parameter_list(family):
    fixture_name, size, keys = ZOO_CASES[family]
    fixture = json.loads((ZOO / fixture_name).read_text())
    cfg = preset(family, size)
    assert {k: fixture["config"][k] for k in keys} == {k: getattr(cfg, v) for k, v in keys.items()}
    scheme = schemes.builtin(family, "ms-zoo")
    # the code path of `convert --to ms-zoo`, on zero-strided arrays (names and shapes, no 400 MB)
    lazy = {n: np.broadcast_to(np.float32(0), s) for n, s in param_shapes(cfg).items()}
    ours = [[n, list(a.shape)] for n, a in from_canonical(scheme, lazy).items()]
    prefix = scheme.write_prefix
    zoo_model = [p for p in fixture["parameters"] if p[0].startswith(prefix)]
    assert ours == zoo_model   # names, shapes and order
    # the rest of the zoo's network (BERT's pretraining heads) is named by the map's ignore patterns
    rest = [p[0] for p in fixture["parameters"] if not p[0].startswith(prefix)]
    read = to_canonical(scheme, {n: np.broadcast_to(np.float32(0), s) for n, s in fixture["parameters"]})
    assert not read.unmapped and not read.problems and [n for n, _ in read.ignored] == rest
    assert list(read.tensors) == list(param_shapes(cfg))
    # the map cites the commit and the files the fixture was derived from
    text = Path(scheme.path).read_text()
    assert fixture["commit"] in text and all(f["blob"] in text for f in fixture["files"].values())


def test_zoo_fixtures_say_where_they_come_from():
    for name in ("bert_base.json", "gpt2_small.json"):
        fixture = json.loads((ZOO / name).read_text())
        assert fixture["repository"] == "mindspore-ai/models" and len(fixture["commit"]) == 40
        assert all(len(f["blob"]) == 40 and len(f["last_changed"]) == 40 for f in fixture["files"].values())
        assert "tools/derive_zoo_params.py" in fixture["about"]


@pytest.mark.skipif(not os.environ.get("ZOO_MODELS_GIT"),
                    reason="set ZOO_MODELS_GIT to a clone of mindspore-ai/models (its .git) to re-derive the fixtures")
def test_the_derivation_script_writes_the_committed_fixtures(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "tools" / "derive_zoo_params.py"), "--git-dir",
                    os.environ["ZOO_MODELS_GIT"], "--out", str(tmp_path)], check=True, cwd=ROOT)
    for name in ("bert_base.json", "gpt2_small.json"):
        assert (tmp_path / name).read_bytes() == (ZOO / name).read_bytes()


# -- bad map files ---------------------------------------------------------------------------------
HEAD = '[scheme]\nfamily = "gpt2"\nextends = "hf"\n'
RULE = '[[tensor]]\ncanonical = "transformer.h.{i}.attn.c_proj.weight"\n'


@pytest.mark.parametrize("text,words", [
    ("[scheme]\nfamily = 'gpt3'\n", ["family 'gpt3' is not a model family"]),
    (HEAD + "[[tensor]]\ncanonical = 'transformer.h.{i}.attn.c_proj.weights'\nstored = 'x.{i}'\n",
     ["[[tensor]] #1", "canonical name 'transformer.h.{i}.attn.c_proj.weights' is not a gpt2 tensor"]),
    (HEAD + RULE + "stored = 'x'\n", ["[[tensor]] #1", "{i} appears on one side only"]),
    (HEAD + RULE + "stored = ['a.{i}', 'b.{i}']\n", ["[[tensor]] #1", "needs the axis"]),
    (HEAD + RULE + "stored = 'a.{i}'\nflip = true\n", ["[[tensor]] #1", "unknown key 'flip'"]),
    (HEAD + RULE + "stored = 'h.{i}.attn.c_attn.weight'\n", ["is also claimed by"]),
    ("[scheme]\nfamily = 'gpt2'\n" + RULE + "stored = 'a.{i}'\n",
     ["no rule maps canonical tensor transformer.wte.weight"]),
    (HEAD + "[[ignore]]\npattern = 'x.*'\n", ["[[ignore]] #1", "missing key 'reason'"]),
    (HEAD + "[[tie]]\ncanonical = 'transformer.h.{i}.ln_1.weight'\nstored = 'x'\n", ["not a global gpt2 tensor"]),
    ("[scheme\n", ["not valid TOML"]),
])
def test_a_bad_map_file_is_refused_naming_the_file_and_the_entry(tmp_path, text, words):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(BadInput) as e:
        schemes.load_file(path)
    message = str(e.value)
    assert str(path) in message and all(w in message for w in words), message


def test_names_no_scheme_fits_are_refused_with_the_fix():
    with pytest.raises(BadInput) as e:
        detect(["foo.weight", "bar.bias"], what="x.ckpt")
    assert "x.ckpt: none of its 2 tensor names fits a known naming scheme" in str(e.value)
    assert "--map-a" in e.value.fix and "docs/compare.md" in e.value.fix
    with pytest.raises(BadInput, match="unknown naming scheme 'zoo'"):
        detect(["foo.weight"], "zoo")
