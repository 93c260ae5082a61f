"""The lint gates of `make lint` can fail: ruff, the import contracts and actionlint each refuse a
planted fault (run on copies in a temporary folder, never on the tree)."""
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(tool: str, *args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    exe = BIN / tool
    if not exe.exists():
        pytest.fail(f"{exe} is missing: `make setup` installs it (requirements.txt)")
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120)


def test_actionlint_refuses_a_workflow_with_a_misspelled_key(tmp_path):
    good = tmp_path / "ci.yml"
    shutil.copy(ROOT / ".github" / "workflows" / "ci.yml", good)
    assert _run("actionlint", str(good), cwd=tmp_path).returncode == 0
    bad = tmp_path / "bad.yml"
    bad.write_text(good.read_text().replace("runs-on:", "runs_on:", 1))
    result = _run("actionlint", str(bad), cwd=tmp_path)
    assert result.returncode != 0 and "runs_on" in result.stdout + result.stderr


def test_ruff_refuses_an_unused_import_under_the_projects_rules(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text('"""A module."""\nimport os\n')
    result = _run("ruff", "check", "--config", str(ROOT / "pyproject.toml"), "--no-cache", str(planted), cwd=tmp_path)
    assert result.returncode != 0 and "F401" in result.stdout


def _layered_tree(root: Path, core_imports: str) -> None:
    """The project's packages as empty modules, harness.core.x importing `core_imports`."""
    for package in ("harness", "harness/commands", "harness/study", "harness/kinds", "harness/suite",
                    "harness/core", "models_pt", "models_ms"):
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").write_text("")
    (root / "harness" / "__main__.py").write_text("import harness.cli\n")
    (root / "harness" / "cli.py").write_text("import harness.commands\n")
    (root / "harness" / "commands" / "x.py").write_text("import harness.study\n")
    (root / "harness" / "study" / "x.py").write_text("import harness.kinds\n")
    (root / "harness" / "kinds" / "x.py").write_text("import harness.suite\n")
    (root / "harness" / "suite" / "x.py").write_text("import models_pt\nimport models_ms\n")
    (root / "models_pt" / "x.py").write_text("import harness.core\n")
    (root / "models_ms" / "x.py").write_text("import harness.core\n")
    (root / "harness" / "core" / "x.py").write_text(core_imports)
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    text = "[importlinter]\nroot_packages =\n" + "".join(f"    {p}\n" for p in config["root_packages"])
    text += "include_external_packages = True\n"
    for contract in config["contracts"]:
        text += f"\n[importlinter:contract:{contract['id']}]\nname = {contract['name']}\ntype = {contract['type']}\n"
        for key, value in contract.items():
            if key in ("id", "name", "type"):
                continue
            values = value if isinstance(value, list) else [value]
            text += f"{key} =\n" + "".join(f"    {v}\n" for v in values)
    (root / ".importlinter").write_text(text)   # the project's contracts, in import-linter's ini form


@pytest.mark.parametrize("planted, contract", [
    ("import harness.suite\n", "harness.core imports no framework and nothing above it"),
    ("import torch\n", "harness.core imports no framework and nothing above it"),
])
def test_the_import_contracts_refuse_a_core_module_importing_upward(tmp_path, planted, contract):
    import os
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    _layered_tree(tmp_path, "import numpy\n")
    assert _run("lint-imports", cwd=tmp_path, env=env).returncode == 0
    _layered_tree(tmp_path, planted)
    result = _run("lint-imports", cwd=tmp_path, env=env)
    assert result.returncode != 0 and f"{contract} BROKEN" in result.stdout, result.stdout[-2000:]
