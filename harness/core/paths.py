"""Where the project's own files are: the checkout's data folders and its build folder."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]   # harness/core/paths.py -> the checkout
CASES_DIR = ROOT / "cases"                   # sizes, cases, tolerances (TOML)
DATA_DIR = ROOT / "data"                     # offline text
BUILD_DIR = ROOT / "build"                   # compiled kernels (ignored by git)
