"""pytest wiring of the parity harness: generic over the case kinds of harness/kinds/registry.py
(their runners do the work, free of pytest).

- Cases come from each kind of harness.kinds.registry (growth: cases/cases.toml): every test taking
  a kind's fixture argument (growth: `case`) is parametrised with ids = case ids and marks
  from the row (family, method, slow); each case is its own xdist_group, so
  `-n 2 --dist loadgroup` never splits one.
- Items are ordered case by case, so each case is computed once and only the most
  recent case's rows are held (memory stays bounded).
- Rows of every computed case are collected; at session end they are written to
  reports/ (parity.csv, .json, .md); xdist workers send theirs to the controller in xdist's
  workeroutput (over the worker's channel, so a worker on another host, `--tx ssh=...` or
  `--tx socket=...`, needs no shared folder), which merges them. KEEP=1 keeps the grown
  checkpoints (under reports/grown/).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.kinds.registry import KINDS, load_tolerances
from harness.suite import report
from harness.suite.rows import CaseFailed, failure_message

ROOT = Path(__file__).resolve().parent
REPORTS = Path(os.environ.get("PARITY_REPORTS", ROOT / "reports"))

_rows_key = pytest.StashKey[dict]()   # case id -> rows of its (latest) computation here
_cases_key = pytest.StashKey[dict]()   # kind fixture -> its cases
_order_key = pytest.StashKey[dict]()   # case id -> position over every kind
_kind_key = pytest.StashKey[dict]()    # case id -> its kind
_shards_key = pytest.StashKey[dict]()  # xdist controller: worker id -> the rows it sent (report.shard_text)
_WORKER_ROWS = "parity_rows"           # the key of a worker's rows in xdist's workeroutput


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def _cases(config, kind=None) -> list:
    """The cases of one kind, or of every kind (in KINDS order); loaded once per session."""
    if _cases_key not in config.stash:
        by_kind = {k.fixture: k.load() for k in KINDS}
        seen: dict[str, object] = {}
        for each in KINDS:   # not `kind`: that is the argument, used below
            for case in by_kind[each.fixture]:
                if case.id in seen:
                    raise pytest.UsageError(f"case id {case.id!r} is both a {seen[case.id].name} and a {each.name} "
                                            "case: ids must be unique over every kind (see harness/kinds/registry.py)")
                seen[case.id] = each
        config.stash[_cases_key] = by_kind
        config.stash[_kind_key] = seen
        config.stash[_order_key] = {case_id: i for i, case_id in enumerate(seen)}
    by_kind = config.stash[_cases_key]
    return by_kind[kind.fixture] if kind else [c for k in KINDS for c in by_kind[k.fixture]]


def _kind_by_id(config, case_id: str):
    _cases(config)   # loads and indexes every kind's cases, once
    return config.stash[_kind_key][case_id]


def _kind_of(item):
    """(kind, case) of a parity item, or (None, None)."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    for kind in KINDS:
        if kind.fixture in params:
            return kind, params[kind.fixture]
    return None, None


def pytest_configure(config):
    config.stash[_rows_key] = {}
    config.stash[_shards_key] = {}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """xdist, on the controller: a worker ended; keep the rows it sent (its workeroutput)."""
    text = getattr(node, "workeroutput", {}).get(_WORKER_ROWS)
    if text:
        node.config.stash[_shards_key][node.gateway.id] = text


