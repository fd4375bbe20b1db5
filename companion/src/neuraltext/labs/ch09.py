"""Chapter 9's exercises: the Bradley-Terry reward loss, PPO's KL-penalised reward, PPO's clipped
objective, the DPO loss.

The references are the package's functions that the chapter trains with and tests against TRL:
``neuraltext.align.reward.bradley_terry_loss``, ``neuraltext.align.ppo.kl_penalized_reward``,
``neuraltext.align.ppo.clipped_surrogate`` (its loss, without the clip fraction) and
``neuraltext.align.dpo.dpo_loss`` (its loss, without the statistics).
"""

from __future__ import annotations

import torch

from neuraltext.align import dpo_loss
from neuraltext.align import kl_penalized_reward
from neuraltext.align import clipped_surrogate
from neuraltext.align import bradley_terry_loss
from neuraltext.labs.check import Case, Exercise


def _randn(g: torch.Generator, *shape: int, scale: float = 1.0, dtype=torch.float32) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=g, dtype=dtype)


def _bradley_terry_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    r_w, r_l = _randn(g, 16), _randn(g, 16)
    equal = _randn(g, 5)
    return [
        Case("16 pairs", (r_w, r_l)),
        Case("one pair", (_randn(g, 1), _randn(g, 1))),
        Case("equal rewards (the loss is log 2)", (equal, equal.clone())),
        Case("the same pairs shifted by 100: only differences matter", (r_w + 100.0, r_l + 100.0)),
        Case("large margins, both signs (is your log-sigmoid stable?)",
             (torch.tensor([200.0, -200.0, 50.0, -90.0]), torch.tensor([-200.0, 200.0, -40.0, 10.0]))),
        Case("float64", (_randn(g, 8, dtype=torch.float64), _randn(g, 8, dtype=torch.float64))),
    ]


def _answer_mask(g: torch.Generator, B: int, T: int, lengths=None) -> torch.Tensor:
    """A completion mask ``(B, T)`` of 0/1 (long, as in ``rollout``): each answer starts after a prompt."""
    mask = torch.zeros(B, T, dtype=torch.long)
    for b in range(B):
        start = int(torch.randint(0, T // 2, (1,), generator=g))
        length = lengths[b] if lengths is not None else int(torch.randint(1, T - start + 1, (1,), generator=g))
        mask[b, start:start + length] = 1
    return mask


def _kl_reward_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)

    def logps(B, T, dtype=torch.float32):
        return -_randn(g, B, T, dtype=dtype).abs() * 2, -_randn(g, B, T, dtype=dtype).abs() * 2

    lp, ref = logps(4, 9)
    mask = _answer_mask(g, 4, 9)
    garbage_lp, garbage_ref = lp.clone(), ref.clone()
    garbage_lp[mask == 0], garbage_ref[mask == 0] = 1e3, -1e3           # what padding may hold: not log-probs
    empty = _answer_mask(g, 3, 6, lengths=[3, 0, 4])
    lp64, ref64 = logps(5, 7, torch.float64)
    same = -_randn(g, 2, 5).abs()
    return [
        Case("4 answers of different lengths, beta 0.2", (_randn(g, 4), lp, ref, mask, 0.2)),
        Case("padding positions hold large values", (_randn(g, 4), garbage_lp, garbage_ref, mask, 0.2)),
        Case("an empty answer (mask all 0)", (_randn(g, 3), *logps(3, 6), empty, 0.1)),
        Case("policy equal to the reference: no penalty", (_randn(g, 2), same, same.clone(), torch.ones(2, 5, dtype=torch.long), 0.5)),
        Case("beta = 0", (_randn(g, 4), lp, ref, mask, 0.0)),
        Case("a float mask, beta 1", (_randn(g, 4), lp, ref, mask.float(), 1.0)),
        Case("float64", (_randn(g, 5, dtype=torch.float64), lp64, ref64, _answer_mask(g, 5, 7), 0.05)),
    ]


def _clip_reference(logp, old_logp, advantages, mask, clip_eps):
    return clipped_surrogate(logp, old_logp, advantages, mask, clip_eps)[0]


def _clip_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)

    def logps(B, T, spread=0.1, dtype=torch.float32):   # pi_theta near pi_old: ratios around 1
        old = -_randn(g, B, T, dtype=dtype).abs() * 2
        return old + spread * _randn(g, B, T, dtype=dtype), old

    lp, old = logps(4, 8)
    mask = _answer_mask(g, 4, 8)
    far, far_old = logps(6, 5, spread=1.0)                # ratios from e^-2 to e^2: many clipped
    garbage, garbage_old = lp.clone(), old.clone()
    garbage[mask == 0], garbage_old[mask == 0] = 50.0, -50.0   # padding: not log-probabilities
    same = -_randn(g, 3, 6).abs()
    lp64, old64 = logps(5, 7, dtype=torch.float64)
    return [
        Case("4 answers of different lengths, eps 0.2", (lp, old, _randn(g, 4), mask, 0.2)),
        Case("ratios far from 1, advantages of both signs (min, not max)", (far, far_old, _randn(g, 6), _answer_mask(g, 6, 5), 0.2)),
        Case("the same answers, eps 0.1", (far, far_old, _randn(g, 6), _answer_mask(g, 6, 5), 0.1)),
        Case("policy equal to pi_old: rho = 1, the loss is -mean A", (same, same.clone(), _randn(g, 3), torch.ones(3, 6, dtype=torch.long), 0.2)),
        Case("padding positions hold large values", (garbage, garbage_old, _randn(g, 4), mask, 0.2)),
        Case("an empty answer (mask all 0) counts as 0", (*logps(3, 6), _randn(g, 3), _answer_mask(g, 3, 6, lengths=[2, 0, 3]), 0.2)),
        Case("float64", (lp64, old64, _randn(g, 5, dtype=torch.float64), _answer_mask(g, 5, 7), 0.3)),
    ]


