"""Streamed growth: a model larger than memory grown one target tensor at a time, and two grown files
compared tensor by tensor. `python -m harness expand` runs this (both frameworks); make bench-scale
measures it (tools/bench_scale.py).

    source = Source.open(src_ckpt, src_cfg, seed, scratch=out_dir)   # a file, or drawn into a scratch folder
    result = grow("pt", recipes, source, dst_cfg, out_dir)          # model.safetensors / model.ckpt
    parity = compare_files(pt_file, ms_file)                         # max ULP per tensor, sha256 of each

grow() opens the framework's weights writer with the whole layout (param_shapes of the target: a
safetensors header is written first), then for each recipe in target order: the source tensors it
names are read (harness.core.formats.tensor_source: pread into fresh memory, kept only while the next
layer needs them again; a reader thread reads the next tensor's sources ahead), the target tensor is
made by the framework's expander (expand_one; a depth copy is made again from its sources, the same
bits), handed to a writer thread and released once written. The writer thread writes tensor i while
the expander makes tensor i + 1 and the reader reads tensor i + 2's sources (os.preadv / os.write
release the GIL), so a run takes about the longest of the three, not their sum. Peak memory: the source tensors
of about one layer, and two target tensors (the one being written, the one being made).

The bytes are those the in-memory path (pipeline.expand + pipeline.save) writes: the same tensors in
the same order through the same writers (tests/test_stream.py holds them equal).

A source drawn from the seed (no checkpoint) is drawn tensor by tensor into a safetensors file in a
scratch folder of its own inside the output folder (the same bits as harness.core.seeded_init.init_state),
read as any source, and removed with its folder by close(), on an error too. The folder is a temporary
of harness.core.formats.atomic (a new private folder of a unique name, as tempfile.mkdtemp makes, and
registered: an interrupt removes it through discard_live, and one left by a killed run, its pid gone,
is removed by the next run there); never a file of the output set.

Inside an OutputSet (the CLI), the files written are staged until the set is put in place: sizes
and the streamed parity read them where they are now (harness.core.formats.atomic.staged) and name
them by their final names.
"""
from __future__ import annotations

import dataclasses
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from harness.core.config import ModelConfig
from harness.core.errors import BadInput
from harness.core.families import IGNORED_BUFFERS, layer_prefix, param_shapes
from harness.core.formats.atomic import discard, staged, temp_beside
from harness.core.formats.checkpoint import CONFIG_NAME, load_checkpoint, resolve, write_json
from harness.core.formats.tensor_source import Entry, SequentialReader, SourceWindow, TensorFile, streamable
from harness.core.formats.writers import SafetensorsStream
from harness.core.seeded_init import iter_init
from harness.suite import frameworks
from harness.suite.metrics import max_abs, ulp_distance

DISK_MARGIN = 1 << 30   # bytes left free on the output's disk beyond what a run writes


# -- memory, from the OS ------------------------------------------------------------------
def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def peak_rss() -> int:
    """This process's peak resident set size since it started or since reset_peak_rss(), bytes
    (/proc/self/status VmHWM)."""
    return _status_kib("VmHWM") * 1024


def current_rss() -> int:
    return _status_kib("VmRSS") * 1024


