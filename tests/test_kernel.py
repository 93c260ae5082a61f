"""MindSpore's kernel executor (models_ms/kernel.cc fed by harness.core.execution.kernel) and its build
(harness.core.execution.kernel_build)."""
import os

import numpy as np
import pytest

from harness.core.errors import BadInput
from harness.core.execution import kernel_build
from harness.core.execution.kernel import kernel_args
from harness.core.recipe import TensorRecipe
from harness.core.reference import execute_recipes_numpy
from harness.suite import frameworks
from harness.suite.metrics import max_ulp

ms_expand = frameworks.load("ms").expand
ms_io = frameworks.load("ms").io


def _random_recipe(rng, name, shape, n_sources, cat_axis, div_axis):
    """A recipe of the harness.core.recipe form over sources of `shape`: random indices (with repeats) on
    every axis, a random positive divisor on div_axis."""
    ndim = len(shape)
    full = list(shape)
    if n_sources == 2:
        full[cat_axis] *= 2
    index = tuple(rng.integers(0, full[a], int(full[a] * 1.5)).astype(np.int64)
                  for a in range(ndim))
    divisor = None if div_axis is None else rng.integers(1, 4, full[div_axis]).astype(np.float32)
    sources = tuple(f"{name}.src{k}" for k in range(n_sources))
    return TensorRecipe(name, sources, cat_axis if n_sources == 2 else None, div_axis, divisor, index)


def _layouts():
    """Every layout the kernel branches on: 1-D / 2-D, one or two sources, cat axis, div axis; the 2-D
    shape grows to 450x1500 or more, past the kernel's 2^18 elements for splitting rows over threads."""
    for shape in ((300, 1000), (1000,)):
        ndim = len(shape)
        for n_sources in (1, 2):
            for cat_axis in (range(ndim) if n_sources == 2 else [None]):
                for div_axis in (None, *range(ndim)):
                    yield shape, n_sources, cat_axis, div_axis


@pytest.mark.parametrize("shape,n_sources,cat_axis,div_axis", list(_layouts()))
def test_kernel_equals_the_recipe_definition(shape, n_sources, cat_axis, div_axis, needs_kernel, monkeypatch):
    monkeypatch.setattr(ms_expand, "_THREADS", 4)   # the threaded path, whatever this machine's CPU count
    rng = np.random.default_rng(7)
    recipe = _random_recipe(rng, "t", shape, n_sources, cat_axis, div_axis)
    src = {s: rng.standard_normal(shape).astype(np.float32) for s in recipe.sources}
    want = execute_recipes_numpy([recipe], src)["t"]
    got = ms_io.to_numpy(ms_expand.expand({k: ms_io.to_tensor(v) for k, v in src.items()}, [recipe],
                                          executor="kernel")["t"])
    assert got.shape == want.shape
    assert max_ulp(got, want) == 0


def _call_kernel(s0, s1, rsel, ridx, csel, cidx, cat):
    from mindspore import Tensor
    ms_expand.choose_executor("kernel")
    arrays = (np.array(rsel, np.int32), np.array(ridx, np.int64), np.array(csel, np.int32),
              np.array(cidx, np.int64), np.ones(1, np.float32), np.array([cat, -1, 1], np.int64))
    return ms_expand._kernel["op"](Tensor(s0), Tensor(s1), *(Tensor.from_numpy(a) for a in arrays)).asnumpy()


def test_kernel_rejects_an_index_out_of_range_instead_of_reading_past_the_source(needs_kernel):
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    wide = np.arange(20, dtype=np.float32).reshape(4, 5)   # one more column than x
    tall = np.arange(20, dtype=np.float32).reshape(5, 4)   # one more row than x
    assert np.array_equal(_call_kernel(x, x, [0, 0], [3, 0], [0, 0], [0, 3], -1), [[12, 15], [0, 3]])
    assert np.array_equal(_call_kernel(x, tall, [0, 1], [3, 4], [0, 0], [0, 3], 0), [[12, 15], [16, 19]])
    assert np.array_equal(_call_kernel(x, wide, [0], [1], [0, 1], [3, 4], 1), [[7, 9]])
    out_of_range = {
        "a row past the source": (x, x, [0, 0], [0, 4], [0, 0], [0, 3], -1),
        "a column past the source": (x, x, [0], [0], [0], [4], -1),
        "a row past source 0 (cat 0)": (x, tall, [0], [4], [0], [0], 0),
        "a column past the narrower source (cat 0)": (wide, x, [1], [0], [0], [4], 0),
        "a column past source 0 (cat 1)": (x, wide, [0], [0], [0], [4], 1),
        "a row past the shorter source (cat 1)": (tall, x, [0], [4], [1], [0], 1),
        "a third source (rows)": (x, x, [2], [0], [0], [0], 0),
        "a third source (columns)": (x, x, [0], [0], [2], [0], 1),
        "a negative index": (x, x, [0], [-1], [0], [0], -1),
    }
    for what, args in out_of_range.items():
        with pytest.raises(RuntimeError, match="is 2"):
            _call_kernel(*args)
            pytest.fail(f"{what}: no error")


