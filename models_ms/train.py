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
import mindspore as ms
from mindspore import Tensor, nn, ops

from harness.core.errors import BadInput

from . import _parameters


def lm_loss(logits, labels, weights):
    """logits (B, T, V), labels (B, T) int, weights (B, T) float -> the weighted mean of -log p(label)."""
    logp = ops.log_softmax(logits, -1)
    nll = -ops.gather_elements(logp, -1, labels[..., None])[..., 0]  # (B, T)
    return (nll * weights).sum() / weights.sum()


def global_norm(grads):
    return ops.sqrt(ops.addn([ops.square(g).sum() for g in grads]))


class TrainStep(nn.Cell):
    """Loss, gradients, global norm, MindSpore's own ops.clip_by_global_norm and nn.AdamWeightDecay
    with the schedule as its dynamic learning rate (indexed by its global step)."""

    def __init__(self, model, setup, lrs):
        super().__init__(auto_prefix=False)
        self.model, self.clip = model, float(setup.clip)
        params = _parameters(model)
        for name, p in params.items():
            p.name = name  # the optimizer names its moments after the parameters: they must be unique
        groups = [{"params": [p for n, p in params.items() if decays(n, setup)], "weight_decay": setup.weight_decay},
                  {"params": [p for n, p in params.items() if not decays(n, setup)], "weight_decay": 0.0},
                  {"order_params": list(params.values())}]
        groups = [g for g in groups if g.get("params", True)]  # a group may be empty (no exemptions)
        self.lrs = Tensor(np.asarray(lrs, dtype=np.float32))
        self.optimizer = nn.AdamWeightDecay(groups, learning_rate=self.lrs, beta1=setup.beta1,
                                            beta2=setup.beta2, eps=setup.eps)
        self.grad_fn = ms.value_and_grad(self.loss, None, self.optimizer.parameters)

    def loss(self, input_ids, labels, weights):
        return lm_loss(self.model(input_ids)[0], labels, weights)

    def construct(self, input_ids, labels, weights):
        loss, grads = self.grad_fn(input_ids, labels, weights)
        norm = global_norm(grads)
        if self.clip > 0:
            grads = ops.clip_by_global_norm(grads, self.clip)
        lr = self.lrs[self.optimizer.global_step]
        self.optimizer(grads)
        return loss, norm, lr


class Trainer:
    """Steps of one model: PyNative, or compiled (`compiled=True`: the whole step under ms.jit)."""

    def __init__(self, model, setup, lrs, compiled=False):
        self.train_step = TrainStep(model, setup, lrs)
        self.run = ms.jit(self.train_step.construct) if compiled else self.train_step
        self.loss = ms.jit(self.train_step.loss) if compiled else self.train_step.loss

    def step(self, input_ids, labels, weights):
        ids = Tensor(np.asarray(input_ids, dtype=np.int64))
        targets = Tensor(gather_index(labels, weights))
        w = Tensor(np.asarray(weights, dtype=np.float32))
        loss, norm, lr = self.run(ids, targets, w)
        return float(loss), float(norm), float(lr.reshape(-1)[0])

    def evaluate(self, input_ids, labels, weights):
        """The loss on one batch, no gradient and no step (validation)."""
        ids = Tensor(np.asarray(input_ids, dtype=np.int64))
        targets = Tensor(gather_index(labels, weights))
        w = Tensor(np.asarray(weights, dtype=np.float32))
        return float(self.loss(ids, targets, w))
# mirror: end


def trainable(cfg, state, dtype="float32"):
    """The model of cfg with its LM head, parameters copied from state, in dtype (float64: the judge)."""
    model = build_model(cfg)
    load_numpy_state(model, {name: np.array(a, dtype=np.float32) for name, a in state.items()})
    # mirror: framework
    if dtype == "float64":
        raise BadInput("the float64 judge runs in PyTorch", "train MindSpore in float32")
    # mirror: end
    return model


def gather_index(labels, weights):
    """labels (B, T) as int64 indices: an unscored label (Hugging Face's -100; weight 0) becomes 0."""
    return np.where(np.asarray(weights) > 0, np.asarray(labels), 0).astype(np.int64)
