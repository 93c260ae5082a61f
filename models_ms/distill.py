"""TinyBERT distillation (Jiao et al., 2019): the classification head, the student, the loss
terms, and one training step (gradients of the student, then one AdamWeightDecay step).

The loss terms follow TinyBERT's public code (general_distill.py, task_distill.py); the layer
map g is data (setup.layer_map[m - 1] = g(m), teacher layers counted from 1, g(0) = 0):
- embedding, hidden.m: MSE between fit_dense(student hidden state m) and teacher hidden state
  g(m); m = 0 is the embedding output;
- attention.m: MSE between student layer m's attention scores and teacher layer g(m)'s: the raw
  q k^T / sqrt(hs) before the mask is added, with the scores of padded keys set to 0 on both
  sides (TinyBERT zeroes every score <= -100, which are the masked ones);
- prediction (task distillation only): soft cross-entropy, mean over batch x labels of
  -softmax(teacher / T) * log_softmax(student / T).
An MSE is the mean over every element, padded positions included (nn.MSELoss, as TinyBERT).
The step differentiates "total", the sum of the terms in the order above.

Multi-step distillation (DistillTrainer) loops the same terms over numpy batches with the train
cases' optimizer (models_*/train.py: global-norm clipping, AdamWeightDecay at a scheduled lr).
"""
import numpy as np

# mirror: framework
import mindspore as ms
from mindspore import Tensor, nn, ops

from harness.core.errors import BadInput
from harness.core.optim import decays as train_decays
# mirror: end

from harness.core.distill_step import decays, term_names

from . import _from_numpy, _parameters, _to_numpy, load_numpy_state, model_state, train
from .bert import BertModel
from .layers import Linear


class BertForSequenceClassification(nn.Cell):
    """BertModel and a classifier on the pooled first token, in transformers' layout (`bert.*`,
    `classifier.*`); dropout off. num_labels = 0: no classifier (general distillation uses none)."""

    def __init__(self, cfg, num_labels):
        super().__init__()
        self.cfg = cfg
        self.bert = BertModel(cfg)
        self.classifier = Linear(cfg.hidden, num_labels) if num_labels else None

    def construct(self, input_ids, attention_mask=None, token_type_ids=None):
        """-> (logits (B, labels) or None, hidden_states: L + 1 of (B, T, d), scores: L of (B, nh, T, T))."""
        hidden_states, scores = self.bert.encode(input_ids, attention_mask, token_type_ids)
        logits = None
        if self.classifier is not None:
            logits = self.classifier(self.bert.pooler(hidden_states[-1]))  # (B, labels)
        return logits, hidden_states, scores


class TinyBertForSequenceClassification(BertForSequenceClassification):
    """The student: adds TinyBERT's fit_dense, a Linear from its hidden size to the teacher's."""

    def __init__(self, cfg, num_labels, teacher_hidden):
        super().__init__(cfg, num_labels)
        self.fit_dense = Linear(cfg.hidden, teacher_hidden)


def mse(a, b):
    return ((a - b) ** 2).mean()  # nn.MSELoss: the mean over every element


def soft_cross_entropy(student_logits, teacher_logits, temperature):
    """TinyBERT's soft_cross_entropy at temperature T: a mean over batch x labels, not a sum over labels."""
    targets = ops.softmax(teacher_logits / temperature, -1)
    return (-targets * ops.log_softmax(student_logits / temperature, -1)).mean()


def distill_losses(student, teacher_out, input_ids, attention_mask, setup):
    """{term: scalar tensor}, "total" (their sum) last; teacher_out is the frozen teacher's
    (logits, hidden_states, scores)."""
    t_logits, t_hidden, t_scores = teacher_out
    s_logits, s_hidden, s_scores = student(input_ids, attention_mask)
    g = (0,) + tuple(setup.layer_map)  # student hidden state m <- teacher hidden state g[m]
    keep = attention_mask[:, None, None, :].float()  # (B, 1, 1, T): 0 where the key is padding
    losses = {"embedding": mse(student.fit_dense(s_hidden[0]), t_hidden[0])}
    for m in range(1, len(g)):
        losses[f"hidden.{m}"] = mse(student.fit_dense(s_hidden[m]), t_hidden[g[m]])
    for m in range(1, len(g)):
        losses[f"attention.{m}"] = mse(s_scores[m - 1] * keep, t_scores[g[m] - 1] * keep)
    if setup.stage == "td":
        losses["prediction"] = soft_cross_entropy(s_logits, t_logits, setup.temperature)
    terms = list(losses.values())
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    losses["total"] = total
    return losses


# mirror: framework
def teacher_outputs(teacher, input_ids, attention_mask):
    return teacher(input_ids, attention_mask)  # outside value_and_grad: the teacher is frozen


def gradients(student, teacher_out, input_ids, attention_mask, setup):
    """({term: float}, {name: gradient of "total"}) for every student parameter, by ms.value_and_grad."""
    params = _parameters(student)

    def total_and_terms():
        losses = distill_losses(student, teacher_out, input_ids, attention_mask, setup)
        return losses["total"], tuple(losses.items())  # only the first output is differentiated

    (_, terms), grads = ms.value_and_grad(total_and_terms, None, list(params.values()), has_aux=True)()
    return {term: float(value) for term, value in terms}, dict(zip(params, grads, strict=True))


