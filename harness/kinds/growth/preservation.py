"""How faithful a grown model is to its source, in one framework, on the same inputs (public: planted-fault
tests call these with perturbed data).

- outputs: BERT's hidden outputs against the source's read by g_h, GPT-2's logits directly;
- layers (lossless cases): every hidden state of the grown model against the source state it must
  equal (harness.core.lossless.state_pairs / expected_state), and the first one that departs;
- the language-model loss (GPT-2): mean next-token NLL on corpus windows, grown vs source.
Gated for function-preserving cases (Case.preserving: lossless, or FPI marked exact), reported otherwise.

Function-preserving cases are also evaluated in float64 (precision="float64": the same float32 weights,
both models' forwards in float64), metrics "<fw>.float64.*" and limit key "float64_relative": there the
residual is the rounding of the grown weights to float32, not the noise of two float32 forwards of
differently shaped models, which exceeds 1e-6 at GPT-2's seed sizes (docs/lossless.md).
"""
from __future__ import annotations

import numpy as np

from harness.core import families, lossless
from harness.core.plan import GrowthPlan
from harness.core.vocab import TITLES
from harness.kinds.growth.cases import Case
from harness.suite.metrics import cosine, relative
from harness.suite.rows import Row, first_and_worst, limited, row
from harness.suite.tolerances import Tolerances

PRECISIONS = {"": "relative", "float64": "float64_relative"}   # precision -> its limit key (tolerances.toml)


def _gate(case: Case, plan: GrowthPlan, tol: Tolerances, key: str) -> tuple[float | None, str]:
    """(limit, note): a limit for a function-preserving case, None (reported) otherwise."""
    if case.preserving:
        limit, why = limited(tol, case.id, "preservation", key)
        return limit, f"{case.method} growth is function preserving: gated" + why
    return None, (f"approximate growth ({case.method}/{case.sampling}, {plan.src.layers}->{plan.dst.layers} "
                  f"layers): reported, not gated")


def _select(name: str, x: np.ndarray, unpadded: np.ndarray) -> np.ndarray:
    return x if name == "pooler_output" else x[unpadded]   # pooler is per sequence, from the unpadded first token


def _labels(framework: str, precision: str) -> tuple[str, str, str]:
    """(metric prefix, title, limit key) of one framework's rows at one precision ("" = float32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: one of {sorted(PRECISIONS)}")
    if not precision:
        return framework, TITLES[framework], PRECISIONS[precision]
    return f"{framework}.{precision}", f"{TITLES[framework]} {precision}", PRECISIONS[precision]


def compare_preservation(case: Case, plan: GrowthPlan, framework: str, grown: dict, source: dict,
                         unpadded: np.ndarray, tol: Tolerances, precision: str = "") -> list[Row]:
    """Grown vs source model of one framework on the same ids. BERT: grown hidden unit i
    against source unit g_h(i) (FPI and lossless copy coordinates by the hidden map); GPT-2: logits.
    precision "float64": both forwards ran in float64 (from the same float32 weights)."""
    prefix, title, key = _labels(framework, precision)
    limit, note = _gate(case, plan, tol, key)
    rows = []
    for name in families.get(case.family).PRESERVED_OUTPUTS:
        s = source[name] if name == "logits" else source[name][..., plan.hidden_map]
        g, s = _select(name, grown[name], unpadded), _select(name, s, unpadded)
        detail = f"{title} grown vs {title} source, {name}" + ("" if name == "logits" else " by g_h")
        rows.append(row(case.id, "preservation", f"{prefix}.{name}.relative", relative(g, s), limit,
                         f"{detail}; {note}"))
        rows.append(row(case.id, "preservation", f"{prefix}.{name}.cosine", cosine(g, s), None, detail))
    if case.method == lossless.METHOD:
        rows.extend(compare_preserved_layers(case, plan, framework, grown, source, unpadded, tol, precision))
    return rows


def compare_preserved_layers(case: Case, plan: GrowthPlan, framework: str, grown: dict, source: dict,
                             unpadded: np.ndarray, tol: Tolerances, precision: str = "") -> list[Row]:
    """Lossless: each hidden state of the grown model against the source state it must equal, all D
    coordinates (GPT-2's new ones hold the mean, 0 after ln_f; BERT's are copies); one row each
    (reported) and the worst (gated), naming the first state that departs."""
    fam = families.get(case.family)
    prefix, title, key = _labels(framework, precision)
    limit, note = _gate(case, plan, tol, key)
    names = fam.layer_names(plan.dst.layers)
    last = len(names) - 1
    errors, skipped, rows = {}, [], []
    for g, s in lossless.state_pairs(plan):
        if s is None:
            skipped.append(names[g])
            continue
        want = lossless.expected_state(plan, source["hidden_states"][s][unpadded], fam.LAST_STATE_NORMED and g == last)
        errors[names[g]] = relative(grown["hidden_states"][g][unpadded], want)
        rows.append(row(case.id, "preservation", f"{prefix}.layers.{names[g]}.relative", errors[names[g]], None,
                        f"{title} grown state {names[g]} vs the source state it must equal"))
    worst, first, _ = first_and_worst(errors, limit)
    gap = f"; not comparable (LayerNorm affine moved on): {', '.join(skipped)}" if skipped else ""
    rows.append(row(case.id, "preservation", f"{prefix}.layers.worst.relative", errors[worst], limit,
                    f"first state that departs: {first}; worst: {worst} ({errors[worst]:.3g}) of {len(errors)} "
                    f"compared{gap}; {note}"))
    return rows


def compare_lm_loss(case: Case, plan: GrowthPlan, framework: str, grown_loss: float, source_loss: float,
                    detail: str, tol: Tolerances) -> list[Row]:
    """The language-model loss (mean next-token NLL, float64 from float32 logits), grown vs source."""
    limit, note = _gate(case, plan, tol, "loss_relative")
    gap = abs(grown_loss - source_loss) / abs(source_loss) if source_loss else abs(grown_loss)
    return [row(case.id, "preservation", f"{framework}.lm_loss.relative", gap, limit,
                f"{TITLES[framework]} LM loss grown {grown_loss:.9g} vs source {source_loss:.9g} "
                f"(|diff| / source) on {detail}; {note}")]
