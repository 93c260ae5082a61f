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
import torch
from torch import nn
# mirror: end

from harness.core.distill_step import decays, term_names

from . import _from_numpy, _parameters, _to_numpy, load_numpy_state, model_state, train
from .bert import BertModel
from .layers import Linear


class BertForSequenceClassification(nn.Module):
    """BertModel and a classifier on the pooled first token, in transformers' layout (`bert.*`,
    `classifier.*`); dropout off. num_labels = 0: no classifier (general distillation uses none)."""

    def __init__(self, cfg, num_labels):
        super().__init__()
        self.cfg = cfg
        self.bert = BertModel(cfg)
        self.classifier = Linear(cfg.hidden, num_labels) if num_labels else None

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
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
    targets = torch.softmax(teacher_logits / temperature, -1)
    return (-targets * torch.log_softmax(student_logits / temperature, -1)).mean()


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
    with torch.no_grad():  # the teacher is frozen
        return teacher(input_ids, attention_mask)


def gradients(student, teacher_out, input_ids, attention_mask, setup):
    """({term: float}, {name: gradient of "total"}) for every student parameter, by autograd."""
    params = _parameters(student)
    for p in params.values():
        p.grad = None
    losses = distill_losses(student, teacher_out, input_ids, attention_mask, setup)
    losses["total"].backward()
    # a parameter the loss does not reach (the pooler in general distillation) has no .grad: zeros
    grads = {name: p.grad if p.grad is not None else torch.zeros_like(p) for name, p in params.items()}
    return {term: float(value.detach()) for term, value in losses.items()}, grads


class AdamWeightDecay:
    """One optimizer for the rule of BERT's and TinyBERT's AdamWeightDecay (BertAdam without its
    schedule), which MindSpore's nn.AdamWeightDecay implements: from m = v = 0,
        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  p = p - lr (m / (eps + sqrt(v)) + wd p),
    no bias correction; wd = 0 where decays(name) is false. torch has no optimizer for this rule
    (torch.optim.AdamW corrects the bias), so it is written out, in float32 as MindSpore's.
    (torch.sqrt on float32 CPU tensors is not correctly rounded for ~17% of inputs, measured on
    torch 2.13; numpy's and MindSpore's are: 1 ulp of sqrt v, far below the update limits.)"""

    def __init__(self, params, setup):
        self.params = params
        self.hyper = {k: torch.tensor(getattr(setup, k), dtype=torch.float32)
                      for k in ("lr", "beta1", "beta2", "eps", "weight_decay")}
        self.m = {name: torch.zeros_like(p) for name, p in params.items()}
        self.v = {name: torch.zeros_like(p) for name, p in params.items()}

    def step(self, grads):
        h = self.hyper
        with torch.no_grad():
            for name, p in self.params.items():
                g = grads[name]
                self.m[name] = h["beta1"] * self.m[name] + (1.0 - h["beta1"]) * g
                self.v[name] = h["beta2"] * self.v[name] + (1.0 - h["beta2"]) * torch.square(g)
                update = self.m[name] / (h["eps"] + torch.sqrt(self.v[name]))
                if decays(name):
                    update = h["weight_decay"] * p + update
                p.sub_(h["lr"] * update)
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
        teacher.double()
        student.double()
    # mirror: end
    return teacher, student


# mirror: framework
class DistillTrainer:
    """Steps of distillation: the frozen teacher's forward, the student's loss terms, gradients of
    their total, global-norm clipping and AdamWeightDecay at the scheduled lr (models_pt/train.py's
    rule, in the parameters' dtype); eager PyTorch (`compiled` is MindSpore's option)."""

    def __init__(self, teacher, student, setup, train_setup, lrs, compiled=False):
        self.teacher, self.student, self.setup, self.clip = teacher, student, setup, train_setup.clip
        self.params = _parameters(student)
        self.dtype = next(iter(self.params.values())).dtype
        self.lrs = torch.tensor(np.asarray(lrs), dtype=self.dtype)
        self.optimizer = train.AdamWeightDecay(self.params, train_setup)
        self.t = 0

    def step(self, input_ids, attention_mask):
        """-> ({term: loss}, global gradient norm before clipping, lr applied)."""
        ids = _from_numpy(np.asarray(input_ids, dtype=np.int64))
        mask = torch.from_numpy(np.asarray(attention_mask)).to(self.dtype)
        teacher_out = teacher_outputs(self.teacher, ids, mask)
        for p in self.params.values():
            p.grad = None
        losses = distill_losses(self.student, teacher_out, ids, mask, self.setup)
        losses["total"].backward()
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params.values()]
        grads, norm = train.clip_by_global_norm(grads, self.clip)
        lr = self.lrs[self.t]
        self.optimizer.step(grads, lr)
        self.t += 1
        return {term: float(losses[term].detach()) for term in term_names(self.setup)}, float(norm), float(lr)
# mirror: end
