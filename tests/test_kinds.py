"""The case kinds are data: a new kind is its folder plus one registry line, and the report and the
tolerance tables take it without an edit (here a toy kind, declared in the test alone)."""
import json

import pytest

from harness.core.errors import BadInput
from harness.kinds import registry
from harness.kinds.registry import KINDS
from harness.suite import report, tolerances
from harness.suite.kind import CaseKind
from harness.suite.rows import CaseFailed, guarded, row
from harness.suite.summary import Column, Summary


def _toy_runner(case, workdir, *, keep=False, tolerances):
    limit = tolerances.limit(case, "bleep", "relative").value
    return guarded("toy", case, lambda rows: rows.append(row(case, "bleep", "relative", 0.5, limit, "toy")))


TOY = CaseKind(name="toy", fixture="toy_case", load=lambda: ["toy_a"], runner=_toy_runner,
               quantities=("bleep",), gated={"bleep": ("relative",)},
               summary=Summary(columns=(Column("bleep rel", lambda got: got.cell("bleep", "relative"), "bleep"),),
                               console_title="toy kind", json_key="toy_summary", heading="toy"))

OVERRIDE = '[[override]]\ncases = "toy_*"\nquantity = "bleep"\nmetric = "relative"\nlimit = 0.1\nreason = "measured"\n'


def test_a_new_kinds_gated_metric_is_a_tolerance_key_only_once_declared(tmp_path):
    path = tmp_path / "tol.toml"
    path.write_text(OVERRIDE)
    with pytest.raises(BadInput, match="unknown quantity 'bleep'"):
        tolerances.load_tolerances(path, registry.gated())
    tol = tolerances.load_tolerances(path, {**registry.gated(), **TOY.gated})
    assert tol.limit("toy_a", "bleep", "relative").value == 0.1


def test_a_new_kind_is_in_every_report_without_an_edit(tmp_path):
    path = tmp_path / "tol.toml"
    path.write_text(OVERRIDE)
    tol = tolerances.load_tolerances(path, {**registry.gated(), **TOY.gated})
    rows = TOY.run("toy_a", tmp_path, tolerances=tol)
    assert [(r.kind, r.status) for r in rows] == [("toy", "fail")]
    kinds = (*KINDS, TOY)
    report.write_reports(rows, tmp_path, kinds)
    assert json.loads((tmp_path / "parity.json").read_text())["toy_summary"] == [
        {"case": "toy_a", "bleep rel": "0.5", "status": "FAIL (bleep)"}]
    md = (tmp_path / "parity.md").read_text()
    assert "## toy" in md and "| toy_a | 0.5 | FAIL (bleep) |" in md and "## bleep" in md
    console = report.render_console(rows, kinds)
    assert "toy kind" in console and "toy_a: FAIL (bleep)" in console


def test_a_crashed_toy_case_is_stamped_with_its_kind():
    def crash(_rows):
        raise RuntimeError("boom")
    with pytest.raises(CaseFailed) as failed:
        guarded("toy", "toy_b", crash)
    assert [(r.kind, r.quantity) for r in failed.value.rows] == [("toy", "run")]


def test_two_kinds_may_not_claim_one_quantity(monkeypatch):
    clash = CaseKind(name="clash", fixture="clash_case", load=list, runner=_toy_runner, quantities=("param",),
                     gated={"param": ("max_ulp",)}, summary=TOY.summary)
    monkeypatch.setattr(registry, "KINDS", (*KINDS, clash))
    with pytest.raises(AssertionError, match="'param' is declared by two kinds"):
        registry.gated()
