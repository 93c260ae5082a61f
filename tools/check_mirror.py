"""Check that models_ms mirrors models_pt line by line (`make check-mirror`).

Every models_pt/X.py needs a models_ms/X.py and the other way round. The PyTorch
text is rewritten through TOKENS, a small table of framework vocabulary, and
must then equal the MindSpore text line for line, except inside blocks marked

    # mirror: framework
    ...   lines that may differ (imports, tensor conversion, a missing CPU kernel)
    # mirror: end

Blocks are compared by position only: both files need the same number of
blocks, at the same places, with the same indentation. Shared lines must not
import the other side's framework. Exit 0 with a one-line summary when
mirrored; exit 1 with a diff naming file and line otherwise.
"""
from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# PyTorch spelling -> MindSpore spelling. Whole tokens only, so "nn.Module"
# leaves "nn.ModuleList" alone. Keep this short: each entry is framework
# vocabulary with the same arguments on both sides, nothing else.
TOKENS = {
    "nn.Module": "nn.Cell",
    "nn.ModuleList": "nn.CellList",
    "def forward": "def construct",
    "F.linear": "ops.dense",
    "F.gelu": "ops.gelu",
    "torch.addmm": "ops.addmm",
    "torch.arange": "ops.arange",
    "torch.float32": "ms.float32",
    "torch.log_softmax": "ops.log_softmax",
    "torch.matmul": "ops.matmul",
    "torch.ones": "ops.ones",
    "torch.softmax": "ops.softmax",
    "torch.tril": "ops.tril",
    "torch.zeros_like": "ops.zeros_like",
}
BEGIN, END = "# mirror: framework", "# mirror: end"
BLOCK = "<framework block>"  # what a marked block is compared as
# an import of the other side's framework on a shared line: the two trees never share one
FOREIGN = {"pt": re.compile(r"^\s*(import|from)\s+mindspore\b"), "ms": re.compile(r"^\s*(import|from)\s+torch\b")}

_TOKEN_RE = re.compile(r"(?<![\w.])(" + "|".join(re.escape(t) for t in sorted(TOKENS, key=len, reverse=True))
                       + r")(?!\w)")


class MirrorError(Exception):
    """A file that cannot be checked (unbalanced markers); the message names file and line."""


def translate(line: str) -> str:
    """A PyTorch line in MindSpore vocabulary."""
    return _TOKEN_RE.sub(lambda m: TOKENS[m.group(1)], line)


def shared_lines(path: Path, shown: str) -> tuple[list[tuple[int, str]], int]:
    """(line number, text) of the lines outside marked blocks, each block as one BLOCK line; and the block count."""
    lines: list[tuple[int, str]] = []
    opened_at = 0
    blocks = 0
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = raw.rstrip()
        marker = text.strip()
        if marker == BEGIN:
            if opened_at:
                raise MirrorError(f"{shown}:{n}: '{BEGIN}' inside the block opened at line {opened_at}")
            opened_at = n
            blocks += 1
            lines.append((n, text[: len(text) - len(marker)] + BLOCK))
        elif marker == END:
            if not opened_at:
                raise MirrorError(f"{shown}:{n}: '{END}' without '{BEGIN}'")
            opened_at = 0
        elif not opened_at:
            lines.append((n, text))
    if opened_at:
        raise MirrorError(f"{shown}:{opened_at}: '{BEGIN}' is never closed by '{END}'")
    return lines, blocks