def _dpo_reference(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    return dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)[0]


def _dpo_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)

    def logps(B, dtype=torch.float32):           # summed log-probabilities of answers: tens of nats
        return tuple(-30 * torch.rand(B, generator=g, dtype=dtype) for _ in range(4))

    pc, pr, rc, rr = logps(6)
    same = -30 * torch.rand(5, generator=g)
    big = torch.tensor([-10.0, -900.0, -15.0]), torch.tensor([-900.0, -10.0, -12.0])
    ref = torch.tensor([-50.0, -50.0, -14.0]), torch.tensor([-50.0, -50.0, -14.0])
    return [
        Case("6 pairs, beta 0.1", (pc, pr, rc, rr, 0.1)),
        Case("the same pairs, beta 0.5", (pc, pr, rc, rr, 0.5)),
        Case("the same pairs, beta 2", (pc, pr, rc, rr, 2.0)),
        Case("one pair", (*logps(1), 0.1)),
        Case("policy equal to the reference (the loss is log 2)", (same, same.clone() - 3.0, same.clone(), same.clone() - 3.0, 0.1)),
        Case("large margins, both signs (is your log-sigmoid stable?)", (big[0], big[1], ref[0], ref[1], 1.0)),
        Case("float64", (*logps(8, torch.float64), 0.2)),
    ]


EXERCISES = [
    Exercise(
        id="09.bradley_terry",
        title="the Bradley-Terry loss of the reward model",
        reference=bradley_terry_loss,
        cases=_bradley_terry_cases,
        hint="-mean log sigma(r_w - r_l); compute log sigma with F.logsigmoid, not log(sigmoid(...)).",
    ),
    Exercise(
        id="09.kl_reward",
        title="PPO's KL-penalised reward",
        reference=kl_penalized_reward,
        cases=_kl_reward_cases,
        hint="kl = sum over the answer's tokens (mask = 1) of log pi - log pi_ref, one number per answer; "
             "R = score - beta kl; return (R, kl).",
    ),
    Exercise(
        id="09.ppo_clip",
        title="PPO's clipped objective",
        reference=_clip_reference,
        cases=_clip_cases,
        hint="rho = exp(logp - old_logp) per token; per token -min(rho A, clamp(rho, 1 - eps, 1 + eps) A) with A "
             "one number per answer; average over each answer's masked tokens (at least 1), then over answers.",
    ),
    Exercise(
        id="09.dpo_loss",
        title="the DPO loss",
        reference=_dpo_reference,
        cases=_dpo_cases,
        hint="-mean log sigma(beta ((pc - rc) - (pr - rr))), with F.logsigmoid; a 0-dim tensor.",
    ),
]