def test_one_pass_refuses_what_the_kernel_cannot_take():
    recipe = TensorRecipe("t", ("t.src0", "t.src1"), 1, None, None, (None, np.array([0, 11, 3])))
    assert kernel_args(recipe, {"t.src0": (4, 6), "t.src1": (4, 6)}).csel.tolist() == [0, 1, 0]
    with pytest.raises(BadInput, match="outside its source axis"):
        kernel_args(recipe, {"t.src0": (4, 6), "t.src1": (4, 5)})      # column 11 of 11
    with pytest.raises(BadInput, match="differ off the concatenation axis"):
        kernel_args(recipe, {"t.src0": (4, 6), "t.src1": (5, 6)})
    cube = TensorRecipe("c", ("c.src0",), None, None, None, (None, None, np.array([0, 0])))
    with pytest.raises(BadInput, match="1-D or 2-D"):
        kernel_args(cube, {"c.src0": (2, 2, 2)})


def test_a_3d_tensor_goes_by_ops_with_the_same_values(needs_kernel):
    src = {"c.src0": np.arange(8, dtype=np.float32).reshape(2, 2, 2)}
    recipe = TensorRecipe("c", ("c.src0",), None, 2, np.array([2.0, 4.0], np.float32),
                          (None, None, np.array([1, 0, 1])))
    got = ms_expand.expand({k: ms_io.to_tensor(v) for k, v in src.items()}, [recipe], executor="kernel")["c"]
    assert max_ulp(ms_io.to_numpy(got), execute_recipes_numpy([recipe], src)["c"]) == 0


def test_executor_choice_and_fallback(ms_kernel_without_compiler):
    assert ms_expand.choose_executor("ops") == ("ops", "")
    with pytest.raises(BadInput, match="unknown MindSpore executor 'fast'"):
        ms_expand.choose_executor("fast")
    with pytest.raises(BadInput, match="unknown PyTorch executor 'kernel'"):
        frameworks.load("pt").expand.choose_executor("kernel")

    executor, note = ms_expand.choose_executor()
    assert executor == "ops" and "kernel unavailable" in note and "no C++ compiler" in note
    with pytest.raises(BadInput, match="kernel executor is unavailable: no C\\+\\+ compiler"):
        ms_expand.choose_executor("kernel")


SOURCE = "extern \"C\" int Answer() { return 42; }\n"


def test_build_compiles_once_and_again_when_the_source_changes(tmp_path, needs_kernel):
    source = tmp_path / "answer.cc"
    source.write_text(SOURCE)
    first = kernel_build.build(source, tmp_path / "out")
    stamp = first.stat().st_mtime_ns
    assert kernel_build.build(source, tmp_path / "out") == first and first.stat().st_mtime_ns == stamp
    source.write_text(SOURCE.replace("42", "43"))
    second = kernel_build.build(source, tmp_path / "out")
    assert second != first and second.is_file()
    assert [p.name for p in (tmp_path / "out").iterdir()] == [second.name]   # the old build goes, no temporaries


def test_build_failures_name_the_cause_and_leave_nothing(tmp_path, monkeypatch, needs_kernel):
    source = tmp_path / "broken.cc"
    source.write_text("this is not C++\n")
    with pytest.raises(kernel_build.KernelUnavailable, match="failed \\(exit"):
        kernel_build.build(source, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    with pytest.raises(kernel_build.KernelUnavailable, match="no C\\+\\+ compiler 'no-such-compiler-here'"):
        kernel_build.build(source, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()
    with pytest.raises(kernel_build.KernelUnavailable, match="missing"):
        kernel_build.build(tmp_path / "gone.cc", tmp_path / "out3")
    monkeypatch.delenv("CXX")
    (tmp_path / "a_file").write_text("")
    source.write_text(SOURCE)
    with pytest.raises(kernel_build.KernelUnavailable, match="building answer.cc failed"):   # nowhere to write
        kernel_build.build(source.rename(tmp_path / "answer.cc"), tmp_path / "a_file" / "out")


def test_build_is_written_under_a_temporary_name_then_renamed(tmp_path, monkeypatch, needs_kernel):
    renamed = []
    real_replace = os.replace
    monkeypatch.setattr(kernel_build.os, "replace", lambda a, b: (renamed.append((a, b)), real_replace(a, b)))
    source = tmp_path / "answer.cc"
    source.write_text(SOURCE)
    path = kernel_build.build(source, tmp_path / "out")
    assert len(renamed) == 1 and renamed[0][1] == path and os.path.basename(renamed[0][0]).endswith(".tmp")


def test_a_kernel_that_fails_its_smoke_test_is_not_used(tmp_path, monkeypatch, needs_kernel):
    failing = tmp_path / "kernel.cc"
    failing.write_text("#include <cstdint>\nextern \"C\" int Kernel(int, void **, int *, int64_t **, "
                       "const char **, void *, void *) { return 3; }\n")
    real_build = kernel_build.build
    monkeypatch.setattr(kernel_build, "build", lambda source, build_dir=None: real_build(failing, tmp_path / "out"))
    monkeypatch.setattr(ms_expand, "_kernel", {})
    executor, note = ms_expand.choose_executor()
    assert executor == "ops" and "the built kernel did not run here" in note and "is 3" in note
    src = {"t.src0": np.arange(6, dtype=np.float32).reshape(2, 3)}     # MindSpore's ops still run after it
    recipe = TensorRecipe("t", ("t.src0",), None, 1, np.array([1, 2, 4], np.float32), (np.array([1, 0]), None))
    got = ms_expand.expand({k: ms_io.to_tensor(v) for k, v in src.items()}, [recipe])["t"]
    assert np.array_equal(ms_io.to_numpy(got), execute_recipes_numpy([recipe], src)["t"])