def pytest_generate_tests(metafunc):
    grouped = metafunc.config.pluginmanager.hasplugin("xdist")
    for kind in KINDS:
        if kind.fixture not in metafunc.fixturenames:
            continue
        params = []
        for case in _cases(metafunc.config, kind):
            marks = [getattr(pytest.mark, m) for m in case.all_marks]
            if grouped:
                marks.append(pytest.mark.xdist_group(case.id))
            params.append(pytest.param(case, id=case.id, marks=marks))
        metafunc.parametrize(kind.fixture, params)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """--dist loadgroup, grouping parity items by case id from the node id: xdist's own
    LoadGroupScheduling through xdist's documented hook, with its scope function only.

    pytest 9.2 builds node ids from a structured id, so the "@group" suffix xdist 3.8 writes into
    item._nodeid never reaches the scheduler and xdist_group marks alone no longer group
    (pytest-dev/pytest-xdist#1386, open; the fix, PR #1388, is not released). Checked with the
    pinned pair: plain --dist loadgroup spreads one group's tests over both workers. Without this
    a case's checks would be split over workers and the case computed once per worker
    (tests/test_distributed.py). Remove it once a pinned xdist groups by the mark again.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling
    case_ids = {case.id for case in _cases(config)}

    class CaseScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            param = nodeid[nodeid.rfind("[") + 1:-1] if nodeid.endswith("]") else None
            return param if param in case_ids else super()._split_scope(nodeid)

    return CaseScheduling(config, log)


def _quantity(item) -> str:
    return item.originalname.removeprefix("test_")


def _check_key(item):
    """(case position over all kinds, quantity position) of a parity check item, else None."""
    kind, case = _kind_of(item)
    if kind is None or _quantity(item) not in kind.quantities:
        return None
    _cases(item.config)
    return item.config.stash[_order_key][case.id], kind.quantities.index(_quantity(item))


def pytest_collection_modifyitems(session, config, items):
    """All checks of a case consecutive (kind order, case order from its file, quantity order)."""
    slots = [i for i, item in enumerate(items) if _check_key(item) is not None]
    if not slots:
        return
    chosen = sorted((items[i] for i in slots), key=_check_key)
    for slot, item in zip(slots, chosen, strict=True):
        items[slot] = item


class ParityRun:
    """Computes each case once; holds only the most recent case's rows."""

    def __init__(self, config, workdir: Path, keep: bool):
        self.config, self.workdir, self.keep = config, workdir, keep
        self.case_id, self.rows, self.error = None, [], None
        self.tolerances = load_tolerances()   # read once per session, checked against every kind

    def rows_of(self, case) -> tuple[list, str | None]:
        if case.id != self.case_id:
            self.case_id, self.rows, self.error = case.id, [], None   # free the previous case first
            kind = _kind_by_id(self.config, case.id)
            if "slow" in case.marks:   # seed sizes: a child process each, so peaks do not stack
                self.rows, self.error = kind.run_isolated(case, self.workdir, keep=self.keep,
                                                             tolerances=self.tolerances)
            else:
                try:
                    self.rows = kind.run(case, self.workdir, keep=self.keep, tolerances=self.tolerances)
                except CaseFailed as e:
                    self.rows, self.error = e.rows, str(e)
            self.config.stash[_rows_key][case.id] = self.rows
        return self.rows, self.error

    def check(self, case, quantity: str) -> None:
        rows, error = self.rows_of(case)
        if error:
            pytest.fail(f"{case.id}: {quantity}: the case did not complete: {error}", pytrace=False)
        message = failure_message(case.id, quantity, rows)
        if message:
            pytest.fail(message, pytrace=False)
        if all(r.status == "info" for r in rows if r.case == case.id and r.quantity == quantity):
            # measured and in the report, but nothing to pass or fail: say so rather than pass
            pytest.skip(f"{case.id}: {quantity}: reported, not gated (no limit in cases/tolerances.toml "
                        "applies to these rows)")


@pytest.fixture
def expect_bad_input():
    """check(load, path, words): load(path) raises BadInput whose message names the file and
    holds every one of `words` (the cases-file tests of each kind)."""
    from harness.core.errors import BadInput

    def check(load, path, words):
        with pytest.raises(BadInput) as e:
            load(path)
        assert str(path) in e.value.what
        for word in words:
            assert word in str(e.value), (word, str(e.value))
    return check


def _compiler_here() -> str | None:
    """None where a C++ compiler is found (the MindSpore kernel must then build, run and be used),
    else why not: only then may tests of the kernel skip, and MindSpore's default be its ops."""
    from harness.core.execution import kernel_build
    try:
        kernel_build.compiler()
        return None
    except kernel_build.KernelUnavailable as exc:
        return str(exc)


@pytest.fixture(scope="session")
def ms_default_executor() -> str:
    """The executor MindSpore's expander must choose here: "kernel", or "ops" where no compiler is."""
    return "kernel" if _compiler_here() is None else "ops"


@pytest.fixture
def ms_kernel_without_compiler(monkeypatch):
    """MindSpore's expander as on a machine with no C++ compiler: $CXX names none, and the kernel
    was never built in this process."""
    from harness.suite import frameworks
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    monkeypatch.setattr(frameworks.load("ms").expand, "_kernel", {})


@pytest.fixture
def needs_kernel():
    """Skips where no C++ compiler is (a machine without g++); a kernel that a compiler here fails
    to build or run is a failure, not a skip."""
    why = _compiler_here()
    if why is not None:
        pytest.skip(f"MindSpore's kernel executor cannot be built here: {why}")


@pytest.fixture(scope="session")
def parity(request, tmp_path_factory) -> ParityRun:
    keep = os.environ.get("KEEP", "") not in ("", "0")
    workdir = REPORTS / "grown" if keep else tmp_path_factory.mktemp("grown")
    return ParityRun(request.config, workdir, keep)


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    by_case = config.stash.get(_rows_key, {})
    if _is_worker(config):
        if by_case:   # sent to the controller with the worker's last message (xdist's workeroutput)
            config.workeroutput[_WORKER_ROWS] = report.shard_text([r for rows in by_case.values() for r in rows])
        return
    shards = config.stash.get(_shards_key, {})
    if shards:   # every worker is down (and has sent its rows) by now
        in_order = sorted(shards, key=lambda k: (len(k), k))   # gw0, gw1, ..., gw10
        for case, rows in report.merge_shard_texts([shards[k] for k in in_order]).items():
            by_case.setdefault(case, rows)
        _cases(config)
        order = config.stash[_order_key]
        config.stash[_rows_key] = by_case = dict(sorted(by_case.items(), key=lambda kv: order.get(kv[0], len(order))))
    if by_case:
        report.write_reports([r for rows in by_case.values() for r in rows], REPORTS, KINDS)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    rows = [r for rows in config.stash.get(_rows_key, {}).values() for r in rows]
    if rows and not _is_worker(config):
        terminalreporter.write_sep("=", "parity")
        terminalreporter.write(report.render_console(rows, KINDS, width=max(terminalreporter._tw.fullwidth, 160)))
        terminalreporter.write_line(f"reports: {REPORTS}/parity.csv, parity.json, parity.md")
