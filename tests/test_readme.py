"""README.md against the tree: every path its Layout section names exists, and every relative link in
README.md and docs/ resolves inside the repository, so a moved or renamed module fails here.

The Layout section's first code block is a tree drawn with indentation (tree-drawing characters count
as spaces): each line is `NAME[, NAME ...]  description`, the names separated from the description by
two or more spaces, folder names ending in "/", a line indented deeper than a folder's lying inside it.
Every line is a claim: a line whose first column is not a path fails, rather than being skipped.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "docs" / "results"

# Named in the Layout ahead of the branch that creates them (split out of writers.py and the inference
# runner). Tolerated while absent; once a file exists it is checked like any other. Remove an entry
# when its file has landed.
PENDING: frozenset[str] = frozenset()

_NAME = re.compile(r"^[A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)*/?$")
_TREE_CHARS = str.maketrans({c: " " for c in "│├└─┬┌┐┘┤┼"})
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


class LayoutError(ValueError):
    pass


def _outside_fences(text: str) -> list[tuple[int, str, bool]]:
    """(line number, line, inside a fenced code block) for every line."""
    out, fence = [], None
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip()
        marker = stripped[:3]
        if marker in ("```", "~~~") and (fence is None or marker == fence):
            fence = None if fence else marker
            out.append((n, line, True))
            continue
        out.append((n, line, fence is not None))
    return out


def section(text: str, title: str) -> list[tuple[int, str, bool]]:
    """The lines of the `## title` section (up to the next heading of level 1 or 2 outside code)."""
    lines, inside = [], False
    for n, line, fenced in _outside_fences(text):
        if not fenced and re.match(r"^#{1,2}\s", line):
            if inside:
                break
            inside = line.lstrip("#").strip().lower() == title.lower()
            continue
        if inside:
            lines.append((n, line, fenced))
    if not lines:
        raise LayoutError(f"README.md has no '## {title}' section")
    return lines


def first_code_block(lines: list[tuple[int, str, bool]]) -> list[tuple[int, str]]:
    """The body of the first fenced code block among `lines` (fence lines excluded)."""
    block, started = [], False
    for n, line, fenced in lines:
        is_fence = line.lstrip()[:3] in ("```", "~~~")
        if fenced and is_fence:
            if started:
                return block
            started = True
        elif fenced and started:
            block.append((n, line))
    raise LayoutError("the Layout section has no closed code block")


def tree_paths(block: list[tuple[int, str]]) -> list[tuple[str, int]]:
    """(repository path, line number) of every name in an indented tree; folders end with "/"."""
    if not block:
        raise LayoutError("the Layout code block is empty")
    paths: list[tuple[str, int]] = []
    stack: list[tuple[int, str]] = []          # (indent, folder path) of the enclosing folders
    previous: tuple[int, str | None] | None = None   # (indent, folder it opened or None)
    for n, raw in block:
        if "\t" in raw:
            raise LayoutError(f"README.md line {n}: a tab in the Layout tree (indent with spaces)")
        line = raw.translate(_TREE_CHARS).rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        names = [name.strip() for name in re.split(r"\s{2,}", line.strip())[0].split(",")]
        for name in names:
            if not _NAME.match(name) or name.startswith("/") or ".." in name.split("/"):
                raise LayoutError(f"README.md line {n}: {name!r} is not a repository path "
                                  "(each line of the tree is NAME  description)")
        if previous is not None and indent > previous[0] and previous[1] is None:
            raise LayoutError(f"README.md line {n}: indented under a line that opens no single folder")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else ""
        for name in names:
            paths.append((parent + name, n))
        opened = parent + names[0] if len(names) == 1 and names[0].endswith("/") else None
        if opened:
            stack.append((indent, opened))
        previous = (indent, opened)
    return paths


def layout_paths(text: str) -> list[tuple[str, int]]:
    return tree_paths(first_code_block(section(text, "Layout")))


def missing_paths(paths: list[tuple[str, int]], root: Path = ROOT, pending=PENDING) -> list[str]:
    """Named paths that do not exist as named (a folder as a folder, a file as a file)."""
    out = []
    for path, n in paths:
        target = root / path
        ok = target.is_dir() if path.endswith("/") else target.is_file()
        if not ok and path not in pending:
            out.append(f"README.md line {n}: {path}")
    return out


def relative_links(path: Path) -> list[tuple[str, int]]:
    """(target, line number) of every link to a repository file (no scheme, not a bare #anchor),
    outside code blocks and inline code."""
    links = []
    for n, line, fenced in _outside_fences(path.read_text()):
        if fenced:
            continue
        line = re.sub(r"(`+).*?\1", "", line)   # inline code
        targets = [m.group(1) for m in _LINK.finditer(line)] + [m.group(1) for m in _REF_DEF.finditer(line)]
        links += [(t, n) for t in targets if not _SCHEME.match(t) and not t.startswith("#")]
    return links


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    out = []
    for target, n in relative_links(path):
        resolved = (path.parent / target.split("#", 1)[0]).resolve()
        where = f"{path.relative_to(root)} line {n}: {target}"
        if not resolved.is_relative_to(root.resolve()):
            out.append(f"{where} (outside the repository)")
        elif not resolved.exists():
            out.append(where)
    return out


# -- the real README ---------------------------------------------------------------------------
def test_every_path_the_layout_names_exists():
    paths = layout_paths(README.read_text())
    assert len(paths) >= 40, f"the Layout tree parsed to only {len(paths)} paths: {paths}"
    missing = missing_paths(paths)
    if missing:
        pytest.fail("README.md's Layout names paths that do not exist:\n" + "\n".join(missing), pytrace=False)


def test_pending_paths_are_named_in_the_layout():
    named = {p for p, _ in layout_paths(README.read_text())}
    assert PENDING <= named, f"PENDING holds paths the Layout does not name: {sorted(PENDING - named)}"


def test_layout_covers_every_top_level_package_and_config():
    named = {p for p, _ in layout_paths(README.read_text())}
    for path in ("harness/", "harness/core/", "harness/suite/", "harness/kinds/", "harness/kinds/registry.py",
                 "harness/cli.py", "models_pt/", "models_ms/", "cases/", "tools/", "tests/", "conftest.py",
                 "tox.ini", "Makefile", "pyproject.toml", ".github/workflows/ci.yml", ".ci/run", "docs/"):
        assert path in named, path


@pytest.mark.parametrize("doc", [README, *sorted((ROOT / "docs").rglob("*.md"))],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc):
    broken = broken_links(doc)
    if broken:
        pytest.fail("broken links:\n" + "\n".join(broken), pytrace=False)


def test_results_index_lists_every_run_newest_first():
    index = RESULTS / "README.md"
    linked = [t for t, _ in relative_links(index)]
    runs = sorted(p.name for p in RESULTS.glob("*.md") if p.name != "README.md")
    assert sorted(set(linked)) == runs, (linked, runs)
    dates = [t[:10] for t in linked]
    assert dates == sorted(dates, reverse=True), f"not newest first: {dates}"


def test_readme_links_the_newest_result_of_each_kind():
    latest: dict[str, str] = {}
    for run in sorted(p.name for p in RESULTS.glob("20*.md")):   # ascending: the last one wins
        latest[run[11:].removesuffix(".md")] = run
    linked = {Path(t).name for t, _ in relative_links(README)}
    assert set(latest.values()) <= linked, sorted(set(latest.values()) - linked)


# -- the parser, on trees it must accept and refuse -------------------------------------------
def _tree(body: str) -> str:
    return f"# x\n\n## Layout\n\nThe layers.\n\n```\n{body}```\n\n## Next\n"


def test_parser_nests_folders_by_indentation_and_reads_several_names():
    text = _tree("a/          top\n  b.py      one\n  c/        two\n    d.py, e.py   three\n"
                 "  f.py      back up\ng/h.txt     deeper path in one name\n")
    assert [p for p, _ in layout_paths(text)] == ["a/", "a/b.py", "a/c/", "a/c/d.py", "a/c/e.py", "a/f.py",
                                                  "g/h.txt"]


def test_parser_reads_a_tree_drawn_with_box_characters():
    text = _tree("a/\n├── b.py    one\n└── c/\n    └── d.py   two\n")
    assert [p for p, _ in layout_paths(text)] == ["a/", "a/b.py", "a/c/", "a/c/d.py"]


@pytest.mark.parametrize("body,words", [
    ("a/   top\n  b.py   one\n       continued prose\n", "'continued prose' is not a repository path"),
    ("a.py   a file\n  b.py   under a file\n", "indented under a line"),
    ("a/\tb\n", "a tab"),
    ("../outside   up\n", "is not a repository path"),
])
def test_parser_refuses_a_line_that_is_not_a_tree_entry(body, words):
    with pytest.raises(LayoutError, match=re.escape(words)):
        layout_paths(_tree(body))


def test_a_named_path_that_is_missing_fails(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b.py").write_text("")
    paths = layout_paths(_tree("a/   top\n  b.py   here\n  gone.py   planted\n  c/   planted folder\n"))
    assert missing_paths(paths, tmp_path, pending=frozenset()) == ["README.md line 10: a/gone.py",
                                                                   "README.md line 11: a/c/"]
    assert missing_paths(paths, tmp_path, pending=frozenset({"a/gone.py", "a/c/"})) == []


def test_a_folder_named_as_a_file_fails(tmp_path):
    (tmp_path / "a").mkdir()
    assert missing_paths(layout_paths(_tree("a   a folder without its slash\n")), tmp_path) == ["README.md line 8: a"]


def test_a_broken_or_escaping_link_fails(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "ok.md").write_text("")
    doc = tmp_path / "README.md"
    doc.write_text("[ok](docs/ok.md#part) [web](https://example.org) [anchor](#layout) `[code](nope.md)`\n"
                   "[gone](docs/gone.md)\n[up](../elsewhere.md)\n```\n[fenced](nope.md)\n```\n[ref]: docs/missing.md\n")
    assert broken_links(doc, tmp_path) == ["README.md line 2: docs/gone.md",
                                           "README.md line 3: ../elsewhere.md (outside the repository)",
                                           "README.md line 7: docs/missing.md"]
