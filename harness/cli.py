"""Command line: `python -m harness {init,expand,infer,compare,convert,train,study} ...`.

Exit codes: 0 ok, 1 checks failed (compare: a tensor over its limit, names or shapes that
differ, an unmapped tensor, a tied copy that differs; make test / make parity: pytest's),
2 bad input (the message names what and how to fix), 3 internal error (a bug: traceback
above the message), 130 interrupted (Ctrl-C, SIGINT), 143 terminated (SIGTERM).
Interrupted runs leave no partial file under a final name.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from harness.core import interrupts  # noqa: E402
from harness.core.errors import BadInput, one_line  # noqa: E402
from harness.core.vocab import FRAMEWORKS, METHODS, SAMPLINGS  # noqa: E402


class _Parser(argparse.ArgumentParser):
    """argparse with the tool's error shape: one line of what, one of how to fix (exit 2)."""

    def error(self, message):
        _print_error(message, f"see `{self.prog} --help`")
        sys.exit(BadInput.exit_code)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m harness", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    init = sub.add_parser("init", help="write a seeded random model of a preset (safetensors + .ckpt)")
    init.add_argument("--model", required=True, help="bert | gpt2")
    init.add_argument("--size", required=True, help="preset name in cases/sizes.toml (e.g. small, base)")
    init.add_argument("--seed", type=int, default=0)
    init.add_argument("--framework", default="both", help="pt (HF folder) | ms (.ckpt) | both (default)")
    init.add_argument("--head", default="none", help="BERT: none (BertModel, default) | mlm (BertForMaskedLM: "
                      "the masked-LM head, no pooler)")
    init.add_argument("--out", required=True, type=Path, help="output folder")

    ex = sub.add_parser("expand", help="grow a model with bert2BERT FPI / AKI, or losslessly (width and depth)")
    ex.add_argument("--model", required=True, help="bert | gpt2")
    ex.add_argument("--src", help="source preset (default: the config.json of --src-ckpt)")
    ex.add_argument("--dst", required=True, help="target preset")
    ex.add_argument("--method", default="fpi", help="fpi | aki | lossless (default fpi; lossless: "
                    "docs/lossless.md, GPT-2 at any larger size, BERT where post-LN allows)")
    ex.add_argument("--sampling", default="paper", help="paper | balanced (default paper)")
    ex.add_argument("--framework", default="both", help="pt | ms | both (default)")
    ex.add_argument("--src-ckpt", type=Path, help="source checkpoint (folder, .safetensors, .ckpt, .bin); "
                    "default: drawn from --seed as `init` does")
    ex.add_argument("--seed", type=int, default=0, help="seed of the plan (and of the source if drawn)")
    ex.add_argument("--allow-nonfinite", action="store_true", help="accept NaN/Inf in the source")
    ex.add_argument("--head", help="BERT: mlm grows a BertForMaskedLM (the masked-LM head grown with the model; a "
                    "source without one gets a head drawn from --seed first, and says so); default: the source's")
    ex.add_argument("--ms-executor", help="kernel (one pass per tensor, a custom operator; the default where "
                    "it builds) | ops (MindSpore's own ops); same bits either way")
    ex.add_argument("--out", required=True, type=Path, help="output folder")

    inf = sub.add_parser("infer", help="print the sentence embedding of a checkpoint")
    inf.add_argument("--sentence", required=True)
    inf.add_argument("--ckpt", required=True, type=Path, help="model folder or weights file with config.json beside it")
    inf.add_argument("--framework", default="pt", help="pt | ms (default pt)")
    inf.add_argument("--tokenizer", type=Path, help="tokenizer.json (default: the checkpoint's own, else MiniLM's)")

    from harness.commands import compare, convert, study, train
    compare.add_parser(sub)
    convert.add_parser(sub)
    train.add_parser(sub)
    study.add_parser(sub)
    return p


def _choice(value: str, valid: tuple[str, ...], what: str) -> str:
    if value not in valid:
        raise BadInput(f"unknown {what} {value!r}", f"use one of: {', '.join(valid)}")
    return value


def _frameworks(value: str) -> tuple[str, ...]:
    return FRAMEWORKS if value == "both" else (_choice(value, FRAMEWORKS + ("both",), "framework"),)


def _with_head(cfg, head: str | None):
    """cfg with the head --head names (None: as it is)."""
    from harness.core import families
    if head is None or head == cfg.head:
        return cfg
    _choice(head, families.get(cfg.family).HEADS, f"{cfg.family} head")
    from harness.core.lm_head import with_mlm_head
    if head == "mlm":
        return with_mlm_head(cfg)
    raise BadInput(f"--head {head}: the source has the masked-LM head; growth keeps it",
                   "drop --head, or grow a source without a head")


