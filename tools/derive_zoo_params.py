"""Derive the MindSpore model zoo's BERT and GPT-2 parameter lists from the zoo's own source.

    python tools/derive_zoo_params.py --git-dir PATH/TO/mindspore-ai/models/.git [--verify]

writes tests/fixtures/zoo/bert_base.json and gpt2_small.json: the name and shape of every parameter
of the zoo's networks, built by MindSpore from the zoo's files at COMMIT (read with `git show`, their
git blob hashes checked against the ones the maps in harness/core/naming/maps/*/ms-zoo.toml cite):

- BERT: official/nlp/Bert/src/bert_for_pre_training.py's BertNetworkWithLoss (the pretraining
  network, whose checkpoints the zoo publishes) of src/bert_model.py's BertConfig(**base_net_cfg),
  base_net_cfg read from official/nlp/Bert/pretrain_config.yaml;
- GPT-2: research/nlp/gpt2/src/GPT2_model.py's GPT2Model of the 'small' GPT2Config in
  src/finetune_eval_config.py (read from the file's syntax tree: it imports easydict).

--verify then converts a seeded tiny model of this project into each ms-zoo map's names (the code
path of `python -m harness convert --to ms-zoo`), saves it as a .ckpt, and loads it into the zoo's
network of that size with mindspore.load_param_into_net(strict_load=True): every stored tensor must
load, every network parameter but the pretraining heads must be loaded, each with our values.

The zoo's source is not copied into this repository; run this with a clone of
https://github.com/mindspore-ai/models (or https://gitee.com/mindspore/models) at hand.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMIT = "eab643f51336dbf7d711f02d27e6516e5affee59"
# the files the fixtures and the ms-zoo maps are derived from, with their git blob hashes at COMMIT
BLOBS = {
    "official/nlp/Bert/src/bert_model.py": "ecc07b5b1de8c9fa42a1ab5d53685b73f88cf1c0",
    "official/nlp/Bert/src/bert_for_pre_training.py": "b252a041adaf56c2a853715e9a79feee029e64e0",
    "official/nlp/Bert/pretrain_config.yaml": "d4469561bd5b9732c6df31e18f382e5dba449ae2",
    "research/nlp/gpt2/src/GPT2_model.py": "80af36eb7a9e96a2f8a9d56c1208bead63107499",
    "research/nlp/gpt2/src/finetune_eval_config.py": "2214bc687692f8899efebe657ed2756c1a1507bf",
}
PACKAGES = {"bert": "official/nlp/Bert", "gpt2": "research/nlp/gpt2"}
OUT = ROOT / "tests" / "fixtures" / "zoo"
FIXTURES = {"bert": "bert_base.json", "gpt2": "gpt2_small.json"}


def git(git_dir: Path, *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", str(git_dir), *args], check=True, capture_output=True).stdout


def blob_hash(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def export(git_dir: Path, commit: str, family: str, into: Path, check: bool) -> dict:
    """The family's zoo folder's .py files and config at `commit` into `into`; the cited files' provenance."""
    root = PACKAGES[family]
    names = git(git_dir, "ls-tree", "-r", "--name-only", commit, "--", f"{root}/src").decode().split()
    names = [n for n in names if n.endswith(".py")] + ([f"{root}/pretrain_config.yaml"] if family == "bert" else [])
    files = {}
    for name in names:
        data = git(git_dir, "show", f"{commit}:{name}")
        target = into / name[len(root) + 1:]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if name in BLOBS:
            blob = blob_hash(data)
            if check and blob != BLOBS[name]:
                sys.exit(f"{name} at {commit} is blob {blob}, the maps cite {BLOBS[name]}: re-derive the maps "
                         "from this version, or pass --any-version to write fixtures of it anyway")
            last = git(git_dir, "log", "-1", "--format=%H %cs", commit, "--", name).decode().split()
            files[name] = {"blob": blob, "last_changed": last[0], "date": last[1]}
    return files


def bert_config(folder: Path) -> dict:
    import yaml
    cfg = next(yaml.safe_load_all((folder / "pretrain_config.yaml").read_text()))["base_net_cfg"]   # doc 1 of 3
    return {k: v for k, v in cfg.items() if k not in ("dtype", "compute_type")}   # "mstype.float32" strings


def gpt2_config(folder: Path) -> dict:
    """The keyword arguments of the GPT2Config under `if cfg.gpt2_network == 'small':` (literals only)."""
    tree = ast.parse((folder / "src" / "finetune_eval_config.py").read_text())
    for node in ast.walk(tree):
        if (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
                and isinstance(node.test.comparators[0], ast.Constant) and node.test.comparators[0].value == "small"):
            call = node.body[0].value
            out = {}
            for kw in call.keywords:
                try:
                    out[kw.arg] = ast.literal_eval(kw.value)
                except ValueError:   # dtype=mstype.float32 and the like
                    pass
            return out
    sys.exit("finetune_eval_config.py: no `if cfg.gpt2_network == 'small':` block")