def reset_peak_rss() -> bool:
    """Set VmHWM to the current RSS (Linux: /proc/self/clear_refs "5"), so a peak can be taken per
    stage of one process; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# -- the source -----------------------------------------------------------------------------
def _check_entries(found: Mapping[str, Entry], cfg: ModelConfig, source: str) -> None:
    """Names, shapes and dtypes of a source against cfg's tensor table, from the header alone
    (harness.core.formats.checkpoint.check_state's checks and words; finiteness is checked per
    tensor as it is read)."""
    expected = param_shapes(cfg)
    names = [k for k in found if k not in IGNORED_BUFFERS]
    missing = [k for k in expected if k not in found]
    if missing:
        raise BadInput(f"{source}: missing tensor {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1
                                                                  else ""),
                       f"the checkpoint does not match the {cfg.family} config "
                       f"(hidden {cfg.hidden}, layers {cfg.layers}); use the matching config or checkpoint")
    extra = [k for k in names if k not in expected]
    if extra:
        raise BadInput(f"{source}: unexpected tensor {extra[0]}" + (f" (and {len(extra) - 1} more)" if len(extra) > 1
                                                                    else ""),
                       f"the checkpoint holds tensors a {cfg.family} model of this config does not have")
    for name, shape in expected.items():
        entry = found[name]
        if tuple(entry.shape) != tuple(shape):
            raise BadInput(f"{source}: tensor {name} has shape {tuple(entry.shape)}, expected {tuple(shape)}",
                           "the checkpoint and config.json disagree; use the matching pair")
        if entry.dtype != np.float32:
            raise BadInput(f"{source}: tensor {name} has dtype {entry.dtype}, expected float32",
                           "convert the checkpoint to float32")


class _Checked(Mapping):
    """A source mapping whose tensors are checked finite as they are read (unless allowed)."""

    def __init__(self, inner: Mapping, where: str, allow_nonfinite: bool):
        self.inner, self.where, self.allow_nonfinite = inner, where, allow_nonfinite
        self.checked: set[str] = set()

    def __getitem__(self, name: str) -> np.ndarray:
        return self._check(name, self.inner[name])

    def _check(self, name: str, array: np.ndarray) -> np.ndarray:
        """Once per tensor (a tensor read again is the same bytes), in blocks (no whole-size mask)."""
        if self.allow_nonfinite or name in self.checked:
            return array
        flat = array.reshape(-1)
        for start in range(0, flat.size, 1 << 22):
            if not np.isfinite(flat[start:start + (1 << 22)]).all():
                raise BadInput(f"{self.where}: tensor {name} holds NaN or Inf values",
                               "fix the checkpoint, or pass --allow-nonfinite to proceed anyway")
        self.checked.add(name)
        return array

    def __iter__(self):
        return iter(self.inner)

    def __len__(self) -> int:
        return len(self.inner)

    def prefetch(self, name: str) -> None:
        if hasattr(self.inner, "prefetch"):
            self.inner.prefetch(name)

    @property
    def entries(self):
        return self.inner.entries

    def read(self, name: str, out: np.ndarray | None = None) -> np.ndarray:
        return self._check(name, self.inner.read(name, out))


@dataclasses.dataclass
class Source:
    """The source of a streamed growth: tensors by name, read on demand (module doc)."""
    cfg: ModelConfig
    tensors: Mapping                 # name -> numpy array, read when asked for
    path: Path | None                # the file read (the scratch file of a drawn source)
    drawn: bool = False              # drawn from the seed into `path`
    seconds: float = 0.0             # opening (and drawing) it
    scratch: Path | None = None      # a drawn source's own folder (holding `path`), which close() removes
    _file: TensorFile | None = None

    @classmethod
    def open(cls, src_ckpt: Path | None, cfg: ModelConfig, seed: int, scratch: Path,
             allow_nonfinite: bool = False) -> Source:
        """A checkpoint (streamed where it is .safetensors / .ckpt; a PyTorch zip file is read whole),
        or, without one, cfg drawn from `seed` into a safetensors file in a scratch folder of its own
        inside folder `scratch` (module doc), removed by close() or, if opening fails, at once."""
        start = time.perf_counter()
        if src_ckpt is None:
            folder = temp_beside(Path(scratch) / "drawn-source", folder=True)   # .drawn-source.PID.RANDOM.partial
            try:
                path = draw_source(cfg, seed, folder / "source.safetensors")
                source = cls._of_file(path, cfg, allow_nonfinite=True, drawn=True)   # drawn: finite by construction
                source.scratch = folder
            except BaseException:
                discard(folder)
                raise
        else:
            weights, _ = resolve(src_ckpt)
            if streamable(weights):
                source = cls._of_file(weights, cfg, allow_nonfinite)
            else:   # torch's zip format: its pickle is read whole (harness.core.formats.torch_zip)
                _, arrays = load_checkpoint(src_ckpt, cfg, allow_nonfinite)
                source = cls(cfg, arrays, weights)
        source.seconds = time.perf_counter() - start
        return source

    @classmethod
    def _of_file(cls, path: Path, cfg: ModelConfig, allow_nonfinite: bool, drawn: bool = False) -> Source:
        file = TensorFile(path)
        try:
            _check_entries(file.entries, cfg, str(path))
        except BaseException:
            file.close()
            raise
        return cls(cfg, _Checked(file, str(path), allow_nonfinite), path, drawn, _file=file)

    def with_mlm_head(self, head_cfg: ModelConfig, seed: int) -> Source:
        """This BERT source (without the masked-LM head) read as head_cfg's BertForMaskedLM: the head's
        tensors drawn from the seed (harness.core.lm_head, as the in-memory path), the rest from the file,
        the pooler left out. The returned source owns the file and scratch folder: close it, not this."""
        return dataclasses.replace(self, cfg=head_cfg, tensors=_WithHead(self.tensors, head_cfg, seed))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.scratch is not None:
            discard(self.scratch)   # the folder and all in it (harness.core.formats.atomic.discard: rmtree)
            self.scratch = None


class _WithHead(Mapping):
    """A source's tensors with the seeded masked-LM head over them, in head_cfg's table order."""

    def __init__(self, inner: Mapping, head_cfg: ModelConfig, seed: int):
        from harness.core.lm_head import seeded_mlm_head
        self.inner, self.head = inner, seeded_mlm_head(head_cfg, seed)
        self.names = list(param_shapes(head_cfg))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.head[name] if name in self.head else self.inner[name]

    def __iter__(self):
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def prefetch(self, name: str) -> None:
        if name not in self.head and hasattr(self.inner, "prefetch"):
            self.inner.prefetch(name)


def draw_source(cfg: ModelConfig, seed: int, path: Path) -> Path:
    """init_state(cfg, seed) written as safetensors tensor by tensor (one in memory at a time)."""
    layout = [(name, shape, np.float32) for name, shape in param_shapes(cfg).items()]
    with SafetensorsStream(path, layout, {"format": "pt"}) as writer:
        for name, array in iter_init(cfg, seed):
            writer.write(name, array)
            del array
    return path


def check_disk(folder: Path, nbytes: int, what: str) -> None:
    """BadInput unless `folder`'s file system has nbytes + DISK_MARGIN free (a run that would fill a
    shared disk is refused before it writes anything)."""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    st = os.statvfs(probe)
    free = st.f_bavail * st.f_frsize
    if free < nbytes + DISK_MARGIN:
        raise BadInput(f"{folder}: {what} needs {nbytes / 1e9:.1f} GB (+{DISK_MARGIN / 1e9:.1f} GB margin), "
                       f"{free / 1e9:.1f} GB are free there",
                       "free some disk or choose an output folder on a larger disk")


# -- the writer thread ------------------------------------------------------------------------
class _WriterThread:
    """writer.write(name, array) on a thread of its own, one tensor queued at most; the array's owner
    (a framework tensor whose memory it views) is held until it is written."""

    def __init__(self, writer):
        self.writer = writer
        self.queue: queue.Queue = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.stopping = False
        self.busy = 0.0          # seconds spent writing
        self.waited = 0.0        # seconds the producer waited for room in the queue
        self.thread = threading.Thread(target=self._run, name="weights-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is None and not self.stopping:
                start = time.perf_counter()
                try:
                    self.writer.write(item[0], item[1])
                except BaseException as e:   # handed to the producer at its next put / finish
                    self.error = e
                self.busy += time.perf_counter() - start
            del item

    def put(self, name: str, array: np.ndarray, owner) -> None:
        if self.error is not None:
            raise self.error
        start = time.perf_counter()
        self.queue.put((name, array, owner))
        self.waited += time.perf_counter() - start

    def finish(self) -> None:
        """Wait for every queued tensor to be written; raise the writer's error, if any."""
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """After an error in the producer: write nothing more, and wait for the thread to end."""
        self.stopping = True
        while self.thread.is_alive():
            try:
                self.queue.put(None, timeout=0.1)
                break
            except queue.Full:
                continue
        self.thread.join()