def _check_seed(value: int) -> None:
    if value < 0:
        raise BadInput(f"seed must be a non-negative integer, got {value}", "pass e.g. --seed 0")


def cmd_init(args) -> int:
    from harness.core.config import preset
    from harness.core.formats.atomic import staged
    from harness.core.seeded_init import init_state
    from harness.suite import frameworks
    cfg = _with_head(preset(args.model, args.size), args.head)
    _check_seed(args.seed)
    arrays = init_state(cfg, args.seed)
    for name in _frameworks(args.framework):
        fw = frameworks.load(name)
        path = fw.io.save(args.out, cfg, {k: fw.io.to_tensor(v) for k, v in arrays.items()})
        print(f"{fw.title}: wrote {path} ({staged(path).stat().st_size / 1e6:.1f} MB, {cfg.n_params():,} params)")
    return 0


def cmd_expand(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from harness.core.config import preset
    from harness.core.formats.atomic import staged
    from harness.core.formats.checkpoint import read_config, resolve, write_json
    from harness.core.plan import build_plan
    from harness.core.recipe import compile_recipes, provenance
    from harness.suite import frameworks

    console = Console(stderr=True)
    _choice(args.method, METHODS, "method")
    _choice(args.sampling, SAMPLINGS, "sampling")
    fws = _frameworks(args.framework)
    if args.ms_executor is not None:   # checked before any work: a typo should not cost a PyTorch run
        if "ms" not in fws:
            raise BadInput("--ms-executor applies to MindSpore, which --framework leaves out",
                           "drop --ms-executor or use --framework ms|both")
        frameworks.load("ms").expand.choose_executor(args.ms_executor)
    if args.src_ckpt is not None:
        _, cfg_path = resolve(args.src_ckpt)
        if cfg_path is None and args.src is None:
            raise BadInput(f"{args.src_ckpt}: no config.json beside it and no --src preset",
                           "put the config.json beside the checkpoint or name its preset with --src")
        src_cfg = read_config(cfg_path) if cfg_path is not None else preset(args.model, args.src)
    elif args.src is None:
        raise BadInput("expand needs a source: --src PRESET or --src-ckpt PATH", "add one of them")
    else:
        src_cfg = preset(args.model, args.src)
    if src_cfg.family != args.model:
        where = f"{cfg_path}: the source" if args.src_ckpt is not None and cfg_path is not None else "the source"
        raise BadInput(f"{where} is a {src_cfg.family} model but --model is {args.model}",
                       f"pass --model {src_cfg.family}, or a {args.model} source")
    loaded_cfg, src_cfg = src_cfg, _with_head(src_cfg, args.head)
    head_note = ""
    if args.src_ckpt is not None and loaded_cfg.head != src_cfg.head:   # a head drawn for a source without one
        head_note = f"masked-LM head seeded (seed {args.seed}): the source has none"
    elif args.src_ckpt is None:
        loaded_cfg = src_cfg   # drawn with its head, as `init --head` draws it
    dst_cfg = dataclasses.replace(preset(args.model, args.dst), head=src_cfg.head)

    start = time.perf_counter()
    plan = build_plan(src_cfg, dst_cfg, args.method, args.sampling, args.seed)
    recipes = compile_recipes(plan)
    plan_seconds = time.perf_counter() - start
    dst_cfg = plan.dst   # as grown: a lossless GPT-2 target's LayerNorm eps is scaled (harness.core.lossless)

    rows, parity = _expand_streamed(args, fws, loaded_cfg, src_cfg, dst_cfg, recipes, plan_seconds, console,
                                    head_note)

    log = {"plan": json.loads(plan.to_json()), "tensors": provenance(plan, recipes),
           "seconds": {title: seconds for title, seconds, _, _, _ in rows},
           "executor": {title: executor for title, _, _, executor, _ in rows},
           "streamed": True}
    if parity is not None:
        log["parity"] = {"identical": parity.identical, "compared": parity.compared, "max_ulp": parity.max_ulp,
                         "max_abs": parity.max_abs, "worst": parity.worst, "problems": parity.problems,
                         "sha256": {parity.got.name: parity.got_sha256, parity.ref.name: parity.ref_sha256}}
    write_json(args.out / "plan.json", log)

    table = Table(title=f"{args.model} {src_cfg.name or 'source'} -> {args.dst}, {args.method}/{args.sampling}, "
                        f"seed {args.seed}: {src_cfg.n_params():,} -> {dst_cfg.n_params():,} params")
    columns = {"load s": "load", "plan s": "plan", "expand s": "expand", "save s": "save", "total s": "total"}
    for col in ("framework", "executor", *columns, "peak RSS MB", "file", "MB"):
        table.add_column(col, justify="right" if col.endswith(("s", "MB")) else "left")
    for title, seconds, path, executor, peak in rows:
        table.add_row(title, executor, *(f"{seconds[key]:.2f}" for key in columns.values()), f"{peak / 1e6:,.0f}",
                      str(path), f"{staged(path).stat().st_size / 1e6:.1f}")
    out = Console()
    if not out.is_terminal:   # a log or a pipe: the whole table, never cut to rich's default 80 columns
        out = Console(width=Console(width=1 << 16).measure(table).maximum)
    out.print(table)
    print("streamed: each tensor written as it is made; save (a writer thread) overlaps expand, total is both")
    if parity is not None:
        print(f"parity (streamed, {parity.got.name} vs {parity.ref.name}): {parity.summary()}; "
              f"{parity.seconds:.1f} s")
        print(f"sha256: {parity.got.name} {parity.got_sha256}, {parity.ref.name} {parity.ref_sha256}")
    if head_note:
        print(f"{head_note}; its pooler dropped (BertForMaskedLM has none)")
    print(f"plan and provenance: {args.out / 'plan.json'}")
    if parity is not None and not parity.identical:
        _print_error("the MindSpore and PyTorch files differ (parity above)",
                     "a bug in one expander: rerun with --framework pt and ms apart and compare plan.json")
        return 1
    return 0


def _expand_streamed(args, fws, loaded_cfg, src_cfg, dst_cfg, recipes, plan_seconds, console, head_note):
    """Each framework grows the source streamed (harness/kinds/growth/stream.py: one target tensor in
    memory at a time, written as made); with both, the two files are compared tensor by tensor. A source
    read as loaded_cfg grows as src_cfg: with head_note, a BERT without the masked-LM head gets the seeded
    one (harness.core.lm_head). Returns ([(title, seconds, path, executor, peak RSS bytes)], FileParity or None)."""
    from harness.kinds.growth import stream

    need = dst_cfg.n_params() * 4 * len(fws) + (src_cfg.n_params() * 4 if args.src_ckpt is None else 0)
    stream.check_disk(args.out, need, f"growing {src_cfg.name or 'the source'} -> {dst_cfg.name} "
                                      f"({'drawn source, ' if args.src_ckpt is None else ''}{len(fws)} files)")

    def line(text):
        if not console.is_terminal:
            print(text, file=sys.stderr, flush=True)

    return _grow_each(args, fws, loaded_cfg, src_cfg, dst_cfg, recipes, plan_seconds, console, line, head_note)


def _grow_each(args, fws, loaded_cfg, src_cfg, dst_cfg, recipes, plan_seconds, console, line, head_note):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from harness.kinds.growth import stream
    from harness.suite import frameworks

    rows, source = [], None
    try:
        line(f"Source: drawing {src_cfg.name} from seed {args.seed} into a scratch folder" if args.src_ckpt is None
             else f"Source: reading {args.src_ckpt} tensor by tensor")
        source = stream.Source.open(args.src_ckpt, loaded_cfg, args.seed, args.out, args.allow_nonfinite)
        if head_note:
            source = source.with_mlm_head(src_cfg, args.seed)
            line(f"Source: {head_note}")
        for name in fws:
            fw = frameworks.load(name)
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console, transient=True, disable=not console.is_terminal) as bar:
                task = bar.add_task(f"{fw.title}: expanding", total=len(recipes))
                line(f"{fw.title}: expanding {len(recipes)} tensors, each written as it is made")
                stream.reset_peak_rss()
                result = stream.grow(name, recipes, source, dst_cfg, args.out,
                                     executor=args.ms_executor if name == "ms" else None,
                                     on_tensor=lambda _, task=task: bar.advance(task))
            if result.executor_note:
                print(f"{fw.title}: {result.executor_note}", file=sys.stderr, flush=True)
            line(f"{fw.title}: wrote {result.weights_path}")
            rows.append((fw.title, {**result.seconds, "plan": plan_seconds}, result.weights_path, result.executor,
                         result.peak_rss))
            del result
    finally:
        if source is not None:
            source.close()
    parity = None
    if len(rows) == 2:
        line("Parity: comparing the two files tensor by tensor")
        parity = stream.compare_files(rows[1][2], rows[0][2])
    return rows, parity