def build(family: str, folder: Path, config: dict):
    """The zoo's network (MindSpore) from the exported folder: (network, its description)."""
    sys.path.insert(0, str(folder))
    for name in [m for m in sys.modules if m == "src" or m.startswith("src.")]:
        del sys.modules[name]
    if family == "bert":
        from src.bert_for_pre_training import BertNetworkWithLoss
        from src.bert_model import BertConfig
        net = BertNetworkWithLoss(BertConfig(**config), True)
        return net, "BertNetworkWithLoss(BertConfig(**cfg), is_training=True)"
    from src.GPT2_model import GPT2Config, GPT2Model
    return GPT2Model(GPT2Config(**config), False), "GPT2Model(GPT2Config(**cfg), is_training=False)"


def derive(family: str, folder: Path, files: dict, commit: str) -> dict:
    import mindspore as ms
    config = bert_config(folder) if family == "bert" else gpt2_config(folder)
    net, network = build(family, folder, config)
    return {
        "about": "the parameters of the MindSpore model zoo's network, built by MindSpore from the zoo's source; "
                 "written by tools/derive_zoo_params.py (do not edit)",
        "repository": "mindspore-ai/models", "commit": commit, "files": files,
        "network": network, "config": config, "mindspore": ms.__version__,
        "parameters": [[name, list(p.shape)] for name, p in net.parameters_and_names()],
    }


def verify(family: str, folder: Path) -> str:
    """A seeded tiny model of this project, converted to the ms-zoo names, loaded into the zoo's network."""
    import mindspore as ms
    import numpy as np
    sys.path.insert(0, str(ROOT))
    from harness.core.config import preset
    from harness.core.formats.checkpoint import write_ckpt
    from harness.core.naming.engine import from_canonical
    from harness.core.naming.scheme import builtin
    from harness.core.seeded_init import init_state

    cfg = preset(family, "tiny")
    stored = from_canonical(builtin(family, "ms-zoo"), init_state(cfg, 0))
    if family == "bert":
        config = dict(seq_length=16, vocab_size=cfg.vocab, hidden_size=cfg.hidden, num_hidden_layers=cfg.layers,
                      num_attention_heads=cfg.heads, intermediate_size=cfg.ffn, type_vocab_size=cfg.type_vocab,
                      max_position_embeddings=cfg.positions)
    else:
        config = dict(batch_size=1, seq_length=16, vocab_size=cfg.vocab, d_model=cfg.hidden,
                      num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads, intermediate_size=cfg.ffn,
                      max_position_embeddings=cfg.positions)
    net, _ = build(family, folder, config)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "zoo.ckpt"
        write_ckpt(path, stored)
        not_loaded, unused = ms.load_param_into_net(net, ms.load_checkpoint(str(path)), strict_load=True)
    heads = [n for n in not_loaded if n.startswith(("bert.cls1.", "bert.cls2."))]
    values = dict(net.parameters_and_names())
    wrong = [n for n in stored if not np.array_equal(values[n].asnumpy(), stored[n])]
    if unused or set(not_loaded) != set(heads) or wrong:
        sys.exit(f"{family}: the ms-zoo map's checkpoint does not load into the zoo's network: unused {unused}, "
                 f"not loaded {sorted(set(not_loaded) - set(heads))}, values differ {wrong[:3]}")
    return (f"{family}: {len(stored)} tensors in the ms-zoo names loaded into the zoo's network with our values"
            + (f"; not loaded: only the {len(heads)} pretraining-head parameters" if heads else ""))


def dump(fixture: dict) -> str:
    """JSON with one parameter per line (reviewable diffs)."""
    params = fixture["parameters"]
    head = json.dumps({k: v for k, v in fixture.items() if k != "parameters"}, indent=1)[:-2]
    lines = ",\n".join("  " + json.dumps(p) for p in params)
    return f'{head},\n "parameters": [\n{lines}\n ]\n}}\n'


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--git-dir", type=Path, required=True, help="a clone of mindspore-ai/models (its .git folder)")
    p.add_argument("--commit", default=COMMIT)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--family", choices=tuple(PACKAGES), action="append", help="default: both")
    p.add_argument("--verify", action="store_true", help="also load a converted tiny model into the zoo's networks")
    p.add_argument("--any-version", action="store_true", help="accept files other than the cited blobs")
    args = p.parse_args()
    os.environ.setdefault("GLOG_v", "3")
    for family in args.family or tuple(PACKAGES):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / family
            files = export(args.git_dir, args.commit, family, folder, not args.any_version)
            fixture = derive(family, folder, files, args.commit)
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / FIXTURES[family]).write_text(dump(fixture))
            print(f"{family}: {len(fixture['parameters'])} parameters -> {args.out / FIXTURES[family]}")
            if args.verify:
                print(verify(family, folder))
            sys.path.remove(str(folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