# -- growth --------------------------------------------------------------------------------
@dataclasses.dataclass
class StreamResult:
    framework: str
    weights_path: Path
    weights_bytes: int
    seconds: dict[str, float]      # load (open the source), read (waiting for it), expand, save (writer busy),
    #                                wait (for the writer), total (wall)
    executor: str = ""
    executor_note: str = ""
    source_reads: int = 0          # source tensors read (a tensor needed again later is read again)
    peak_rss: int = 0              # this process's VmHWM at the end (bytes; see reset_peak_rss)


def _window(recipes: list, family: str) -> int:
    """Steps between two uses of one source tensor in a run (AKI: layer l + 1 is read by layer l's
    recipes and again by layer l + 1's): the recipes of one target layer."""
    first = layer_prefix(family, 0)
    return max(1, sum(1 for r in recipes if r.name.startswith(first)))


def grow(framework: str, recipes: list, source: Source, dst_cfg: ModelConfig, out_dir: Path,
         executor: str | None = None, on_tensor: Callable[[str], None] | None = None) -> StreamResult:
    """Grow source by the recipes with one framework, writing its weights file (then config.json) into
    out_dir tensor by tensor (module doc)."""
    fw = frameworks.load(framework)
    executor, note = fw.expand.choose_executor(executor)   # the MindSpore kernel is built before the clock
    out_dir = Path(out_dir)
    path = out_dir / fw.io.WEIGHTS_NAME
    shapes = param_shapes(dst_cfg)
    if [r.name for r in recipes] != list(shapes):
        raise AssertionError("recipes are not in the target's tensor-table order")
    layout = [(name, shape, np.dtype(np.float32)) for name, shape in shapes.items()]
    window = SourceWindow(source.tensors, [r.sources for r in recipes], _window(recipes, dst_cfg.family))
    seconds = {"load": source.seconds, "read": 0.0, "expand": 0.0}
    start = time.perf_counter()
    writer = fw.io.weights_writer(path, layout)
    background = _WriterThread(writer)
    try:
        for i, recipe in enumerate(recipes):
            t0 = time.perf_counter()
            arrays = window.arrays(i)
            t1 = time.perf_counter()
            src = {name: fw.io.to_tensor(a) for name, a in arrays.items()}
            tensor = fw.expand.expand_one(src, recipe, executor)
            array = fw.io.to_numpy(tensor)          # MindSpore: waits for the kernel (a zero-copy view)
            seconds["read"] += t1 - t0
            seconds["expand"] += time.perf_counter() - t1
            background.put(recipe.name, array, tensor)
            del src, tensor, array, arrays
            window.done(i)
            if on_tensor is not None:
                on_tensor(recipe.name)
        background.finish()
        writer.close()
    except BaseException:
        background.stop()
        writer.abort()
        raise
    finally:
        window.close()
    write_json(out_dir / CONFIG_NAME, dst_cfg.to_hf())
    seconds["save"] = background.busy
    seconds["wait"] = background.waited   # the expander waiting for the writer: the disk was the long pole
    seconds["total"] = time.perf_counter() - start
    return StreamResult(framework, path, staged(path).stat().st_size, seconds, executor, note, window.reads,
                        peak_rss())


