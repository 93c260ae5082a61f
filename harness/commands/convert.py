"""`python -m harness convert SRC --to hf|ms|ms-zoo|ms-cells|MAP.toml --out DIR`: the same tensors,
bit for bit, in another naming scheme and format (harness.core.naming.convert)."""
from __future__ import annotations

from pathlib import Path

from harness.core.formats.atomic import staged
from harness.core.naming.convert import FORMATS, TARGETS


def add_parser(sub) -> None:
    p = sub.add_parser("convert", help="write a checkpoint's tensors in another naming scheme and format")
    p.add_argument("src", metavar="SRC", type=Path, help="checkpoint: model folder, .safetensors, .ckpt or .bin")
    p.add_argument("--to", required=True, help=f"{' | '.join(TARGETS)} | a map file (.toml): hf writes a "
                   "Hugging Face folder (model.safetensors + config.json), ms this project's model.ckpt, ms-zoo "
                   "the MindSpore model zoo's names, ms-cells MindSpore's cell defaults")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--from", dest="src_map", help="SRC's naming scheme: hf | ms-cells | ms-zoo | a map file; "
                   "default: detected")
    p.add_argument("--config", type=Path, help="config.json of the model (default: the one beside SRC)")
    p.add_argument("--size", help="or the model's preset in cases/sizes.toml (family from SRC's names)")
    p.add_argument("--format", choices=FORMATS, help="weights file format (default: safetensors for hf, else ckpt)")


def run(args) -> int:
    from harness.core.errors import BadInput
    from harness.core.formats.checkpoint import read_config
    from harness.core.naming.convert import convert

    if args.config is not None and args.size is not None:
        raise BadInput("--config and --size both name the model's config", "pass one of them")
    cfg = read_config(args.config) if args.config is not None else None
    done = convert(args.src, args.to, args.out, args.src_map, cfg, args.format, args.size)
    c = done.source
    print(f"read {args.src}: {c.scheme.label}" + (f" (prefix {c.prefix!r})" if c.prefix else "") + f": {c.summary()}")
    for name, reason in _by_reason(c.ignored):
        print(f"  ignored {name}: {reason}")
    print(f"wrote {done.weights}: {done.n_tensors} tensors as {done.target.label}"
          + (f" (prefix {done.target.write_prefix!r})" if done.target.write_prefix else "")
          + f", {staged(done.weights).stat().st_size / 1e6:.1f} MB")
    print(f"wrote {done.config}" if done.config else "no config.json written (none beside SRC; --config / --size)")
    return 0


def _by_reason(ignored: list[tuple[str, str]]) -> list[tuple[str, str]]:
    groups: dict[str, list[str]] = {}
    for name, reason in ignored:
        groups.setdefault(reason, []).append(name)
    return [(names[0] + (f" and {len(names) - 1} more" if len(names) > 1 else ""), reason)
            for reason, names in groups.items()]
