"""A case in a fresh child process (seed sizes), so one case's memory peak never stacks on another's.

MindSpore's CPU memory pool keeps what it once allocated, so seed-size cases run one
after another in one process would stack their peaks; a child per case returns all of
it to the system when the case ends.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.suite.rows import CaseFailed, Row


def _run_child(runner: Callable, case, workdir: Path, keep: bool, tolerances) -> tuple[list[Row], str | None]:
    try:
        return runner(case, workdir, keep=keep, tolerances=tolerances), None
    except CaseFailed as e:  # rows travel back by value; the exception itself does not pickle
        return e.rows, str(e)


def run_isolated(runner: Callable, case, workdir: Path, keep: bool = False,
                 tolerances=None) -> tuple[list[Row], str | None]:
    """runner(case, workdir, keep=, tolerances=) (a module-level function, so it pickles by name)
    in a fresh child process: (rows, error or None)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_run_child, runner, case, workdir, keep, tolerances).result()