# -- streamed parity ------------------------------------------------------------------------------
@dataclasses.dataclass
class TensorDiff:
    name: str
    max_ulp: int
    max_abs: float


@dataclasses.dataclass
class FileParity:
    """Two weights files compared tensor by tensor, joined by name."""
    got: Path
    ref: Path
    got_sha256: str
    ref_sha256: str
    compared: int
    max_ulp: int
    max_abs: float
    worst: str                           # the tensor of the largest ULP distance ("none")
    differing: list[TensorDiff]          # tensors not bit-identical
    problems: list[str]                  # names missing on one side, shapes or dtypes that differ
    seconds: float

    @property
    def identical(self) -> bool:
        return not self.problems and not self.differing

    def summary(self) -> str:
        head = (f"{self.compared} tensors compared, max ULP {self.max_ulp}, max abs {self.max_abs:.3g}, "
                f"{len(self.differing)} differ")
        if self.differing:
            head += f" (worst {self.worst})"
        if self.problems:
            head += f"; {len(self.problems)} problems: " + "; ".join(self.problems[:3])
        return head


def _piece_pairs(a, b):
    """Pairs of equal-length views from two piece iterators of one tensor's bytes (their pieces need
    not line up: a .ckpt splits a tensor over 512 MiB into slices)."""
    left = right = memoryview(b"")
    a, b = iter(a), iter(b)
    while True:
        if not left:
            left = next(a, None)
        if not right:
            right = next(b, None)
        if left is None or right is None:
            if (left is None) != (right is None):
                raise AssertionError("tensor byte counts differ after the shape check")
            return
        n = min(len(left), len(right))
        yield left[:n], right[:n]
        left, right = left[n:], right[n:]


