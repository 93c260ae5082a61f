"""Packaging: pyproject.toml parses, its console script runs, and `pip install -e .` works offline.

The editable install goes into a throwaway venv that sees this environment's packages (setuptools
as the build backend, numpy & co. for the CLI) through a .pth file; `--no-deps --no-index
--no-build-isolation` keep pip off the network. A venv made with --system-site-packages would see
the base interpreter's site-packages, not this venv's, when the tests run from a venv.
"""
from __future__ import annotations

import importlib
import os
import site
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
USAGE = "usage:"


@pytest.fixture(scope="module")
def pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def _entry_point(pyproject: dict):
    target = pyproject["project"]["scripts"]["bert2bert"]
    module, _, attr = target.partition(":")
    return importlib.import_module(module), attr


def test_pyproject_metadata(pyproject):
    project = pyproject["project"]
    assert project["name"] == "bert2bert-parity"
    assert project["requires-python"] == ">=3.11"
    assert project["scripts"] == {"bert2bert": "harness.cli:main"}
    assert pyproject["tool"]["setuptools"]["dynamic"]["dependencies"] == {"file": ["requirements.txt"]}


def test_console_script_target_prints_help(pyproject, capsys):
    module, attr = _entry_point(pyproject)
    main = getattr(module, attr)
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(USAGE)


def test_python_m_harness_help():
    out = subprocess.run([sys.executable, "-m", "harness", "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(USAGE)


def test_editable_install(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    venv_py = venv / "bin" / "python"
    purelib = subprocess.run([str(venv_py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    here = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib"), *site.getsitepackages()])
    Path(purelib, "_outer_env.pth").write_text("".join(f"{p}\n" for p in here))

    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    env.pop("PYTHONPATH", None)   # the checkout must come from the install, not from the environment
    install = subprocess.run([str(venv_py), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                              "--no-build-isolation", "-e", str(ROOT)],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert install.returncode == 0, install.stdout + install.stderr

    script = venv / "bin" / "bert2bert"
    helped = subprocess.run([str(script), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=60)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith(USAGE)
    # main's return value is the exit code; cases/ is found through the editable install
    bad = subprocess.run([str(script), "init", "--model", "bert", "--size", "no_such_size", "--out",
                          str(tmp_path / "out")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2, bad.stderr
    assert "unknown bert preset 'no_such_size'" in bad.stderr
