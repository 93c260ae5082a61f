"""tools/check_mirror.py: the real trees mirror each other; a diverged copy fails and is named."""
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "check_mirror.py"
# the edits below need only the model files; copying just these keeps the test independent of the rest
MODEL_FILES = ("__init__.py", "bert.py", "gpt2.py", "layers.py")


def run_tool(*args):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, cwd=ROOT)


def edit(path, old, new):
    text = path.read_text()
    assert old in text, f"{path.name} no longer contains {old!r}: update this test"
    path.write_text(text.replace(old, new, 1))
    return 1 + text[: text.index(old)].count("\n")  # line of the edit


@pytest.fixture
def trees(tmp_path):
    """Copies of the model files of both trees; they mirror (checked), so a failure below comes from the edit."""
    pt, ms = tmp_path / "models_pt", tmp_path / "models_ms"
    for src, dst in ((ROOT / "models_pt", pt), (ROOT / "models_ms", ms)):
        dst.mkdir()
        for name in MODEL_FILES:
            shutil.copy(src / name, dst / name)
    result = run_tool("--pt", pt, "--ms", ms)
    assert result.returncode == 0, result.stdout + result.stderr
    return pt, ms


def test_real_trees_mirror():
    result = run_tool()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("check-mirror: models_ms mirrors models_pt:"), result.stdout
    assert len(result.stdout.strip().splitlines()) == 1


@pytest.mark.parametrize("file, old, new", [
    ("bert.py", "self.value = Linear(", "self.values = Linear("),                  # attribute name
    ("gpt2.py", "self.ln_f = LayerNorm(cfg.hidden, cfg.eps)",
     "self.ln_f = LayerNorm(cfg.hidden, 1e-7)"),                                # eps
    ("layers.py", "MASK_FILL = float(np.finfo(np.float32).min)", "MASK_FILL = -1e9"),  # mask fill
    ("gpt2.py", "def construct(self, x):", "def forward(self, x):"),           # untranslated vocabulary
])
def test_diverged_line_fails_naming_file_and_line(trees, file, old, new):
    pt, ms = trees
    line = edit(ms / file, old, new)
    result = run_tool("--pt", pt, "--ms", ms)
    assert result.returncode == 1, result.stdout
    assert f"{ms / file}:{line}" in result.stdout, result.stdout  # hunk header names the MindSpore line
    assert f"+     {line:4d}  " in result.stdout and new in result.stdout, result.stdout
    assert "FAILED" in result.stdout


def test_framework_block_may_differ(trees):
    pt, ms = trees
    edit(ms / "layers.py", "def embed(ids, weight):\n", "def embed(ids, weight):\n    ids = ids.astype(ms.int32)\n")
    result = run_tool("--pt", pt, "--ms", ms)
    assert result.returncode == 0, result.stdout


def test_missing_file_and_unclosed_block_are_named(trees):
    pt, ms = trees
    (ms / "gpt2.py").unlink()
    line = edit(ms / "bert.py", "# mirror: end\n", "")
    result = run_tool("--pt", pt, "--ms", ms)
    assert result.returncode == 1
    assert f"{ms / 'gpt2.py'}: missing (mirror of {pt / 'gpt2.py'})" in result.stdout, result.stdout
    assert f"{ms / 'bert.py'}:{line - 2}: '# mirror: framework' is never closed" in result.stdout, result.stdout


def test_shared_line_may_not_import_the_other_framework(trees):
    pt, ms = trees
    for tree in (pt, ms):
        edit(tree / "bert.py", "# mirror: end\n", "# mirror: end\nimport torch\n")
    result = run_tool("--pt", pt, "--ms", ms)
    assert result.returncode == 1
    assert f"{ms / 'bert.py'}:" in result.stdout and "imports the other framework" in result.stdout, result.stdout


def test_token_table_replaces_whole_tokens_only():
    spec = importlib.util.spec_from_file_location("check_mirror", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.translate("class A(nn.Module):") == "class A(nn.Cell):"
    assert tool.translate("self.h = nn.ModuleList(blocks)") == "self.h = nn.CellList(blocks)"
    assert tool.translate("x = torch.matmul(a, my_torch.matmul)") == "x = ops.matmul(a, my_torch.matmul)"
    assert tool.translate("torch.matmulx(a)") == "torch.matmulx(a)"