def compare_files(got: Path, ref: Path, piece: int | None = None) -> FileParity:
    """Every tensor of `got` (MindSpore's .ckpt, say) against the same-named tensor of `ref`
    (PyTorch's safetensors), each file read once front to back in pieces (no model is ever whole in
    memory) and hashed as it is read. Both writers write the target's table order; files whose
    tensor orders differ are compared by name instead, one tensor at a time, and hashed apart.
    Inside an OutputSet a file not yet in place is read where it is staged; the result names it by
    `got` / `ref`, its final name."""
    start = time.perf_counter()
    names = {"got": Path(got), "ref": Path(ref)}
    got, ref = staged(got), staged(ref)
    kw = {} if piece is None else {"piece": piece}
    with SequentialReader(got, **kw) as a, SequentialReader(ref, **kw) as b:
        problems = []
        only_a = [n for n in a.entries if n not in b.entries]
        only_b = [n for n in b.entries if n not in a.entries]
        if only_a:
            problems.append(f"{len(only_a)} tensors only in {names['got'].name}: {', '.join(only_a[:3])}")
        if only_b:
            problems.append(f"{len(only_b)} tensors only in {names['ref'].name}: {', '.join(only_b[:3])}")
        diffs: list[TensorDiff] = []
        compared = 0
        shared = [n for n in a.entries if n in b.entries]
        order_a = [n for n in sorted(a.entries, key=lambda n: a.entries[n].spans[0][0]) if n in b.entries]
        order_b = [n for n in sorted(b.entries, key=lambda n: b.entries[n].spans[0][0]) if n in a.entries]
        if order_a == order_b:
            it_a, it_b = a.tensors(), b.tensors()
            pending_b = {}
            for name, ea, pieces_a in it_a:
                if name not in b.entries:
                    for _ in pieces_a:
                        pass
                    continue
                while name not in pending_b:
                    nb, eb, pieces_b = next(it_b)
                    if nb in a.entries:
                        pending_b[nb] = (eb, pieces_b)
                    else:
                        for _ in pieces_b:
                            pass
                eb, pieces_b = pending_b.pop(name)
                compared += _compare_tensor(name, ea, eb, pieces_a, pieces_b, diffs, problems)
            for _ in it_a:
                pass
            for _, _, pieces_b in it_b:
                for _ in pieces_b:
                    pass
            sha_a, sha_b = a.hexdigest(), b.hexdigest()
        else:   # another order: by name, then each file hashed on its own
            with TensorFile(got) as fa, TensorFile(ref) as fb:
                for name in shared:
                    ea, eb = fa.entries[name], fb.entries[name]
                    va = [memoryview(fa[name].reshape(-1).view(np.uint8))] if ea.nbytes else []
                    vb = [memoryview(fb[name].reshape(-1).view(np.uint8))] if eb.nbytes else []
                    compared += _compare_tensor(name, ea, eb, iter(va), iter(vb), diffs, problems)
            from harness.core.formats.checkpoint import sha256
            sha_a, sha_b = sha256(got), sha256(ref)
    worst = max(diffs, key=lambda d: (d.max_ulp, d.max_abs), default=None)
    return FileParity(names["got"], names["ref"], sha_a, sha_b, compared,
                      worst.max_ulp if worst else 0, max((d.max_abs for d in diffs), default=0.0),
                      worst.name if worst else "none", diffs, problems, time.perf_counter() - start)


def _compare_tensor(name: str, ea: Entry, eb: Entry, pieces_a, pieces_b, diffs: list, problems: list) -> int:
    """Compare one tensor's pieces; 1 if compared, 0 if its shape or dtype differ (a problem)."""
    if ea.shape != eb.shape or ea.dtype != eb.dtype:
        problems.append(f"{name}: {ea.dtype}{ea.shape} vs {eb.dtype}{eb.shape}")
        for _ in pieces_a:
            pass
        for _ in pieces_b:
            pass
        return 0
    worst_ulp, worst_abs = 0, 0.0
    for va, vb in _piece_pairs(pieces_a, pieces_b):
        x = np.frombuffer(va, dtype=ea.dtype)
        y = np.frombuffer(vb, dtype=eb.dtype)
        bits = f"u{ea.dtype.itemsize}" if ea.dtype.itemsize in (1, 2, 4, 8) else "u1"
        if np.array_equal(x.view(bits), y.view(bits)):   # bit-identical: the expected, fast path
            continue
        if ea.dtype == np.float32:
            worst_ulp = max(worst_ulp, max(1, int(ulp_distance(x, y).max())))   # -0 vs +0: a difference too
        else:
            worst_ulp = max(worst_ulp, 1)
        worst_abs = max(worst_abs, max_abs(x, y))
    if worst_ulp:
        diffs.append(TensorDiff(name, worst_ulp, worst_abs))
    return 1

