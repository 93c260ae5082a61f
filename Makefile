# One command sets a fresh clone up: every target below creates .venv and installs
# the pinned requirements first (nothing is downloaded at run time).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_VERBOSITY := error
export GLOG_v := 3

.PHONY: setup test parity bench bench-scale study check-mirror lint clean

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)

check-mirror: $(STAMP)
	$(PY) tools/check_mirror.py

# ruff (rules in pyproject.toml), the import contracts (pyproject.toml [tool.importlinter]) and the
# CI workflow, by actionlint (its binary ships in the pinned wheel: nothing is fetched).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/actionlint .github/workflows/ci.yml

# The default test run: everything but the seed-size (slow) cases, on TEST_JOBS pytest-xdist workers
# (default 2, one per core; each parity case stays on one worker, conftest.py). Measured 2026-12-03: 9:17 on
# a quiet machine; run after run it took 11:33 in CI and 15:28 here under load. TEST_JOBS=0: one process.
TEST_JOBS ?= 2
test: $(STAMP) check-mirror lint
	$(PY) -m pytest -m "not slow" -q --junitxml=reports/junit.xml $(if $(filter-out 0,$(TEST_JOBS)),-n $(TEST_JOBS) --dist loadgroup)

# Every parity case (growth, TinyBERT distillation, inference), seed sizes included:
# reports/parity.{csv,json,md} and junit.xml. KEEP=1 keeps the grown checkpoints (reports/grown/);
# JOBS=2 spreads cases over pytest-xdist workers, one case per worker at a time (each worker
# holds its own models).
parity: $(STAMP)
	KEEP=$(KEEP) $(PY) -m pytest tests/test_parity.py tests/test_tinybert.py tests/test_inference.py tests/test_train.py \
		tests/test_distill_train.py -q \
		--junitxml=reports/junit.xml $(if $(JOBS),-n $(JOBS) --dist loadgroup)

# Expansion (medians of REPEAT runs per case and framework), inference throughput, then training-step
# times per framework and mode (PyTorch, MindSpore jit / PyNative) with the MatMul floor of their ratio
# (each run times the model's own MatMul and 2048x768x3072): GPT-2 CLM, BERT base MLM (issue #15's target
# row: MindSpore / PyTorch <= 3 at 8 x 128) and a TinyBERT distillation step.
REPEAT ?= 3
bench: $(STAMP)
	$(PY) tools/bench_expand.py --repeat $(REPEAT)
	$(PY) tools/bench_infer.py
	$(PY) tools/bench_train.py --family gpt2 --preset tiny_text --batch 8 --length 128
	$(PY) tools/bench_train.py --family gpt2 --preset base --batch 8 --length 128 --modes pt,ms_jit
	$(PY) tools/bench_train.py --family bert --preset base --batch 8 --length 128 --modes pt,ms_jit
	$(PY) tools/bench_train.py --family tinybert --preset tinybert_zh --teacher base --batch 8 --length 128

# The cost curve of streamed growth up to GPT-2 at 6.7e9 parameters (tools/bench_scale.py): seconds,
# write floor, time / floor and peak RSS per step and framework; reports/bench_scale.{md,json,png}.
# Writes about 150 GB over the run but holds at most one step's source and target (~33 GB at 6.7B).
bench-scale: $(STAMP)
	$(PY) tools/bench_scale.py $(SCALE_ARGS)

# The growth study (issue 16): grown vs scratch continued pre-training, both families, both frameworks
# (cases/study.toml [profile.full]): reports/study/{curves.csv,summary.md,loss_vs_*.png}. The two families
# train at once (--jobs 2, a process each, one thread each). Finished runs are kept in reports/study/runs/
# (an interrupted study resumes); FRESH=1 redoes them.
study: $(STAMP)
	$(PY) -m harness study --config cases/study.toml --jobs 2 $(if $(FRESH),--fresh)

clean:
	rm -rf reports rank_0 .pytest_cache