class AdamWeightDecay:
    """One optimizer for the rule of BERT's and TinyBERT's AdamWeightDecay (BertAdam without its
    schedule): MindSpore's own nn.AdamWeightDecay, with TinyBERT's no-decay groups (decays(name)).
    Its docs call it deprecated ("removed after 2.9.0") but 2.10 ships it; mint.optim.AdamW, the
    bias-corrected rule, has no CPU kernel in 2.10 ("The kernel AdamW unregistered", measured)."""

    def __init__(self, params, setup):
        self.names = list(params)
        for name, p in params.items():
            p.name = name  # the optimizer names its moments after the parameters: they must be unique
        groups = [{"params": [p for n, p in params.items() if decays(n)], "weight_decay": setup.weight_decay},
                  {"params": [p for n, p in params.items() if not decays(n)], "weight_decay": 0.0},
                  {"order_params": list(params.values())}]
        self.optimizer = nn.AdamWeightDecay(groups, learning_rate=setup.lr, beta1=setup.beta1,
                                            beta2=setup.beta2, eps=setup.eps)

    def step(self, grads):
        self.optimizer(tuple(grads[name] for name in self.names))
# mirror: end


def distill_step(teacher, student, input_ids, attention_mask, setup):
    """One distillation step on numpy token ids (B, T) and 0/1 mask (B, T):
    ({term: float}, {name: gradient array}, {name: parameter array after the step}), model order."""
    ids = _from_numpy(np.asarray(input_ids, dtype=np.int64))
    mask = _from_numpy(np.asarray(attention_mask, dtype=np.float32))
    teacher_out = teacher_outputs(teacher, ids, mask)
    losses, grads = gradients(student, teacher_out, ids, mask, setup)
    grads_np = {name: _to_numpy(g).copy() for name, g in grads.items()}
    AdamWeightDecay(_parameters(student), setup).step(grads)
    return losses, grads_np, {name: a.copy() for name, a in model_state(student).items()}


def distill_models(teacher_cfg, student_cfg, num_labels, teacher_state, student_state, dtype="float32"):
    """(frozen teacher, student with fit_dense) from numpy states (the student's copied: the steps
    write into it), in dtype (float64: the judge of the multi-step cases, PyTorch only)."""
    teacher = BertForSequenceClassification(teacher_cfg, num_labels)
    load_numpy_state(teacher, teacher_state)
    student = TinyBertForSequenceClassification(student_cfg, num_labels, teacher_cfg.hidden)
    load_numpy_state(student, {name: a.copy() for name, a in student_state.items()})
    # mirror: framework
    if dtype == "float64":
        raise BadInput("the float64 judge runs in PyTorch", "distil MindSpore in float32")
    # mirror: end
    return teacher, student


# mirror: framework
class DistillTrainStep(nn.Cell):
    """One step as a cell: the frozen teacher's forward, the loss terms, gradients of their total
    (teacher outputs held constant), the global norm, MindSpore's own ops.clip_by_global_norm and
    nn.AdamWeightDecay with the schedule as its dynamic learning rate (as models_ms/train.py)."""

    def __init__(self, teacher, student, setup, train_setup, lrs):
        super().__init__(auto_prefix=False)
        self.teacher, self.student, self.setup, self.clip = teacher, student, setup, float(train_setup.clip)
        params = _parameters(student)
        for name, p in params.items():
            p.name = name  # the optimizer names its moments after the parameters: they must be unique
        for name, p in _parameters(teacher).items():
            p.name = "teacher." + name
            p.requires_grad = False
        groups = [{"params": [p for n, p in params.items() if train_decays(n, train_setup)],
                   "weight_decay": train_setup.weight_decay},
                  {"params": [p for n, p in params.items() if not train_decays(n, train_setup)], "weight_decay": 0.0},
                  {"order_params": list(params.values())}]
        groups = [g for g in groups if g.get("params", True)]  # a group may be empty (no exemptions)
        self.lrs = Tensor(np.asarray(lrs, dtype=np.float32))
        self.optimizer = nn.AdamWeightDecay(groups, learning_rate=self.lrs, beta1=train_setup.beta1,
                                            beta2=train_setup.beta2, eps=train_setup.eps)
        self.grad_fn = ms.value_and_grad(self.total_and_terms, None, self.optimizer.parameters, has_aux=True)

    def total_and_terms(self, teacher_out, input_ids, attention_mask):
        losses = distill_losses(self.student, teacher_out, input_ids, attention_mask, self.setup)
        return losses["total"], tuple(losses.values())  # only the first output is differentiated

    def construct(self, input_ids, attention_mask):
        teacher_out = self.teacher(input_ids, attention_mask)  # outside grad_fn: the teacher is frozen
        (_, terms), grads = self.grad_fn(teacher_out, input_ids, attention_mask)
        norm = train.global_norm(grads)
        if self.clip > 0:
            grads = ops.clip_by_global_norm(grads, self.clip)
        lr = self.lrs[self.optimizer.global_step]
        self.optimizer(grads)
        return terms, norm, lr


class DistillTrainer:
    """Steps of distillation: PyNative, or compiled (`compiled=True`: the whole step under ms.jit)."""

    def __init__(self, teacher, student, setup, train_setup, lrs, compiled=False):
        self.train_step = DistillTrainStep(teacher, student, setup, train_setup, lrs)
        self.run = ms.jit(self.train_step.construct) if compiled else self.train_step
        self.names = term_names(setup)

    def step(self, input_ids, attention_mask):
        """-> ({term: loss}, global gradient norm before clipping, lr applied)."""
        ids = Tensor(np.asarray(input_ids, dtype=np.int64))
        mask = Tensor(np.asarray(attention_mask, dtype=np.float32))
        terms, norm, lr = self.run(ids, mask)
        return ({name: float(v) for name, v in zip(self.names, terms, strict=True)}, float(norm),
                float(lr.reshape(-1)[0]))
# mirror: end
