"""The growth plan: every random choice of an expansion, made once, with numpy.

A plan is built from (source config, target config, method, sampling, seed) and
holds the maps of growth.md: one hidden map g_h, per source layer a head map
g_H[l] and an FFN map g_F[l], and the depth map. Both frameworks' expanders
consume the same plan (usually through `harness.core.recipe.compile_recipes`) and
draw no random numbers themselves.

Draw order (fixed; changing it changes every plan of a seed):
    rng = numpy.random.default_rng(seed)
    1. hidden map g_h (d -> D)
    2. for each source layer l = 0 .. L-1 in order:
         head map g_H[l] (H -> H'), then FFN map g_F[l] (F -> F')
A map n -> N with N == n is the identity and draws nothing. The draws do not
depend on `method`, so an FPI and an AKI plan of the same seed share their maps.

The lossless method (harness.core.lossless, docs/lossless.md) also draws the input weights
of new units and what reads new stream coordinates: too many numbers for the plan's
JSON, so each block is drawn from its own generator, default_rng(fill_seed(layer,
tensor, axis)), a function of the plan's seed alone (a tensor's values do not depend on
the order tensors are made in). Its depth map is harness.core.lossless.depth_order, and
its target's LayerNorm epsilon is scaled for the wider stream (lossless.target_eps).

Sampling of the drawn part g(n) .. g(N-1):
    paper     uniform with replacement: rng.integers(0, n, size=N - n)
    balanced  without replacement: rng.permutation(n), then a fresh
              rng.permutation(n), ... concatenated and cut to N - n, so counts
              differ by at most 1 (every count is N / n when n divides N).
"""
from __future__ import annotations

import dataclasses
import json
import zlib

import numpy as np

from harness.core import lossless
from harness.core.config import ModelConfig
from harness.core.errors import BadInput
from harness.core.vocab import METHODS, SAMPLINGS

PLAN_FORMAT = "bert2bert-plan/1"

_GROWING = ("hidden", "layers", "heads", "ffn")
_FILL_STREAM = 0x1055   # tells the lossless fill generators apart from any other use of the seed
_EQUAL = ("vocab", "positions", "type_vocab", "eps", "act", "head")


# -- maps -----------------------------------------------------------------------
def counts(g: np.ndarray, n: int) -> np.ndarray:
    """c[j] = number of i with g(i) = j, for j in [0, n)."""
    return np.bincount(np.asarray(g, dtype=np.int64), minlength=n)


