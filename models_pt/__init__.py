"""Mirrored BERT / GPT-2 models and the four entry points the harness calls.

build_model(cfg), load_numpy_state(model, state), model_state(model) and
run_forward(model, input_ids, attention_mask) speak numpy and Hugging Face
tensor names, so the harness never touches framework tensors.
"""
import numpy as np

# mirror: framework
import warnings

import torch
# mirror: end

from harness.core.errors import BadInput
from harness.core.forward_inputs import check_forward_inputs
from harness.core.vocab import DTYPES

from .bert import BertForMaskedLM, BertModel
from .gpt2 import GPT2LMHeadModel

# mirror: framework
def _from_numpy(a):
    with warnings.catch_warnings():
        # read-only inputs (mmap'd checkpoints) are only read here, never written
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(a)


def _to_numpy(t):
    return t.detach().numpy()


def _parameters(model):
    return dict(model.named_parameters())


def _set_parameters(params, state, dtype):
    with torch.no_grad():
        for name, p in params.items():
            # shares the array's memory (copies only an array of another dtype)
            p.data = _from_numpy(np.require(state[name], dtype, ["C"]))


def _forward(model, ids, mask):
    with torch.inference_mode():
        return model(ids, mask)
# mirror: end


def build_model(cfg):
    """An uninitialised BertModel, BertForMaskedLM (head "mlm") or GPT2LMHeadModel for cfg; fill it
    with load_numpy_state."""
    if cfg.family == "gpt2":
        return GPT2LMHeadModel(cfg)
    return BertForMaskedLM(cfg) if cfg.head == "mlm" else BertModel(cfg)


def load_numpy_state(model, state, dtype="float32"):
    """Set every parameter from {Hugging Face name: array}; names and shapes must match exactly.

    The model shares the arrays' memory (no copy of the model): do not write to them afterwards.
    dtype "float16" casts every parameter (a copy) and runs the GPT-2 forward in float16.
    """
    if dtype not in DTYPES.values():
        raise BadInput(f"dtype {dtype!r}: parameters are {' or '.join(DTYPES.values())}",
                       f"pass dtype= one of {', '.join(DTYPES.values())}")
    params = _parameters(model)
    missing, extra = sorted(params.keys() - state.keys()), sorted(state.keys() - params.keys())
    if missing or extra:
        raise BadInput(f"state does not match the {type(model).__name__}: missing {missing or 'none'}, "
                       f"unexpected {extra or 'none'}",
                       "pass exactly the model's parameters, by Hugging Face name (drop buffers "
                       "such as embeddings.position_ids)")
    for name, p in params.items():
        found = tuple(state[name].shape)
        if found != tuple(p.shape):
            raise BadInput(f"tensor {name}: expected shape {tuple(p.shape)}, found {found}",
                           "the state was written for a different model size; check the config")
        if not np.issubdtype(state[name].dtype, np.floating):
            raise BadInput(f"tensor {name}: expected a float array, found {state[name].dtype}",
                           "pass float32 weights")
    _set_parameters(params, state, np.dtype(dtype))


def model_state(model):
    """{Hugging Face name: float32 array} of every parameter, in Hugging Face order."""
    return {name: _to_numpy(p) for name, p in _parameters(model).items()}


def run_forward(model, input_ids, attention_mask=None):
    """Forward on numpy token ids (B, T) and 0/1 mask (B, T) -> dict of numpy outputs.

    BERT: last_hidden_state, pooler_output, hidden_states (L + 1, B, T, d);
    BERT with the masked-LM head, and GPT-2: logits, last_hidden_state, hidden_states (L + 1, B, T, d).
    """
    cfg = model.cfg
    input_ids, mask = check_forward_inputs(cfg, input_ids, attention_mask)
    if mask is not None:
        mask = _from_numpy(np.asarray(mask, dtype=np.float32))
    outputs = _forward(model, _from_numpy(input_ids), mask)
    hidden_states = np.stack([_to_numpy(h) for h in outputs[-1]])
    if cfg.family == "bert" and cfg.head == "none":
        return {"last_hidden_state": _to_numpy(outputs[0]), "pooler_output": _to_numpy(outputs[1]),
                "hidden_states": hidden_states}
    return {"logits": _to_numpy(outputs[0]), "last_hidden_state": hidden_states[-1],
            "hidden_states": hidden_states}
