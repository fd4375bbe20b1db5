"""Direct Preference Optimization (DPO, Rafailov et al. 2023): RLHF without a reward model or sampling.

The derivation of the lecture, in four steps.

1. RLHF maximises the reward while staying close to the reference (SFT) model ``pi_ref``:

       max_pi  E_{x, y ~ pi} [ r(x, y) ] - beta KL( pi(.|x) || pi_ref(.|x) ).

2. This objective has a closed-form optimum (write it as ``-beta KL(pi || pi_ref e^{r/beta} / Z)``
   plus a constant; a KL is minimal, zero, when its two arguments are equal):

       pi*(y|x) = pi_ref(y|x) exp(r(x, y) / beta) / Z(x),    Z(x) = sum_y pi_ref(y|x) exp(r(x, y) / beta).

   ``Z(x)`` sums over every possible answer: intractable, which is why RLHF samples (PPO) instead.

3. Solve for the reward: ``r(x, y) = beta log pi*(y|x) / pi_ref(y|x) + beta log Z(x)``. Any policy
   defines an *implicit reward* this way.

4. Put it into the Bradley-Terry model ``P(y_w > y_l | x) = sigma(r(x, y_w) - r(x, y_l))``: the two
   ``beta log Z(x)`` terms are the same prompt's, and **cancel**. Maximum likelihood over the
   preference pairs, with the policy ``pi_theta`` in place of ``pi*``, is the DPO loss

       L_DPO = -E [ log sigma( beta log pi_theta(y_w|x)/pi_ref(y_w|x) - beta log pi_theta(y_l|x)/pi_ref(y_l|x) ) ].

A classification loss on pairs: no reward model, no sampling, one frozen reference. Its gradient
raises ``log pi(y_w|x)`` and lowers ``log pi(y_l|x)``, weighted by ``sigma(r_hat_l - r_hat_w)``: by
how wrongly the implicit rewards ``r_hat = beta log pi_theta/pi_ref`` rank the pair.

``log pi(y|x)`` is the log-probability of the whole answer, **summed** over its tokens
(:func:`neuraltext.align.sft.completion_logps`), as in the paper and TRL's ``DPOTrainer``
(``loss_type="sigmoid"``). Some tutorials average over tokens instead: a different loss (it ignores
the answers' lengths and changes the effective beta). Reported like TRL: the implicit rewards
``beta (log pi - log pi_ref)`` of chosen and rejected answers, their margin, and the accuracy (the
fraction of pairs whose chosen answer has the larger implicit reward).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from neuraltext.align.sft import completion_logps

__all__ = ["dpo_loss", "reference_logps", "dpo_batch_loss", "evaluate_dpo"]


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float = 0.1) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The DPO loss from summed log-probabilities ``(B,)`` each; returns ``(loss, stats)`` with the
    implicit rewards ``chosen_rewards``/``rejected_rewards`` (detached), ``margin`` and ``accuracy``."""
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta > 0):
        raise ValueError(f"dpo_loss: beta must be a positive finite number, got {beta!r}")
    shapes = {t.shape for t in (policy_chosen, policy_rejected, ref_chosen, ref_rejected)}
    if len(shapes) != 1:
        raise ValueError(f"the four log-probability tensors must have one shape (B,), got {shapes}")
    chosen_logratio = policy_chosen - ref_chosen  # log pi_theta(y_w|x) / pi_ref(y_w|x)
    rejected_logratio = policy_rejected - ref_rejected
    loss = -F.logsigmoid(beta * (chosen_logratio - rejected_logratio)).mean()
    r_w, r_l = beta * chosen_logratio.detach(), beta * rejected_logratio.detach()
    return loss, {"chosen_rewards": r_w, "rejected_rewards": r_l, "margin": (r_w - r_l).mean(),
                  "accuracy": (r_w > r_l).float().mean()}


@torch.no_grad()
def reference_logps(ref_model, batch: dict) -> dict:
    """The batch with ``ref_logps`` ``(2B,)`` added: the frozen reference computed once, before
    training (TRL's ``precompute_ref_logps``); the reference is never needed again."""
    ref_model.eval()
    lp = completion_logps(ref_model, batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
    return {**batch, "ref_logps": lp}


def dpo_batch_loss(policy, batch: dict, beta: float = 0.1) -> torch.Tensor:
    """The ``loss_fn`` of :func:`neuraltext.training.loop.train` on a ``[chosen; rejected]`` batch carrying
    ``ref_logps`` (see :func:`reference_logps`)."""
    lp = completion_logps(policy, batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
    pc, pr = lp.chunk(2)
    rc, rr = batch["ref_logps"].chunk(2)
    return dpo_loss(pc, pr, rc, rr, beta)[0]


@torch.no_grad()
def evaluate_dpo(policy, batches, beta: float = 0.1) -> dict[str, float]:
    """Held-out DPO ``loss``, implicit-reward ``accuracy`` and ``margin`` over batches with ``ref_logps``."""
    was_training = policy.training
    policy.eval()
    pcs, prs, rcs, rrs = [], [], [], []
    for batch in batches:
        lp = completion_logps(policy, batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
        pc, pr = lp.chunk(2)
        rc, rr = batch["ref_logps"].chunk(2)
        pcs.append(pc), prs.append(pr), rcs.append(rc), rrs.append(rr)
    policy.train(was_training)
    loss, stats = dpo_loss(torch.cat(pcs), torch.cat(prs), torch.cat(rcs), torch.cat(rrs), beta)
    return {"loss": float(loss), "accuracy": float(stats["accuracy"]), "margin": float(stats["margin"])}
