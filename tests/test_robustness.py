"""Bad input, untrusted files, failed writes and reproducibility, through the CLI.

Issue 5's table, row by row (rows covered elsewhere say where):
- missing tensor / extra / shape / dtype, NaN through the loader: test_checkpoint.py;
- cases.toml and tolerances.toml keys and types: test_harness.py; growth-config
  mismatches through build_plan: test_plan.py; corrupted files at scale: test_fuzz.py;
- interrupted runs (SIGINT, SIGTERM, SIGKILL): test_interrupt.py.
"""
import ast
import json
import os
import resource
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.core.config import load_presets, preset
from harness.core.errors import BadInput
from harness.core.formats.checkpoint import load_checkpoint, read_tensors, sha256, write_safetensors
from harness.core.seeded_init import init_state
from harness.suite import frameworks

ROOT = Path(__file__).resolve().parent.parent


def _error(capsys) -> tuple[str, str]:
    """(what, fix) of the CLI's error; asserts its shape: the last two stderr lines, one each."""
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) >= 2 and lines[-2].startswith("error: ") and lines[-1].startswith("  fix: "), err
    assert sum(line.startswith("error: ") for line in lines) == 1 and "Traceback" not in err, err
    return lines[-2][len("error: "):], lines[-1][len("  fix: "):]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    """A model folder of bert tiny, seed 0: config.json, model.safetensors, model.ckpt."""
    folder = tmp_path_factory.mktemp("tiny_bert")
    assert main(["init", "--model", "bert", "--size", "tiny", "--out", str(folder)]) == 0
    return folder


def _copy(src: Path, dst: Path, weights: str) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "config.json", dst)
    shutil.copy(src / weights, dst)
    return dst / weights


# -- missing files ----------------------------------------------------------------------
@pytest.mark.parametrize("argv, missing", [
    (["expand", "--model", "bert", "--dst", "tiny2x", "--src-ckpt", "{tmp}/nope.safetensors", "--out", "{tmp}/o"],
     "{tmp}/nope.safetensors"),
    (["expand", "--model", "bert", "--dst", "tiny2x", "--src-ckpt", "{tmp}/no_folder", "--out", "{tmp}/o"],
     "{tmp}/no_folder"),
    (["infer", "--sentence", "hi", "--ckpt", "{tmp}/gone"], "{tmp}/gone"),
    (["infer", "--sentence", "hi", "--ckpt", "{tmp}/empty"], "{tmp}/empty"),   # a folder without weights
    (["infer", "--sentence", "hi", "--ckpt", "{model}", "--tokenizer", "{tmp}/tok.json"], "{tmp}/tok.json"),
])
def test_missing_file_or_folder_exits_2_naming_it(tmp_path, capsys, tiny_bert, argv, missing):
    (tmp_path / "empty").mkdir()
    fill = {"tmp": str(tmp_path), "model": str(tiny_bert)}
    assert main([a.format(**fill) for a in argv]) == 2
    what, fix = _error(capsys)
    assert what.startswith(missing.format(**fill) + ":"), what
    assert not (tmp_path / "o").exists()


