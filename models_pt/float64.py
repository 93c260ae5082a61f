"""A float64 forward of float32 weights: the judge the growth cases' float32 outputs are measured
against (both frameworks' grown forwards, each compared with it). PyTorch only.

    out = forward_float64(cfg, state, input_ids, attention_mask)     # run_forward's dict, float64
"""
from . import build_model, load_numpy_state, run_forward


# mirror: framework
def _as_float64(model):
    return model.double()
# mirror: end


def forward_float64(cfg, state, input_ids, attention_mask=None):
    """run_forward of cfg's model with `state`'s float32 values held in float64 (every op in float64)."""
    model = build_model(cfg)
    load_numpy_state(model, state)
    _as_float64(model)
    return run_forward(model, input_ids, attention_mask)
