"""The study's order of work, per family (harness.study.config.StudyConfig):

1. scratch at the target size for every learning rate of the sweep (first seed); the tuned scratch
   is the lr with the lowest final validation loss; it then runs the other seeds;
2. the sources the study pre-trains (seed 0 of their own batches, `source_lr`), their cost counted;
3. every grown arm, every seed, at the tuned scratch lr (the grown arms are not tuned: any bias is
   in scratch's favour), from the same source weights, the plan seeded by the arm's seed;
4. BERT: the arm grown from the real MiniLM and its own scratch baseline (MiniLM's vocabulary);
5. MindSpore (ms.jit) for the first `ms_steps` steps of the scratch and FPI arms (first seed), and the
   same steps in PyTorch float64: the judge of which float32 side drifted (harness.study.parity).

Batches: numpy, drawn from the run's seed (harness.core.batches), the same for every arm of a seed;
validation: `eval_batches` fixed batches of the held-out novel (and fixed MLM masks).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.core.batches import draw_batches
from harness.core.optim import TrainSetup
from harness.kinds.train.runner import TrainHooks
from harness.study import arms
from harness.study.config import GROWN_ARMS, StudyConfig
from harness.study.runs import RunResult, RunSpec, train
from harness.suite.corpus import study_ids

VALIDATION_SEED = 20_260_416   # the fixed validation batches (and masks)
SOURCE_SEED = 1_000            # the sources' batches: other windows than any target run's


@dataclasses.dataclass
class FamilyResult:
    family: str
    runs: list[RunResult] = dataclasses.field(default_factory=list)
    tuned_lr: float | None = None
    configs: dict = dataclasses.field(default_factory=dict)   # role -> ModelConfig (target, source, ...)
    run_configs: dict = dataclasses.field(default_factory=dict)   # run key -> the ModelConfig it trained
    missing: list[str] = dataclasses.field(default_factory=list)  # runs of the profile not run (--cached-only)
    notes: list[str] = dataclasses.field(default_factory=list)

    def select(self, arm: str, framework: str = "pt", lr: float | None = None) -> list[RunResult]:
        return [r for r in self.runs if r.arm == arm and r.framework == framework and (lr is None or r.lr == lr)]


class Reporter:
    """What the study tells its caller (the command shows it with rich)."""

    def planned(self, total: int) -> None: ...
    def start(self, spec: RunSpec) -> Callable[[int, float], None] | None: ...
    def done(self, spec: RunSpec, result: RunResult) -> None: ...
    def note(self, text: str) -> None: ...


def planned_runs(cfg: StudyConfig) -> int:
    """The runs the profile asks for (the progress bar's total; a cached run counts as one)."""
    per = len(cfg.lrs) + len(cfg.seeds) - 1
    grown = [a for a in cfg.arms if a in GROWN_ARMS]
    per += 2 + len(grown) * len(cfg.seeds) + 2 * len([a for a in cfg.ms_arms if a == "scratch" or a in cfg.arms])
    total = per * len(cfg.families)
    if "bert" in cfg.families and "minilm" in cfg.arms and cfg.models["bert"].minilm_target is not None:
        total += 2 * len(cfg.seeds)
    return total


class _Family:
    def __init__(self, cfg: StudyConfig, family: str, folder: Path, reporter: Reporter, fresh: bool,
                 hooks: TrainHooks | None, ms_mode: str = "jit", cached_only: bool = False):
        self.cfg, self.family, self.folder, self.reporter, self.fresh = cfg, family, folder, reporter, fresh
        self.hooks, self.ms_mode, self.cached_only = hooks, ms_mode, cached_only
        self.models = cfg.models[family]
        self.out = FamilyResult(family)

    def setup(self, lr: float, steps: int) -> TrainSetup:
        return TrainSetup(steps=steps, lr=lr, warmup=min(self.cfg.warmup, steps),
                          weight_decay=self.cfg.weight_decay, clip=self.cfg.clip)

    def batches(self, tokenizer: str, split: str, seed: int, steps: int, vocab: int):
        return draw_batches(study_ids(split, tokenizer), self.family, steps=steps, batch=self.cfg.batch,
                            length=self.cfg.length, seed=seed, vocab=vocab)

    def run(self, arm, seed, cfg_model, lr, state, *, origin="seed", framework="pt", steps=None, data_seed=None,
            tokenizer="austen", keep=False, stop=None) -> RunResult | None:
        steps = steps or self.cfg.steps
        setup = self.setup(lr, steps)
        if self.hooks is not None and self.hooks.setup is not None:   # a planted fault (tests)
            setup = self.hooks.setup(framework, setup) or setup
        spec = RunSpec(family=self.family, arm=arm, seed=seed, framework=framework, cfg=cfg_model,
                       setup=setup, batch=self.cfg.batch, length=self.cfg.length,
                       eval_every=self.cfg.eval_every, eval_batches=self.cfg.eval_batches, tokenizer=tokenizer,
                       origin=origin, stop=stop, keep_weights=keep,
                       ms_mode=self.ms_mode if framework == "ms" else "jit")
        data = self.batches(tokenizer, "train", seed if data_seed is None else data_seed, steps, cfg_model.vocab)
        validation = self.batches(tokenizer, "validation", VALIDATION_SEED, self.cfg.eval_batches, cfg_model.vocab)
        if self.cached_only and not (self.folder / f"{spec.key}.json").is_file():
            self.out.missing.append(f"{arm} seed {seed} ({framework}, lr {lr:g})")
            return None
        on_step = self.reporter.start(spec)
        result = train(spec, state, data, validation, self.folder, fresh=self.fresh, on_step=on_step,
                       cached_only=self.cached_only)
        if result is None:   # cached_only, and the cache file went missing meanwhile
            return None
        self.reporter.done(spec, result)
        self.out.runs.append(result)
        self.out.run_configs[result.key] = cfg_model
        return result

    def scratch(self) -> bool:
        target, first = self.models.target, self.cfg.seeds[0]
        sweep = [self.run("scratch", first, target, lr, lambda: arms.scratch_state(target, first))
                 for lr in self.cfg.lrs]
        sweep = [r for r in sweep if r is not None]
        if not sweep:
            return False
        best = min(sweep, key=lambda r: (not np.isfinite(r.val_loss[-1]), r.val_loss[-1]))
        self.out.tuned_lr = best.lr
        for seed in self.cfg.seeds[1:]:
            self.run("scratch", seed, target, best.lr, lambda seed=seed: arms.scratch_state(target, seed))
        return True

    def source(self, role: str) -> RunResult:
        cfg_model = getattr(self.models, role)
        return self.run(role, 0, cfg_model, self.cfg.source_lr, lambda: arms.scratch_state(cfg_model, 0),
                        steps=self.cfg.source_steps, data_seed=SOURCE_SEED, keep=True)

    def grown(self) -> dict[str, RunResult]:
        sources: dict[str, RunResult] = {}
        target = self.models.target
        for arm in [a for a in self.cfg.arms if a in GROWN_ARMS]:
            role = arms.GROWTH[arm][0]
            src_cfg = getattr(self.models, role)
            try:
                grown_cfg = arms.grown_config(arm, src_cfg, target)
            except Exception as e:   # a growth the maths does not allow (lossless BERT widths): said, not run
                self.out.notes.append(f"{arm}: not run: {getattr(e, 'what', e)}")
                self.reporter.note(self.out.notes[-1])
                continue
            if role not in sources:
                sources[role] = self.source(role)
            source = sources[role]
            if source is None:   # cached_only: the source is missing, so is every run grown from it
                self.out.missing += [f"{arm} seed {seed} (pt; its source was not run)" for seed in self.cfg.seeds]
                continue
            for seed in self.cfg.seeds:
                self.run(arm, seed, grown_cfg, self.out.tuned_lr,
                         lambda seed=seed, source=source, src_cfg=src_cfg, arm=arm:
                         arms.grown_state(arm, src_cfg, source.weights, target, seed), origin=source.key)
        self.out.configs.update({role: getattr(self.models, role) for role, r in sources.items() if r is not None})
        return sources

    def minilm(self) -> None:
        from harness.core.config import preset
        from harness.core.lm_head import with_mlm_head
        dst = self.models.minilm_target
        if dst is None or "minilm" not in self.cfg.arms:
            return
        src = with_mlm_head(preset("bert", "minilm"))   # as the target: BertForMaskedLM (its head seeded)
        steps = self.cfg.minilm_steps
        for seed in self.cfg.seeds:
            self.run("minilm_scratch", seed, dst, self.out.tuned_lr, lambda seed=seed: arms.scratch_state(dst, seed),
                     tokenizer="minilm", steps=steps)
        for seed in self.cfg.seeds:
            self.run("minilm", seed, arms.grown_config("minilm", src, dst), self.out.tuned_lr,
                     lambda seed=seed: arms.grown_state("minilm", src, arms.minilm_state(src, seed), dst, seed),
                     origin="minilm", tokenizer="minilm", steps=steps)
        self.out.configs.update({"minilm": src, "minilm_target": dst})

    def mindspore(self, sources: dict[str, RunResult]) -> None:
        """MindSpore's first ms_steps steps of each ms arm, then PyTorch float64's (the judge)."""
        first, target = self.cfg.seeds[0], self.models.target
        for arm in self.cfg.ms_arms:
            for framework in ("ms", "pt64"):
                if arm == "scratch":
                    self.run("scratch", first, target, self.out.tuned_lr, lambda: arms.scratch_state(target, first),
                             framework=framework, stop=self.cfg.ms_steps)
                elif arm in self.cfg.arms and "source" in sources:
                    src_cfg, source = self.models.source, sources["source"]
                    self.run(arm, first, arms.grown_config(arm, src_cfg, target), self.out.tuned_lr,
                             lambda arm=arm, src_cfg=src_cfg, source=source:
                             arms.grown_state(arm, src_cfg, source.weights, target, first),
                             origin=source.key, framework=framework, stop=self.cfg.ms_steps)


def run_study(cfg: StudyConfig, folder: Path, reporter: Reporter, *, fresh: bool = False,
              hooks: TrainHooks | None = None, ms_mode: str | None = None, cached_only: bool = False
              ) -> dict[str, FamilyResult]:
    """Every run of the profile (cached runs read back from `folder`); per family, its results.
    hooks.setup(framework, TrainSetup): a planted fault's seam (tests); ms_mode: the profile's unless given
    ("pynative" spares the tests MindSpore's compile time; the full study runs jit). cached_only: train
    nothing, report what `folder` holds (the runs it lacks are listed in each family's `missing`)."""
    reporter.planned(planned_runs(cfg))
    out = {}
    for family in cfg.families:
        fam = _Family(cfg, family, folder, reporter, fresh, hooks, ms_mode or cfg.ms_mode, cached_only)
        fam.out.configs["target"] = fam.models.target
        if not fam.scratch():
            out[family] = fam.out
            continue
        sources = {k: v for k, v in fam.grown().items() if v is not None}
        if family == "bert":
            fam.minilm()
        fam.mindspore(sources)
        out[family] = fam.out
    return out