def diff(pt: list[tuple[int, str]], ms: list[tuple[int, str]], pt_name: str, ms_name: str) -> list[str]:
    """Unified-style diff of translated PyTorch lines vs MindSpore lines, with original line numbers."""
    a = [translate(t) for _, t in pt]
    b = [t for _, t in ms]
    out: list[str] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for group in matcher.get_grouped_opcodes(2):
        if not out:
            out += [f"--- {pt_name} (token table applied)", f"+++ {ms_name}"]
        first = next(op for op in group if op[0] != "equal")
        pt_line = pt[first[1]][0] if first[1] < len(pt) else pt[-1][0] + 1
        ms_line = ms[first[3]][0] if first[3] < len(ms) else ms[-1][0] + 1
        out.append(f"@@ {pt_name}:{pt_line} {ms_name}:{ms_line} @@")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                pairs = zip(range(i1, i2), range(j1, j2), strict=False)   # a replaced run: lengths may differ
                out += [f" {pt[i][0]:4d} {ms[j][0]:4d}  {a[i]}" for i, j in pairs]
                continue
            out += [f"-{pt[i][0]:4d}       {a[i]}" for i in range(i1, i2)]
            out += [f"+     {ms[j][0]:4d}  {b[j]}" for j in range(j1, j2)]
    return out


def python_files(tree: Path) -> set[str]:
    return {p.relative_to(tree).as_posix() for p in tree.rglob("*.py") if "__pycache__" not in p.parts}


def shown(path: Path) -> str:
    """The path relative to the working directory when it lies below it (shorter messages)."""
    try:
        return path.resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


def check(pt_dir: Path, ms_dir: Path, only: list[str] | None = None) -> tuple[list[str], str]:
    """(problems, summary) for both trees, or for the files named in `only`.

    Each problem is a printable block that names the file."""
    pt_files, ms_files = python_files(pt_dir), python_files(ms_dir)
    if only:
        pt_files &= set(only)
        ms_files &= set(only)
        pt_files |= set(only) - ms_files  # a name in neither tree is reported as missing
    problems: list[str] = []
    for rel in sorted(pt_files - ms_files):
        problems.append(f"{shown(ms_dir / rel)}: missing (mirror of {shown(pt_dir / rel)})")
    for rel in sorted(ms_files - pt_files):
        problems.append(f"{shown(pt_dir / rel)}: missing (mirror of {shown(ms_dir / rel)})")
    n_lines = n_blocks = 0
    for rel in sorted(pt_files & ms_files):
        pt_name, ms_name = shown(pt_dir / rel), shown(ms_dir / rel)
        try:
            pt, pt_blocks = shared_lines(pt_dir / rel, pt_name)
            ms, _ = shared_lines(ms_dir / rel, ms_name)
        except MirrorError as e:
            problems.append(str(e))
            continue
        for side, lines, name in (("pt", pt, pt_name), ("ms", ms, ms_name)):
            problems += [f"{name}:{n}: shared line imports the other framework: "
                         f"{t.strip()}" for n, t in lines if FOREIGN[side].search(t)]
        hunks = diff(pt, ms, pt_name, ms_name)
        if hunks:
            problems.append("\n".join(hunks))
        n_lines += sum(t != BLOCK and t.strip() != "" for _, t in pt)
        n_blocks += pt_blocks
    summary = (f"check-mirror: {shown(ms_dir)} mirrors {shown(pt_dir)}: {len(pt_files)} files, {n_lines} shared lines, "
               f"{n_blocks} framework blocks, {len(TOKENS)} token pairs")
    return problems, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pt", type=Path, default=ROOT / "models_pt", help="PyTorch tree (default: models_pt)")
    parser.add_argument("--ms", type=Path, default=ROOT / "models_ms", help="MindSpore tree (default: models_ms)")
    parser.add_argument("files", nargs="*", help="check only these files (paths relative to the trees)")
    args = parser.parse_args(argv)
    for d in (args.pt, args.ms):
        if not d.is_dir():
            print(f"check-mirror: {d}: not a directory", file=sys.stderr)
            return 2
    problems, summary = check(args.pt, args.ms, args.files)
    if problems:
        print("\n\n".join(problems))
        print(f"check-mirror: FAILED, {len(problems)} problem(s); a difference outside "
              f"'{BEGIN}' ... '{END}' must come from the token table in {Path(__file__).name}")
        return 1
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
