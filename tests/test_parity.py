"""MindSpore vs PyTorch growth, one test per quantity per case of cases/cases.toml.

`case` is parametrised by the root conftest.py (ids = case ids, marks from the row).
Each case is computed once by harness.kinds.growth.runner.run_case; these tests only gate its rows:
    pytest -k base2large_aki               every check of one case
    pytest -k "small2base and output"      one check
"""


def test_param(case, parity):
    parity.check(case, "param")


def test_output(case, parity):
    parity.check(case, "output")


def test_layers(case, parity):
    parity.check(case, "layers")


def test_preservation(case, parity):
    parity.check(case, "preservation")


def test_time(case, parity):
    parity.check(case, "time")


def test_size(case, parity):
    parity.check(case, "size")


def test_hash(case, parity):
    parity.check(case, "hash")
