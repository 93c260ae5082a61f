"""Pre-training steps: the language-model loss, global-norm clipping and the AdamWeightDecay rule
with a per-step learning rate (harness.core.optim), on a model with an LM head (GPT-2's tied one,
BERT's masked-LM head).

    trainer = Trainer(model, setup, lrs)          # lrs: (steps,) float32, harness.core.optim.schedule
    loss, grad_norm, lr = trainer.step(input_ids, labels, weights)

The loss is the mean over weighted positions of -log softmax(logits)[label]: numpy decides the
positions (GPT-2: every next token; BERT: the masked ones), so both frameworks compute the same
sum with no data-dependent shapes. grad_norm is the global norm before clipping; lr is the one
the optimizer applied at this step.
"""
import numpy as np

from harness.core.optim import decays

from . import build_model, load_numpy_state

# mirror: framework
import torch

from . import _from_numpy, _parameters


def lm_loss(logits, labels, weights):
    """logits (B, T, V), labels (B, T) int, weights (B, T) float -> the weighted mean of -log p(label)."""
    logp = torch.log_softmax(logits, -1)
    nll = -torch.gather(logp, -1, labels[..., None])[..., 0]  # (B, T)
    return (nll * weights).sum() / weights.sum()


def clip_by_global_norm(grads, clip):
    """(clipped grads, norm before clipping): MindSpore's ops.clip_by_global_norm written out
    (g * clip / max(norm, clip)); torch's clip_grad_norm_ divides by norm + 1e-6 instead."""
    norm = torch.sqrt(sum(torch.square(g).sum() for g in grads))
    if not clip:
        return grads, norm
    limit = torch.tensor(clip, dtype=norm.dtype)
    return [g * limit / torch.maximum(norm, limit) for g in grads], norm


class AdamWeightDecay:
    """The rule of harness.core.optim.adam_weight_decay_step, in the parameters' dtype (float32,
    or float64 for the judge): torch has no optimizer for it (torch.optim.AdamW corrects the bias)."""

    def __init__(self, params, setup):
        self.params, self.setup = params, setup
        dtype = next(iter(params.values())).dtype
        self.hyper = {k: torch.tensor(getattr(setup, k), dtype=dtype)
                      for k in ("beta1", "beta2", "eps", "weight_decay")}
        self.m = {name: torch.zeros_like(p) for name, p in params.items()}
        self.v = {name: torch.zeros_like(p) for name, p in params.items()}

    def step(self, grads, lr):
        h = self.hyper
        with torch.no_grad():
            for (name, p), g in zip(self.params.items(), grads, strict=True):
                self.m[name] = h["beta1"] * self.m[name] + (1.0 - h["beta1"]) * g
                self.v[name] = h["beta2"] * self.v[name] + (1.0 - h["beta2"]) * torch.square(g)
                update = self.m[name] / (h["eps"] + torch.sqrt(self.v[name]))
                if decays(name, self.setup):
                    update = h["weight_decay"] * p + update
                p.sub_(lr * update)


class Trainer:
    """Steps of one model; eager PyTorch (`compiled` is MindSpore's option and ignored here)."""

    def __init__(self, model, setup, lrs, compiled=False):
        self.model, self.setup = model, setup
        self.params = _parameters(model)
        self.dtype = next(iter(self.params.values())).dtype
        self.lrs = torch.tensor(np.asarray(lrs), dtype=self.dtype)
        self.optimizer = AdamWeightDecay(self.params, setup)
        self.t = 0

    def step(self, input_ids, labels, weights):
        ids = _from_numpy(np.asarray(input_ids, dtype=np.int64))
        targets = _from_numpy(gather_index(labels, weights))
        w = torch.from_numpy(np.asarray(weights)).to(self.dtype)
        for p in self.params.values():
            p.grad = None
        loss = lm_loss(self.model(ids)[0], targets, w)
        loss.backward()
        grads, norm = clip_by_global_norm([p.grad for p in self.params.values()], self.setup.clip)
        lr = self.lrs[self.t]
        self.optimizer.step(grads, lr)
        self.t += 1
        return float(loss.detach()), float(norm), float(lr)

    def evaluate(self, input_ids, labels, weights):
        """The loss on one batch, no gradient and no step (validation)."""
        ids = _from_numpy(np.asarray(input_ids, dtype=np.int64))
        targets = _from_numpy(gather_index(labels, weights))
        w = torch.from_numpy(np.asarray(weights)).to(self.dtype)
        with torch.no_grad():
            return float(lm_loss(self.model(ids)[0], targets, w))
# mirror: end


def trainable(cfg, state, dtype="float32"):
    """The model of cfg with its LM head, parameters copied from state, in dtype (float64: the judge)."""
    model = build_model(cfg)
    load_numpy_state(model, {name: np.array(a, dtype=np.float32) for name, a in state.items()})
    # mirror: framework
    if dtype == "float64":
        model.double()
    # mirror: end
    return model


def gather_index(labels, weights):
    """labels (B, T) as int64 indices: an unscored label (Hugging Face's -100; weight 0) becomes 0."""
    return np.where(np.asarray(weights) > 0, np.asarray(labels), 0).astype(np.int64)