def draw_map(rng: np.random.Generator, n: int, N: int, sampling: str) -> np.ndarray:
    """A map n -> N: g(i) = i for i < n, g(i) drawn from [0, n) for i >= n (int64, length N)."""
    extra = N - n
    head = np.arange(n, dtype=np.int64)
    if extra <= 0:
        return head
    if sampling == "paper":
        drawn = rng.integers(0, n, size=extra, dtype=np.int64)
    elif sampling == "balanced":
        cycles = -(-extra // n)
        drawn = np.concatenate([rng.permutation(n) for _ in range(cycles)])[:extra]
    else:  # validated before; kept as a guard
        raise BadInput(f"unknown sampling {sampling!r}", f"use one of: {', '.join(SAMPLINGS)}")
    return np.concatenate([head, drawn.astype(np.int64)])


def depth_map(L: int, L_new: int, method: str = "fpi") -> np.ndarray:
    """Target layer t -> source layer (paper Algorithm 1): k = L'//L, r = L'%L;
    t < kL -> t mod L; the last r target layers take source layers L-r .. L-1.
    The lossless method keeps each layer's copies together: harness.core.lossless.depth_order."""
    if method == lossless.METHOD:
        return lossless.depth_order(L, L_new)
    k, r = divmod(L_new, L)
    first = np.arange(k * L, dtype=np.int64) % L
    last = np.arange(L - r, L, dtype=np.int64)
    return np.concatenate([first, last])


# -- validation -----------------------------------------------------------------
def _label(cfg: ModelConfig, role: str) -> str:
    return f"{role} {cfg.name}" if cfg.name else role


def validate(src: ModelConfig, dst: ModelConfig, method: str, sampling: str, seed: int = 0) -> None:
    """Raise BadInput naming both values and the fix, before any work is done."""
    s, t = _label(src, "source"), _label(dst, "target")
    if method not in METHODS:
        raise BadInput(f"unknown growth method {method!r}", f"use one of: {', '.join(METHODS)}")
    if sampling not in SAMPLINGS:
        raise BadInput(f"unknown sampling {sampling!r}", f"use one of: {', '.join(SAMPLINGS)}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise BadInput(f"seed must be a non-negative integer, got {seed!r}", "pass e.g. seed=0")
    if src.family != dst.family:
        raise BadInput(f"cannot grow {s} ({src.family}) into {t} ({dst.family}): families differ",
                       "grow within one family: bert -> bert or gpt2 -> gpt2")
    problems, fixes = [], []
    for key in _GROWING:
        a, b = getattr(src, key), getattr(dst, key)
        if b < a:
            problems.append(f"{key} {a} -> {b} shrinks")
            fixes.append(f"choose a target with {key} >= {a}")
    if src.head_size != dst.head_size:
        problems.append(f"head size {src.head_size} (hidden {src.hidden} / heads {src.heads}) -> "
                        f"{dst.head_size} (hidden {dst.hidden} / heads {dst.heads}) differs")
        fixes.append(f"keep head size {src.head_size}: target heads = target hidden / {src.head_size}")
    for key in _EQUAL:
        a, b = getattr(src, key), getattr(dst, key)
        if key == "eps" and method == lossless.METHOD and b == lossless.target_eps(src, dst):
            continue   # a lossless target as built (epsilon scaled): validated again from its JSON
        if a != b:
            problems.append(f"{key} {a!r} -> {b!r} differs")
            fixes.append(f"use the same {key} in both configs")
    if method == lossless.METHOD and not problems:
        for problem, fix in lossless.problems(src, dst, sampling):
            problems.append(problem)
            fixes.append(fix)
    if problems:
        raise BadInput(f"cannot grow {s} into {t}: " + "; ".join(problems), "; ".join(fixes))


# -- the plan ---------------------------------------------------------------------
@dataclasses.dataclass(eq=False)
class GrowthPlan:
    src: ModelConfig
    dst: ModelConfig
    method: str
    sampling: str
    seed: int
    hidden_map: np.ndarray               # g_h, int64, length D
    head_maps: list[np.ndarray]          # g_H[l], per source layer, length H'
    ffn_maps: list[np.ndarray]           # g_F[l], per source layer, length F'
    depth_map: np.ndarray                # target layer t -> source layer, length L'

    counts = staticmethod(counts)

    def hidden_counts(self) -> np.ndarray:
        return counts(self.hidden_map, self.src.hidden)

    def head_counts(self, layer: int) -> np.ndarray:
        return counts(self.head_maps[layer], self.src.heads)

    def ffn_counts(self, layer: int) -> np.ndarray:
        return counts(self.ffn_maps[layer], self.src.ffn)

    def fill_seed(self, layer: int | None, tensor: str, axis: int) -> tuple[int, ...]:
        """Entropy of the generator of one block of lossless free values: the new entries along `axis`
        of `tensor` (a layer-relative name in source layer `layer`, or a global name with None)."""
        return (int(self.seed), _FILL_STREAM, 0 if layer is None else layer + 1, zlib.crc32(tensor.encode()), axis)

    def to_dict(self) -> dict:
        return {
            "format": PLAN_FORMAT,
            "src": dataclasses.asdict(self.src),
            "dst": dataclasses.asdict(self.dst),
            "method": self.method,
            "sampling": self.sampling,
            "seed": int(self.seed),
            "hidden_map": [int(v) for v in self.hidden_map],
            "head_maps": [[int(v) for v in g] for g in self.head_maps],
            "ffn_maps": [[int(v) for v in g] for g in self.ffn_maps],
            "depth_map": [int(v) for v in self.depth_map],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict, source: str = "plan") -> GrowthPlan:
        if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise BadInput(f"{source}: not a growth plan (format {got!r})",
                           f"use a plan written by GrowthPlan.to_json ({PLAN_FORMAT})")
        try:
            src = ModelConfig(**data["src"])
            dst = ModelConfig(**data["dst"])
            plan = cls(src=src, dst=dst, method=data["method"], sampling=data["sampling"],
                       seed=data["seed"],
                       hidden_map=np.asarray(data["hidden_map"], dtype=np.int64),
                       head_maps=[np.asarray(g, dtype=np.int64) for g in data["head_maps"]],
                       ffn_maps=[np.asarray(g, dtype=np.int64) for g in data["ffn_maps"]],
                       depth_map=np.asarray(data["depth_map"], dtype=np.int64))
        except (KeyError, TypeError, ValueError) as e:
            raise BadInput(f"{source}: malformed growth plan ({type(e).__name__}: {e})",
                           "write the plan with GrowthPlan.to_json") from None
        plan.check()
        return plan

    @classmethod
    def from_json(cls, text: str, source: str = "plan") -> GrowthPlan:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise BadInput(f"{source}: not valid JSON: {e}", "write the plan with GrowthPlan.to_json") from None
        return cls.from_dict(data, source)

    def check(self) -> None:
        """Re-validate configs and the structure of every map (BadInput on failure)."""
        validate(self.src, self.dst, self.method, self.sampling, self.seed)
        src, dst = self.src, self.dst

        def check_map(g: np.ndarray, n: int, N: int, what: str) -> None:
            if g.ndim != 1 or len(g) != N:
                raise BadInput(f"plan: {what} has length {len(g)}, expected {N}", "rebuild the plan")
            if N and (g.min() < 0 or g.max() >= n):
                raise BadInput(f"plan: {what} has values outside [0, {n})", "rebuild the plan")
            if not np.array_equal(g[:n], np.arange(n)):
                raise BadInput(f"plan: {what} is not the identity on its first {n} entries",
                               "rebuild the plan")
            if self.sampling == "balanced":
                c = counts(g, n)
                if c.max() - c.min() > 1:
                    raise BadInput(f"plan: {what} is not balanced (counts {c.min()} .. {c.max()})",
                                   "rebuild the plan")

        check_map(self.hidden_map, src.hidden, dst.hidden, "hidden map")
        if len(self.head_maps) != src.layers or len(self.ffn_maps) != src.layers:
            raise BadInput(f"plan: {len(self.head_maps)} head maps and {len(self.ffn_maps)} FFN maps "
                           f"for {src.layers} source layers", "rebuild the plan")
        for layer in range(src.layers):
            check_map(self.head_maps[layer], src.heads, dst.heads, f"head map of layer {layer}")
            check_map(self.ffn_maps[layer], src.ffn, dst.ffn, f"FFN map of layer {layer}")
        expected = depth_map(src.layers, dst.layers, self.method)
        if not np.array_equal(self.depth_map, expected):
            raise BadInput(f"plan: depth map {self.depth_map.tolist()} is not "
                           f"{expected.tolist()} for {src.layers} -> {dst.layers} layers",
                           "rebuild the plan")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GrowthPlan):
            return NotImplemented
        return self.to_dict() == other.to_dict()


def build_plan(src: ModelConfig, dst: ModelConfig, method: str = "fpi", sampling: str = "paper",
               seed: int = 0) -> GrowthPlan:
    """All randomness of an expansion, drawn in the documented order from default_rng(seed)."""
    validate(src, dst, method, sampling, seed)
    if method == lossless.METHOD:
        dst = lossless.target_config(src, dst)
    rng = np.random.default_rng(int(seed))
    hidden_map = draw_map(rng, src.hidden, dst.hidden, sampling)
    head_maps, ffn_maps = [], []
    for _ in range(src.layers):
        head_maps.append(draw_map(rng, src.heads, dst.heads, sampling))
        ffn_maps.append(draw_map(rng, src.ffn, dst.ffn, sampling))
    return GrowthPlan(src=src, dst=dst, method=method, sampling=sampling, seed=int(seed),
                      hidden_map=hidden_map, head_maps=head_maps, ffn_maps=ffn_maps,
                      depth_map=depth_map(src.layers, dst.layers, method))