def cmd_infer(args) -> int:
    import numpy as np

    from harness.core.formats.checkpoint import load_checkpoint, resolve
    from harness.suite import frameworks
    from harness.suite.tokenizer import load_tokenizer, minilm_dir

    fw = frameworks.load(_choice(args.framework, FRAMEWORKS, "framework"))
    weights, _ = resolve(args.ckpt)
    cfg, arrays = load_checkpoint(args.ckpt)
    own = weights.parent / "tokenizer.json"
    tok_path = args.tokenizer or (own if own.is_file() else minilm_dir() / "tokenizer.json")
    tokenizer = load_tokenizer(tok_path)
    ids = np.array([tokenizer.encode(args.sentence).ids], dtype=np.int64)
    if ids.max() >= cfg.vocab:
        raise BadInput(f"token id {int(ids.max())} of tokenizer {tok_path} is outside the model's vocabulary "
                       f"({cfg.vocab})", "use the tokenizer that belongs to this model (--tokenizer)")
    if ids.shape[1] > cfg.positions:
        raise BadInput(f"the sentence has {ids.shape[1]} tokens, the model at most {cfg.positions}",
                       "use a shorter sentence")
    model = fw.models.build_model(cfg)
    fw.models.load_numpy_state(model, arrays)
    out = fw.models.run_forward(model, ids, np.ones_like(ids))
    emb = out["last_hidden_state"][0].mean(axis=0)
    print(f"model: {cfg.family}, hidden {cfg.hidden}, layers {cfg.layers}, from {weights} ({fw.title})")
    whose = "" if tok_path == own or args.tokenizer else " (MiniLM's; the checkpoint has none)"
    print(f"tokenizer: {tok_path}{whose}")
    print(f"tokens: {ids.shape[1]}  ids: {ids[0].tolist()}")
    print(f"sentence embedding (mean of last hidden state over tokens): shape {emb.shape}, "
          f"L2 norm {np.linalg.norm(emb):.6f}")
    print("first values: " + " ".join(f"{v:+.6f}" for v in emb[:8]))
    return 0


