"""Everything the study writes, from its results: <out>/curves.csv, summary.md, loss_vs_steps.png,
loss_vs_flops.png (each written atomically), and the MindSpore parity rows that decide the exit code."""
from __future__ import annotations

from pathlib import Path

from harness.study.analysis import summarize
from harness.study.config import StudyConfig
from harness.study.flops import STATEMENT as FLOPS
from harness.study.parity import parity_rows
from harness.study.plots import plot
from harness.study.report import family_section, parity_section, write_curves, write_summary
from harness.study.study import FamilyResult
from harness.suite.corpus import STUDY_SPLITS


def _twin(fam: FamilyResult, ms, framework: str):
    """The run of `framework` with MindSpore's arm, seed and lr (None if the study has none)."""
    found = [r for r in fam.runs if r.framework == framework and r.arm == ms.arm and r.seed == ms.seed
             and r.lr == ms.lr]
    return found[0] if found else None


def _parity(results: dict[str, FamilyResult], profile: str):
    from harness.kinds.registry import load_tolerances
    tol = load_tolerances()
    rows = []
    for fam in results.values():
        for ms in [r for r in fam.runs if r.framework == "ms"]:
            rows += parity_rows(ms, _twin(fam, ms, "pt"), tol, profile, judge=_twin(fam, ms, "pt64"))
    return rows


def _head(cfg: StudyConfig, results: dict[str, FamilyResult], wall: float, argv: str) -> str:
    runs = [r for fam in results.values() for r in fam.runs]
    computed = [r for r in runs if not r.cached]
    compute = sum(r.seconds for r in runs)
    return "\n".join([
        "# Growth study: grown vs scratch continued pre-training",
        "",
        f"`python -m harness {argv}` (profile `{cfg.profile}` of {cfg.path.name}). Wall time of this invocation "
        f"{wall / 60:.1f} min; {len(runs)} runs, {len(computed)} computed now and {len(runs) - len(computed)} read "
        f"back from earlier invocations (the runs/ folder beside this file); the runs' own training time adds up to "
        f"{compute / 60:.1f} min.",
        "",
        f"Corpus: Jane Austen's novels (data/austen/, public domain): training {', '.join(STUDY_SPLITS['train'])}; "
        f"validation (held out) {', '.join(STUDY_SPLITS['validation'])}, {cfg.eval_batches} fixed batches of "
        f"{cfg.batch} x {cfg.length} tokens. Tokenizer: the study's 4096-token BPE (data/austen/tokenizer.json); "
        "the MiniLM arms use MiniLM's WordPiece (30522).",
        f"Every target-size run: {cfg.steps} steps of {cfg.batch} x {cfg.length} tokens, AdamWeightDecay (wd "
        f"{cfg.weight_decay:g}, no decay on biases and LayerNorm), warm-up {cfg.warmup} steps then linear decay, "
        f"global-norm clip {cfg.clip:g}; seeds {list(cfg.seeds)}; validation every {cfg.eval_every} steps and "
        f"before the first. Sources: {cfg.source_steps} steps at lr {cfg.source_lr:g}.",
        "",
        f"FLOPs: {FLOPS}",
        "",
        "Steps to scratch's final loss: the first crossing of the arm's validation curve with the tuned scratch "
        "run's final validation loss (mean over seeds), linearly interpolated between evaluations; the saving is "
        "100 x (1 - FLOPs to it / scratch's FLOPs to it); 'with source cost' adds the source's pre-training FLOPs. "
        "Mean ± sample standard deviation over seeds.",
        ""])


def write_outputs(cfg: StudyConfig, results: dict[str, FamilyResult], out: Path, wall: float,
                  argv: str) -> tuple[list[Path], bool]:
    summaries = {f: summarize(fam, cfg.batch, cfg.length) for f, fam in results.items()}
    rows = _parity(results, cfg.profile)
    sections = [family_section(fam, summaries.get(f), cfg.batch, cfg.length) for f, fam in results.items()]
    paths = [write_curves(results, out / "curves.csv", cfg.batch, cfg.length),
             write_summary(out / "summary.md", _head(cfg, results, wall, argv), sections, parity_section(rows)),
             *plot(results, summaries, out, cfg.batch, cfg.length)]
    return paths, any(r.status == "fail" for r in rows)