# -- corrupt files ----------------------------------------------------------------------
_TINY = preset("bert", "tiny")
_EMB = _TINY.vocab * _TINY.hidden                  # elements of the first tensor, the word embeddings
CORRUPTIONS = [   # (file, damage, what the error must say, given the file's size)
    ("model.safetensors", lambda b: b[: len(b) // 2],
     lambda size: f"truncated: the header describes {size} bytes, the file has {size // 2}"),
    ("model.safetensors", lambda b: b[:5], lambda size: "truncated: 5 bytes, not even the 8-byte header length"),
    ("model.safetensors", lambda b: b"\x10" + b[1:], lambda size: "Error while deserializing header"),
    ("model.ckpt", lambda b: b[: len(b) // 2], lambda size: "remain (truncated or damaged)"),
    ("model.ckpt", lambda b: b"", lambda size: "the file is empty"),
    ("model.ckpt", lambda b: b.replace(b"\x07Float32", b"\x07Float16", 1),
     lambda size: f"embeddings.word_embeddings.weight of dims [{_TINY.vocab}, {_TINY.hidden}] Float16 needs "
                  f"{2 * _EMB} bytes, the file holds {4 * _EMB}"),
]


@pytest.mark.parametrize("weights, damage, reason", CORRUPTIONS)
def test_corrupt_checkpoint_exits_2_naming_file_and_what_is_wrong(tmp_path, capsys, tiny_bert, weights, damage, reason):
    path = _copy(tiny_bert, tmp_path / "src", weights)
    size = path.stat().st_size
    path.write_bytes(damage(path.read_bytes()))
    assert main(["expand", "--model", "bert", "--dst", "tiny2x", "--src-ckpt", str(path),
                 "--out", str(tmp_path / "o")]) == 2
    what, fix = _error(capsys)
    assert what.startswith(f"{path}: ") and reason(size) in what, what
    assert "truncated or corrupt" in fix
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("text, reason", [
    ('{"model_type": "bert", "hidden_size": 64', "cannot read config: Expecting"),
    ("[1, 2]", "config is not a JSON object"),
    ('{"model_type": "t5"}', "model_type 't5' is not supported"),
    (json.dumps({**_TINY.to_hf(), "layer_norm_eps": "small"}), "wrong type: could not convert string to float"),
    (json.dumps({k: v for k, v in _TINY.to_hf().items() if k != "num_attention_heads"}),
     "missing key 'num_attention_heads'"),
])
def test_bad_config_json_exits_2_naming_it(tmp_path, capsys, tiny_bert, text, reason):
    path = _copy(tiny_bert, tmp_path / "src", "model.safetensors")
    (tmp_path / "src" / "config.json").write_text(text)
    assert main(["infer", "--sentence", "hi", "--ckpt", str(path)]) == 2
    what, _ = _error(capsys)
    assert what.startswith(f"{tmp_path / 'src' / 'config.json'}: ") and reason in what, what


def test_ckpt_sliced_by_mindspore_loads_whole(tmp_path, monkeypatch):
    """MindSpore splits tensors over SLICE_SIZE KB into consecutive entries; the framing check joins them."""
    import mindspore.train.serialization as serialization
    monkeypatch.setattr(serialization, "SLICE_SIZE", 16)            # 16 KB slices: the embeddings in 16
    cfg = preset("bert", "tiny")
    state = init_state(cfg, 2)
    import mindspore
    mindspore.save_checkpoint(state, str(tmp_path / "model.ckpt"))   # MindSpore's own writer, sliced
    assert (tmp_path / "model.ckpt").read_bytes().count(b"embeddings.word_embeddings.weight") == 16
    _, back = load_checkpoint(tmp_path / "model.ckpt", cfg)
    for name, value in state.items():
        assert np.array_equal(back[name], value), name


def test_wrong_shape_in_a_ckpt_exits_2_naming_tensor_expected_and_found(tmp_path, capsys):
    cfg = preset("bert", "tiny")
    state = init_state(cfg, 0)
    state["encoder.layer.1.intermediate.dense.weight"] = np.zeros((255, 64), np.float32)
    ms = frameworks.load("ms")
    ms.io.save(tmp_path / "src", cfg, {k: ms.io.to_tensor(v) for k, v in state.items()})
    assert main(["expand", "--model", "bert", "--dst", "tiny2x", "--src-ckpt", str(tmp_path / "src" / "model.ckpt"),
                 "--out", str(tmp_path / "o")]) == 2
    what, _ = _error(capsys)
    assert "tensor encoder.layer.1.intermediate.dense.weight has shape (255, 64), expected (256, 64)" in what


# -- NaN / Inf ---------------------------------------------------------------------------
def test_nonfinite_source_refused_naming_the_tensor_and_allowed_by_the_flag(tmp_path, capsys):
    cfg = preset("gpt2", "tiny")
    state = init_state(cfg, 0)
    state["transformer.h.1.attn.c_proj.weight"][2, 3] = np.inf
    write_safetensors(tmp_path / "src" / "model.safetensors", state)
    (tmp_path / "src" / "config.json").write_text(json.dumps(cfg.to_hf()))
    argv = ["expand", "--model", "gpt2", "--dst", "tiny_w", "--src-ckpt", str(tmp_path / "src"), "--out"]
    assert main(argv + [str(tmp_path / "refused")]) == 2
    what, fix = _error(capsys)
    assert "tensor transformer.h.1.attn.c_proj.weight holds NaN or Inf" in what and "--allow-nonfinite" in fix
    assert not (tmp_path / "refused").exists()
    assert main(argv + [str(tmp_path / "allowed"), "--allow-nonfinite"]) == 0
    for weights in ("model.safetensors", "model.ckpt"):
        grown = read_tensors(tmp_path / "allowed" / weights)["transformer.h.1.attn.c_proj.weight"]
        assert np.isinf(grown).any() and np.isfinite(grown).sum() > 0, weights


# -- config / preset mismatches, before any work ------------------------------------------
@pytest.mark.parametrize("edit, words", [
    ({"num_attention_heads": 2}, ["head size 32 (hidden 64 / heads 2)", "16 (hidden 128 / heads 8)"]),
    ({"vocab_size": 2000}, ["vocab 2000 -> 1000 differs"]),
    ({"hidden_size": 128, "intermediate_size": 512, "num_attention_heads": 8, "num_hidden_layers": 3},
     ["layers 3 -> 2 shrinks"]),
    ({"num_attention_heads": 5}, ["hidden 64 is not a multiple of heads 5"]),
])
def test_config_mismatch_exits_2_naming_both_values_before_reading_weights(tmp_path, capsys, edit, words):
    src = tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({**preset("bert", "tiny").to_hf(), **edit}))
    (src / "model.safetensors").write_bytes(b"never read: the config is refused first")
    assert main(["expand", "--model", "bert", "--dst", "tiny2x", "--src-ckpt", str(src),
                 "--out", str(tmp_path / "o")]) == 2
    what, _ = _error(capsys)
    for word in words:
        assert word in what, what
    assert not (tmp_path / "o").exists()


# -- unknown names ---------------------------------------------------------------------
@pytest.mark.parametrize("argv, what, choices", [
    (["init", "--model", "bert", "--size", "huge"], "unknown bert preset 'huge'", "tiny, tiny_w"),
    (["init", "--model", "bart", "--size", "tiny"], "unknown model family 'bart'", "bert, gpt2"),
    (["init", "--model", "gpt2", "--size", "tiny", "--framework", "jax"], "unknown framework 'jax'", "pt, ms, both"),
    (["expand", "--model", "gpt2", "--src", "tiny", "--dst", "tiny2x", "--method", "lora"], "unknown method 'lora'",
     "fpi, aki"),
    (["expand", "--model", "bert", "--src", "tiny", "--dst", "tiny2x", "--sampling", "uniform"],
     "unknown sampling 'uniform'", "paper, balanced"),
    (["expand", "--model", "gpt2", "--src", "nano", "--dst", "tiny2x"], "unknown gpt2 preset 'nano'", "medium"),
    (["infer", "--sentence", "hi", "--ckpt", "{model}", "--framework", "both"], "unknown framework 'both'",
     "pt, ms"),
    (["frob"], "invalid choice: 'frob'", "--help"),
    (["init", "--model", "bert", "--size", "tiny", "--seed", "-1"], "seed must be a non-negative integer, got -1",
     "--seed 0"),
    (["init", "--model", "bert", "--size", "tiny", "--seed", "x"], "argument --seed: invalid int value: 'x'", "--help"),
])
def test_unknown_choice_exits_2_listing_the_valid_ones(tmp_path, capsys, tiny_bert, argv, what, choices):
    argv = [a.format(model=tiny_bert) for a in argv]
    if argv[0] in ("init", "expand"):
        argv += ["--out", str(tmp_path / "o")]
    assert _run(argv) == 2
    got_what, got_fix = _error(capsys)
    assert what in got_what and choices in got_fix, (got_what, got_fix)
    assert not (tmp_path / "o").exists()


def _run(argv: list[str]) -> int:
    """main's exit code, also when argparse exits."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


# -- malformed sizes.toml (cases.toml and tolerances.toml: test_harness.py) ---------------------
SIZE_DEFAULTS = '[defaults.bert]\ntype_vocab = 2\neps = 1e-12\nact = "gelu"\n'
SIZE_ROW = "tiny = { hidden = 64, layers = 2, heads = 4, ffn = 256, vocab = 1000, positions = 64 }\n"


@pytest.mark.parametrize("text, words", [
    (SIZE_DEFAULTS + "[bert]\ntiny = { hidden = 64,, }\n", ["not valid TOML", "line 6"]),
    ("defaults = 3\n[bert]\n" + SIZE_ROW, ["key 'defaults' must be a table"]),
    ("bert = 3\n" + SIZE_DEFAULTS, ["key 'bert' must be a table"]),
    ("[defaults]\nbert = 3\n[bert]\n" + SIZE_ROW, ["key 'defaults.bert' must be a table"]),
    (SIZE_DEFAULTS + "[bert]\ntiny = 3\n", ["[bert] tiny must be a table"]),
    (SIZE_DEFAULTS + "[bert]\n" + SIZE_ROW.replace("}", ", colour = 1 }"),
     ["[bert] tiny", "unknown key(s) ['colour']"]),
    (SIZE_DEFAULTS + "[bert]\n" + SIZE_ROW.replace("ffn = 256, ", ""), ["[bert] tiny", "missing key(s) ['ffn']"]),
    (SIZE_DEFAULTS + "[bert]\n" + SIZE_ROW.replace("= 64,", '= "64",', 1), ["[bert] tiny", "hidden", "'64'"]),
    (SIZE_DEFAULTS + "[bert]\n" + SIZE_ROW.replace("heads = 4", "heads = 5"),
     ["[bert] tiny", "hidden 64 is not a multiple of heads 5"]),
    (SIZE_DEFAULTS.replace("type_vocab = 2", 'type_vocab = "2"') + "[bert]\n" + SIZE_ROW, ["type_vocab", "'2'"]),
    (SIZE_DEFAULTS + 'initializer_range = "x"\n[bert]\n' + SIZE_ROW, ["initializer_range", "'x'"]),
    (SIZE_DEFAULTS.replace("1e-12", "1") + "[bert]\n" + SIZE_ROW, ["eps", "got 1"]),
    (SIZE_DEFAULTS + "[bart]\n" + SIZE_ROW, ["unknown section(s) ['bart']"]),
])
def test_malformed_sizes_toml_names_file_and_key(tmp_path, text, words):
    path = tmp_path / "sizes.toml"
    path.write_text(text)
    with pytest.raises(BadInput) as e:
        load_presets(path)
    assert e.value.what.startswith(f"{path}: ")
    for word in words:
        assert word in e.value.what, e.value.what


def test_edited_sizes_toml_is_read_again(tmp_path):
    """load_presets keeps the last file it parsed; an edit is seen (even one of the same size), and
    what a caller does to its dicts does not reach the next caller."""
    path = tmp_path / "sizes.toml"
    path.write_text(SIZE_DEFAULTS + "[bert]\n" + SIZE_ROW)
    first = load_presets(path)
    assert first["bert"]["tiny"].hidden == 64
    first["bert"].clear()
    assert load_presets(path)["bert"]["tiny"].hidden == 64
    path.write_text(SIZE_DEFAULTS + "[bert]\n" + SIZE_ROW.replace("hidden = 64", "hidden = 128"))
    assert load_presets(path)["bert"]["tiny"].hidden == 128
    path.write_text(SIZE_DEFAULTS + "[bert]\n" + SIZE_ROW.replace("heads = 4", "heads = 5"))
    with pytest.raises(BadInput, match="not a multiple of heads 5"):
        load_presets(path)


@pytest.mark.parametrize("loader", ["harness.kinds.growth.cases:load_cases", "harness.kinds.registry:load_tolerances",
                                    "harness.core.config:load_presets"])
def test_toml_syntax_error_names_file_and_line(tmp_path, loader):
    import importlib
    module, name = loader.split(":")
    path = tmp_path / "data.toml"
    path.write_text("# comment\n\n[section\nkey = 1\n")
    with pytest.raises(BadInput) as e:
        getattr(importlib.import_module(module), name)(path)
    assert e.value.what.startswith(f"{path}: not valid TOML") and "line 3" in e.value.what


# -- pickles ---------------------------------------------------------------------------
class _Payload:
    """Unpickling this runs a shell command (the classic malicious checkpoint)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("suffix", ["pth", "bin"])
def test_pickle_needing_code_execution_is_refused_and_never_runs(tmp_path, capsys, suffix):
    import torch
    marker = tmp_path / "pwned"
    path = tmp_path / f"model.{suffix}"
    torch.save({"embeddings.word_embeddings.weight": _Payload(marker)}, path)
    with pytest.raises(BadInput) as e:
        read_tensors(path)
    assert str(path) in e.value.what and "weights_only=True" in e.value.fix
    assert not marker.exists()
    (tmp_path / "config.json").write_text(json.dumps(preset("bert", "tiny").to_hf()))
    assert main(["infer", "--sentence", "hi", "--ckpt", str(path)]) == 2
    _error(capsys)
    assert not marker.exists()
    torch.load(path, weights_only=False)        # the control: the payload is real
    assert marker.exists()


def test_plain_state_dict_pickle_loads(tmp_path):
    import torch
    cfg = preset("gpt2", "tiny")
    state = init_state(cfg, 4)
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text(json.dumps(cfg.to_hf()))
    _, back = load_checkpoint(tmp_path)
    for name, value in state.items():
        assert np.array_equal(back[name], value), name


def test_every_torch_load_in_the_tool_passes_weights_only_true():
    """The tool reads .bin / .pth without torch.load (harness.core.formats.torch_zip); a torch.load
    added anywhere must still pass weights_only=True."""
    calls = []
    for path in [*ROOT.glob("harness/**/*.py"), *ROOT.glob("models_*/*.py"), *ROOT.glob("tools/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
                kw = {k.arg: k.value for k in node.keywords}
                ok = isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True
                calls.append((f"{path.relative_to(ROOT)}:{node.lineno}", ok))
    assert all(ok for _, ok in calls), calls


# -- failed writes -----------------------------------------------------------------------
def _listing(folder: Path) -> dict[str, str]:
    return {p.name: sha256(p) for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("out", ["{tmp}/a_file/out", "/sys/bert2bert_parity_test_out"])
def test_unwritable_output_exits_2_naming_it(tmp_path, capsys, out):
    """A folder under a regular file, and one in sysfs: neither can be written, even by root (refused
    before any work: test_an_unusable_out_is_refused_before_any_work)."""
    (tmp_path / "a_file").write_text("not a folder")
    out = out.format(tmp=tmp_path)
    assert main(["init", "--model", "bert", "--size", "tiny", "--out", out]) == 2
    what, fix = _error(capsys)
    assert what.startswith(f"{out}: cannot") and "writable" in fix
    assert not Path(out).exists()


@contextmanager
def _file_size_limit(nbytes: int):
    """Writes past nbytes fail with EFBIG, as on a full disk (Python ignores SIGXFSZ), even for root."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.mark.parametrize("framework, weights", [("pt", "model.safetensors"), ("ms", "model.ckpt")])
def test_disk_full_mid_save_leaves_earlier_outputs_untouched(tmp_path, capsys, framework, weights):
    assert main(["init", "--model", "bert", "--size", "tiny", "--seed", "1", "--out", str(tmp_path)]) == 0
    before = _listing(tmp_path)
    capsys.readouterr()
    with _file_size_limit(100_000):                 # config.json fits, a 0.7 MB checkpoint does not
        code = main(["init", "--model", "bert", "--size", "tiny_w", "--seed", "2", "--framework", framework,
                     "--out", str(tmp_path)])
    assert code == 2
    what, _ = _error(capsys)
    assert what == f"{tmp_path / weights}: cannot write: File too large"
    assert _listing(tmp_path) == before             # byte-identical, no temporary file left


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "buffered"])
@pytest.mark.parametrize("framework", ["pt", "ms"])
def test_interrupt_inside_a_writer_leaves_no_temporary_file(tmp_path, monkeypatch, framework, direct):
    """Ctrl-C between two writes of a save: the temporary file is removed, nothing else written."""
    import errno
    import fcntl

    from harness.core.formats import writers
    flag = writers.O_DIRECT   # the real flag, read before the buffered case sets the writers' copy to 0
    if direct:
        if not flag:
            pytest.skip("this platform has no O_DIRECT")
        try:
            os.close(os.open(tmp_path / "probe", os.O_CREAT | os.O_WRONLY | flag))
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            pytest.skip(f"the file system of {tmp_path} refuses O_DIRECT: only the buffered path can be tested")
        os.unlink(tmp_path / "probe")
        monkeypatch.setattr(writers, "DIRECT_STAGE", 4096)   # many direct writes for a tiny model
    else:
        monkeypatch.setattr(writers, "O_DIRECT", 0)
    calls = []
    real = writers._write_all

    def interrupt_third(fd, data):
        calls.append(bool(fcntl.fcntl(fd, fcntl.F_GETFL) & flag))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(fd, data)

    monkeypatch.setattr(writers, "_write_all", interrupt_third)
    cfg = preset("bert", "tiny")
    fw = frameworks.load(framework)
    with pytest.raises(KeyboardInterrupt):
        fw.io.save(tmp_path, cfg, {k: fw.io.to_tensor(v) for k, v in init_state(cfg, 0).items()})
    assert len(calls) == 3 and os.listdir(tmp_path) == []
    assert calls == [direct] * 3   # every write went the intended way (direct: O_DIRECT set on the fd)


# -- reproducibility ---------------------------------------------------------------------
@pytest.mark.parametrize("family, dst", [("bert", "tiny_wd"), ("gpt2", "tiny2x")])
def test_expand_rerun_with_the_same_seed_is_byte_identical_in_both_frameworks(tmp_path, family, dst):
    digests = []
    for run, seed in (("a", 6), ("b", 6), ("c", 7)):
        out = tmp_path / run
        assert main(["expand", "--model", family, "--src", "tiny", "--dst", dst, "--method", "aki",
                     "--sampling", "balanced", "--seed", str(seed), "--out", str(out)]) == 0
        plan = json.loads((out / "plan.json").read_text())
        del plan["seconds"]
        digests.append({**{n: sha256(out / n) for n in ("model.safetensors", "model.ckpt", "config.json")},
                        "plan.json": plan})
    assert digests[0] == digests[1]
    assert digests[2]["model.safetensors"] != digests[0]["model.safetensors"]
    assert digests[2]["model.ckpt"] != digests[0]["model.ckpt"]


# -- help, error shape, README ------------------------------------------------------------
def test_every_command_has_help_listing_its_options():
    from harness.cli import _parser
    top = _parser()
    commands = top._subparsers._group_actions[0].choices
    assert set(commands) >= {"init", "expand", "infer"}
    for parser, argv in [(top, ["--help"])] + [(commands[name], [name, "--help"]) for name in commands]:
        done = subprocess.run([sys.executable, "-m", "harness", *argv], capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0 and done.stderr == "", (argv, done.stderr)
        for option in (o for action in parser._actions for o in action.option_strings):
            assert option in done.stdout, (argv, option)
        if parser is top:
            assert all(word in done.stdout for word in ("init", "expand", "infer", "130", "143")), done.stdout


def test_a_bug_exits_3_with_the_traceback_then_the_error_shape(capsys, monkeypatch):
    import harness.cli as cli

    def broken(args):
        raise ZeroDivisionError("planted")

    monkeypatch.setattr(cli, "cmd_init", broken)
    assert main(["init", "--model", "bert", "--size", "tiny", "--out", "unused"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and err.endswith(
        "error: internal error: ZeroDivisionError: planted\n"
        "  fix: this is a bug in the tool; report it with the command line and the traceback above\n"), err


def test_readme_documents_every_exit_code():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    for code in ("0", "1", "2", "3", "130", "143"):
        assert f"`{code}`" in section, code


# -- issue 20: the holes a hostile user found ------------------------------------------------
def _deep_json(depth: int = 20_000) -> bytes:
    """Valid JSON nested `depth` arrays deep (json.loads and the safetensors library refuse it)."""
    return b"[" * depth + b"]" * depth


def _nested_header_safetensors(model: Path, dst: Path) -> Path:
    """model's safetensors with its header replaced by valid JSON nested 20,000 deep (valid length)."""
    import struct
    data = (model / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    head = b'{"deep": ' + _deep_json() + b"}"
    head += b" " * (-len(head) % 8)
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(model / "config.json", dst)
    (dst / "model.safetensors").write_bytes(struct.pack("<Q", len(head)) + head + data[8 + n:])
    return dst / "model.safetensors"


@pytest.mark.parametrize("argv", [
    ["infer", "--sentence", "hi", "--framework", "pt", "--ckpt", "{path}"],
    ["infer", "--sentence", "hi", "--framework", "ms", "--ckpt", "{path}"],
    ["expand", "--model", "bert", "--dst", "tiny2x", "--src-ckpt", "{path}", "--out", "{tmp}/o"],
], ids=["infer-pt", "infer-ms", "expand"])
def test_deeply_nested_safetensors_header_exits_2_naming_the_file(tmp_path, capsys, tiny_bert, argv):
    """Hole 1: the safetensors library refuses the header; the tool's own look at it must not recurse."""
    path = _nested_header_safetensors(tiny_bert, tmp_path / "src")
    assert main([a.format(path=path, tmp=tmp_path) for a in argv]) == 2
    what, fix = _error(capsys)
    assert what.startswith(f"{path}: not a readable safetensors file: ") and "nested" in what, what
    assert "truncated or corrupt" in fix
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("content, reason", [
    (b'{"model_type": "bert", "hidden_size": 64, "name": "caf\xe9 \xff"}', "not UTF-8"),
    (b'{"model_type": "bert", "deep": ' + _deep_json() + b"}", "nested deeper than"),
    (_deep_json(), "nested deeper than"),
], ids=["not-utf8", "nested-value", "nested-document"])
@pytest.mark.parametrize("command", ["infer", "expand"])
def test_config_json_not_utf8_or_nested_too_deep_exits_2_naming_it(tmp_path, capsys, tiny_bert, content, reason,
                                                                    command):
    """Hole 2: read_config turned UnicodeDecodeError and RecursionError into exit 3."""
    path = _copy(tiny_bert, tmp_path / "src", "model.safetensors")
    config = tmp_path / "src" / "config.json"
    config.write_bytes(content)
    argv = (["infer", "--sentence", "hi", "--ckpt", str(path)] if command == "infer" else
            ["expand", "--model", "bert", "--dst", "tiny2x", "--src-ckpt", str(path), "--out", str(tmp_path / "o")])
    assert main(argv) == 2
    what, fix = _error(capsys)
    assert what.startswith(f"{config}: cannot read config: ") and reason in what, what
    assert "config.json" in fix
    assert not (tmp_path / "o").exists()


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


@pytest.mark.parametrize("fails", ["model.safetensors", "config.json", "model.ckpt", "plan.json"])
def test_a_failed_write_leaves_the_whole_earlier_output_set(tmp_path, capsys, monkeypatch, fails):
    """Hole 3: `expand --framework both` into a folder holding an earlier output, the disk failing
    while one file of the new set is written: every file is the earlier run's, byte for byte (and
    a file the run does not write is untouched), no temporary file stays, exit 2 naming the file."""
    out = tmp_path / "out"
    argv = ["expand", "--model", "bert", "--src", "tiny", "--dst", "tiny2x", "--framework", "both", "--out", str(out)]
    assert main(argv + ["--seed", "1"]) == 0
    (out / "notes.txt").write_text("the user's own file")
    before = _listing(out)
    capsys.readouterr()
    real_fsync = os.fsync

    def failing_fsync(fd):   # the disk fails as the new file is made durable (ENOSPC on a delayed write)
        if os.path.basename(_fd_path(fd)).startswith(f".{fails}."):
            raise OSError(28, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    assert main(argv + ["--seed", "2"]) == 2
    what, fix = _error(capsys)
    assert what == f"{out / fails}: cannot write: No space left on device", what
    assert _listing(out) == before                 # all the earlier files, nothing new, no temporary file
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert main(argv + ["--seed", "2"]) == 0      # and then the whole new set, the user's file still there
    after = _listing(out)
    assert set(after) == set(before) and after["notes.txt"] == before["notes.txt"]
    assert all(after[name] != before[name] for name in ("model.safetensors", "model.ckpt", "plan.json"))


def test_a_disk_full_during_the_ckpt_write_of_both_leaves_the_earlier_set(tmp_path, capsys):
    """Hole 3 as reported: a full disk (file size limit) during the .ckpt write of `--framework both`."""
    import errno

    from harness.core.formats import writers
    out = tmp_path / "out"
    assert main(["init", "--model", "bert", "--size", "tiny", "--seed", "1", "--out", str(out)]) == 0
    assert main(["expand", "--model", "bert", "--src", "tiny", "--dst", "tiny_w", "--out", str(out)]) == 0
    before = _listing(out)
    capsys.readouterr()
    real = writers._write_all

    def full_in_ckpt(fd, data):
        if ".model.ckpt." in _fd_path(fd):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    writers._write_all = full_in_ckpt
    try:
        code = main(["expand", "--model", "bert", "--src", "tiny", "--dst", "tiny2x", "--seed", "3", "--out", str(out)])
    finally:
        writers._write_all = real
    assert code == 2
    what, _ = _error(capsys)
    assert what == f"{out / 'model.ckpt'}: cannot write: No space left on device"
    assert _listing(out) == before


@pytest.mark.parametrize("out", ["{tmp}/a_file", "/dev/null", "{tmp}/a_file/below", "/sys/bert2bert_parity_test_out"],
                         ids=["file", "dev-null", "under-a-file", "sysfs"])
@pytest.mark.parametrize("command", ["init", "expand"])
def test_an_unusable_out_is_refused_before_any_work(tmp_path, capsys, monkeypatch, out, command):
    """Hole 5: --out was checked only when the first file was written, after load and expand."""
    from harness.core import seeded_init as init
    from harness.kinds.growth import pipeline
    (tmp_path / "a_file").write_text("not a folder")
    work = []
    monkeypatch.setattr(pipeline, "load_source", lambda *a, **k: work.append("load") or pytest.fail("loaded"))
    monkeypatch.setattr(init, "init_state", lambda *a, **k: work.append("init") or pytest.fail("drew weights"))
    out = out.format(tmp=tmp_path)
    argv = (["init", "--model", "bert", "--size", "tiny"] if command == "init" else
            ["expand", "--model", "bert", "--src", "tiny", "--dst", "tiny2x"])
    assert main(argv + ["--out", out]) == 2
    what, fix = _error(capsys)
    assert what.startswith(f"{out}: ") and "--out" in fix, (what, fix)
    assert work == []
    assert (tmp_path / "a_file").read_text() == "not a folder" and os.listdir(tmp_path) == ["a_file"]


def _ms_crc_ckpt(folder: Path, cfg) -> tuple[Path, dict]:
    """model.ckpt written by MindSpore's own save_checkpoint(..., crc_check=True), config.json beside it."""
    import mindspore
    state = init_state(cfg, 4)
    folder.mkdir(parents=True, exist_ok=True)
    mindspore.save_checkpoint(state, str(folder / "model.ckpt"), crc_check=True)
    (folder / "config.json").write_text(json.dumps(cfg.to_hf()))
    os.chmod(folder / "model.ckpt", 0o644)   # save_checkpoint leaves it read-only
    return folder / "model.ckpt", state


def test_a_ckpt_checksum_is_verified_when_present(tmp_path, capsys):
    """Hole 6: a .ckpt with MindSpore's crc_num trailer: it loads when whole; a flipped data byte under
    a stale checksum (or a damaged checksum) is refused, naming the file, in both frameworks."""
    cfg = preset("bert", "tiny")
    path, state = _ms_crc_ckpt(tmp_path / "src", cfg)
    data = path.read_bytes()
    assert data[-17:-10] == b"crc_num"
    _, back = load_checkpoint(path)
    assert all(np.array_equal(back[k], v) for k, v in state.items())
    inside = data.index(np.float32(state["embeddings.word_embeddings.weight"][3, 5]).tobytes())
    for damaged in (data[:inside] + bytes([data[inside] ^ 0x10]) + data[inside + 1:],   # a data byte
                    data[:-1] + bytes([data[-1] ^ 0x01])):                            # the checksum itself
        path.write_bytes(damaged)
        for framework in ("pt", "ms"):
            assert main(["infer", "--sentence", "hi", "--framework", framework, "--ckpt", str(path)]) == 2
            what, fix = _error(capsys)
            assert what.startswith(f"{path}: ") and "checksum" in what and "CRC-32" in what, what
            assert "corrupt" in fix
        # expand reads its source streamed (harness.core.formats.tensor_source): the same check, nothing written
        assert main(["expand", "--model", "bert", "--dst", "tiny2x", "--src-ckpt", str(path),
                     "--out", str(tmp_path / "o")]) == 2
        what, fix = _error(capsys)
        assert what.startswith(f"{path}: ") and "checksum" in what and "CRC-32" in what, what
        assert not (tmp_path / "o").exists()


def test_a_fifo_tokenizer_is_named_as_a_fifo_not_as_missing(tmp_path, capsys, tiny_bert):
    """Hole 7: a FIFO was called "tokenizer file not found" (and is never opened: reading it would block)."""
    fifo = tmp_path / "tokenizer.json"
    os.mkfifo(fifo)
    assert main(["infer", "--sentence", "hi", "--ckpt", str(tiny_bert), "--tokenizer", str(fifo)]) == 2
    what, fix = _error(capsys)
    assert what == f"{fifo}: tokenizer file is a FIFO (named pipe), not a regular file", what
    assert "tokenizer.json" in fix


@pytest.mark.parametrize("which", ["src-ckpt", "ckpt", "tokenizer"])
def test_a_symlink_loop_is_named_as_a_loop_not_as_missing(tmp_path, capsys, tiny_bert, which):
    """Hole 7: a symlink loop was called "no such file or folder"."""
    loop = tmp_path / "loop"
    os.symlink(loop, loop)
    argv = {"src-ckpt": ["expand", "--model", "bert", "--dst", "tiny2x", "--src-ckpt", str(loop),
                         "--out", str(tmp_path / "o")],
            "ckpt": ["infer", "--sentence", "hi", "--ckpt", str(loop)],
            "tokenizer": ["infer", "--sentence", "hi", "--ckpt", str(tiny_bert), "--tokenizer", str(loop)]}[which]
    assert main(argv) == 2
    what, _ = _error(capsys)
    assert what.startswith(f"{loop}: ") and "symbolic link loop" in what and "no such" not in what, what
    assert not (tmp_path / "o").exists()


def test_a_family_mismatch_names_the_config_file(tmp_path, capsys):
    """Hole 7: "source is a gpt2 model but --model is bert" did not say which file said gpt2."""
    src = tmp_path / "src"
    assert main(["init", "--model", "gpt2", "--size", "tiny", "--out", str(src)]) == 0
    capsys.readouterr()
    assert main(["expand", "--model", "bert", "--dst", "tiny2x", "--src-ckpt", str(src),
                 "--out", str(tmp_path / "o")]) == 2
    what, fix = _error(capsys)
    assert what == f"{src / 'config.json'}: the source is a gpt2 model but --model is bert", what
    assert "--model gpt2" in fix
    assert not (tmp_path / "o").exists()


def test_a_rename_failing_while_the_set_is_put_in_place_puts_every_earlier_file_back(tmp_path, capsys, monkeypatch):
    """Hole 3, the last step: the new set's files are renamed into place one by one; if one rename
    fails, the files already renamed are put back (and a name that had no earlier file is removed)."""
    out = tmp_path / "out"
    assert main(["init", "--model", "gpt2", "--size", "tiny", "--framework", "pt", "--seed", "1",
                 "--out", str(out)]) == 0
    before = _listing(out)                                  # config.json + model.safetensors, no model.ckpt
    capsys.readouterr()
    real_replace, renamed = os.replace, []

    def replace(src, dst, *args, **kwargs):
        if Path(dst).parent == out and not os.path.basename(src).endswith(".old"):
            renamed.append(Path(dst).name)
            if len(renamed) == 3:                           # model.safetensors and model.ckpt are in place by now
                raise OSError(5, "Input/output error")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    assert main(["init", "--model", "gpt2", "--size", "tiny", "--seed", "2", "--out", str(out)]) == 2
    monkeypatch.setattr(os, "replace", real_replace)
    assert _listing(out) == before                          # model.ckpt (new name) gone, the rest the earlier bytes
    what, _ = _error(capsys)
    assert renamed == ["model.safetensors", "model.ckpt", "config.json"], renamed
    assert what == f"{out / 'config.json'}: cannot write: Input/output error", what


def test_a_mindspore_safetensors_checksum_is_verified_when_present(tmp_path, capsys):
    """Hole 6, safetensors: MindSpore's save_checkpoint(..., format="safetensors", crc_check=True) puts a
    CRC-32 into the metadata; a flipped data byte under it is refused."""
    import mindspore
    cfg = preset("bert", "tiny")
    state = init_state(cfg, 4)
    path = tmp_path / "model.safetensors"
    mindspore.save_checkpoint(state, str(path), format="safetensors", crc_check=True)
    os.chmod(path, 0o644)
    (tmp_path / "config.json").write_text(json.dumps(cfg.to_hf()))
    _, back = load_checkpoint(path)
    assert all(np.array_equal(back[k], v) for k, v in state.items())
    data = path.read_bytes()
    assert b'"crc_num"' in data[:20_000]
    inside = data.index(np.float32(state["embeddings.word_embeddings.weight"][3, 5]).tobytes())
    path.write_bytes(data[:inside] + bytes([data[inside] ^ 0x10]) + data[inside + 1:])
    assert main(["infer", "--sentence", "hi", "--ckpt", str(path)]) == 2
    what, fix = _error(capsys)
    assert what.startswith(f"{path}: the CRC-32 checksum in its metadata") and "corrupt" in fix, what
    # expand reads its source streamed (harness.core.formats.tensor_source): the same check, nothing written
    assert main(["expand", "--model", "bert", "--dst", "tiny2x", "--src-ckpt", str(path),
                 "--out", str(tmp_path / "o")]) == 2
    what, fix = _error(capsys)
    assert what.startswith(f"{path}: the CRC-32 checksum in its metadata") and "corrupt" in fix, what
    assert not (tmp_path / "o").exists()