Terminated = interrupts.Terminated   # SIGTERM, raised like Ctrl-C so the same cleanup runs


def _print_error(what: str, fix: str = "") -> None:
    print(f"error: {one_line(what)}", file=sys.stderr)
    if fix:
        print(f"  fix: {one_line(fix)}", file=sys.stderr)


def report_interrupt(e: KeyboardInterrupt) -> int:
    """Remove this process's temporary files, print the interrupt's two lines, return 130 / 143."""
    from harness.core.formats.atomic import discard_live
    discard_live()   # also a file created just before its writer's `with` began
    name, code = interrupts.describe(e)
    _print_error(f"interrupted ({name}): temporary files removed; no partial file was left under a final "
                 "name (files completed before the interrupt are whole)",
                 "rerun the same command: it writes the same files")
    return code


def _interrupt_in(e: BaseException) -> KeyboardInterrupt | None:
    """The interrupt an exception was raised from (a C extension's import turns a KeyboardInterrupt
    into ImportError("initialization failed") with the interrupt as its cause), else None."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def _output(args):
    """The output folder of init / expand / convert / train, checked before any work and changed as one unit
    (harness.core.formats.atomic.OutputSet); nothing for infer."""
    from contextlib import nullcontext
    if getattr(args, "out", None) is None:
        return nullcontext()
    from harness.core.formats.atomic import OutputSet
    return OutputSet(args.out)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from harness.commands import compare, convert, study, train
    handler = {"init": cmd_init, "expand": cmd_expand, "infer": cmd_infer, "compare": compare.run,
               "convert": convert.run, "train": train.run, "study": study.run}[args.command]
    previous = interrupts.install()   # signals held (recorded) outside the command's own work
    try:
        with interrupts.released(), _output(args):
            return handler(args)
    except BadInput as e:
        _print_error(e.what, e.fix)
        return e.exit_code
    except KeyboardInterrupt as e:
        return report_interrupt(e)
    except Exception as e:  # a bug, not bad input: keep the traceback for the report
        interrupted = _interrupt_in(e)
        if interrupted is not None:
            return report_interrupt(interrupted)
        traceback.print_exc()
        _print_error(f"internal error: {type(e).__name__}: {e}",
                     "this is a bug in the tool; report it with the command line and the traceback above")
        return 3
    finally:
        if previous is not None:
            interrupts.restore(previous)


