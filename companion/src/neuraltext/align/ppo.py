"""RLHF's third step: PPO against a reward model, with a KL penalty to the frozen reference.

The policy ``pi_theta`` (initialised from the SFT model) answers prompts; the reward model scores
the answers; the policy is pushed toward high-reward answers while a penalty keeps it near the
reference ``pi_ref`` (the frozen SFT model), so that it does not drift into text the reward model
was never trained on and scores wrongly ("reward hacking"). Per sampled answer ``y`` to ``x``:

    R(x, y) = r_phi(x, y) - beta * sum_t [ log pi_theta(y_t | x, y_<t) - log pi_ref(y_t | x, y_<t) ]

(Stiennon et al. 2020, Ouyang et al. 2022); the sum is the one-sample estimate of
``KL(pi_theta(.|x) || pi_ref(.|x))``, reported as "KL to the reference".

**Advantages.** PPO needs ``A_t``: how much better the token was than expected. The general
estimator is GAE (Schulman et al. 2015), :func:`gae`, which needs a learned value function
``V(s_t)`` (a second network as large as the policy, trained alongside it). Here the reward comes
once, at the end of the answer, so we use the simpler **per-sequence baseline**: every token of an
answer gets ``A = (R - mean R) / std R`` over the batch of answers (REINFORCE with a batch-mean
baseline, as in RLOO and GRPO). No critic to train, an unbiased estimate, and on short answers its
variance is small enough; GAE with a critic is what full-size PPO-RLHF uses.

**The clipped objective** (Schulman et al. 2017), for a rollout sampled by the policy before the
update (``pi_old``): with the ratio ``rho_t = pi_theta(y_t|.) / pi_old(y_t|.)``,

    L^CLIP = E_t [ min( rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t ) ]      (maximised)

The minimum removes any incentive to move ``rho_t`` outside ``[1 - eps, 1 + eps]`` in the direction
the advantage favours: past the boundary the clipped term is constant and its gradient zero, so
several gradient steps on one rollout stay safe. :func:`clipped_surrogate` returns ``-L^CLIP``
averaged over each answer's tokens and then over answers (TRL's ``GRPOTrainer`` with
``loss_type="grpo"``, whose ``_compute_loss`` holds the same clipped term).
Shapes: ``B`` answers, ``T`` tokens (prompt + answer); per-token arrays are ``(B, T - 1)``.

:func:`train_ppo` keeps its own loop rather than the shared :func:`neuraltext.training.loop.train`, whose
batches come from a fixed stream: here each batch is sampled from the policy being trained, scored,
and then reused for ``ppo_epochs`` steps against its frozen ``pi_old`` -- the rollout/update
alternation is the algorithm, and it reads best written out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from neuraltext.align.sft import completion_logps
from neuraltext.gpt.sampling import generate

__all__ = ["PPOConfig", "clipped_surrogate", "kl_penalized_reward", "baseline_advantages", "gae",
           "Rollout", "rollout", "ppo_update", "PPOHistory", "train_ppo"]


@dataclass
class PPOConfig:
    batch_size: int = 32  # prompts (answers) per rollout
    max_new_tokens: int = 16
    temperature: float = 1.0  # sampling temperature of the rollouts (1 = the policy itself)
    beta: float = 0.05  # KL penalty coefficient
    clip_eps: float = 0.2  # eps of clip(rho, 1 - eps, 1 + eps)
    ppo_epochs: int = 2  # gradient steps on each rollout
    lr: float = 5e-5
    max_grad_norm: float = 1.0

    def __post_init__(self):
        if not 0 < self.clip_eps < 1:
            raise ValueError(f"PPOConfig.clip_eps must be in (0, 1), got {self.clip_eps}")
        if self.beta < 0:
            raise ValueError(f"PPOConfig.beta must be >= 0, got {self.beta}")
        for name in ("batch_size", "max_new_tokens", "ppo_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"PPOConfig.{name} must be >= 1, got {getattr(self, name)}")


def clipped_surrogate(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                      mask: torch.Tensor, clip_eps: float = 0.2) -> tuple[torch.Tensor, dict]:
    """``-L^CLIP``: per-token ``-min(rho A, clip(rho, 1-eps, 1+eps) A)``, mean over each row's masked
    tokens, then over rows. ``advantages`` ``(B,)`` (one per answer) or ``(B, T)``. Returns
    ``(loss, {"clip_fraction": share of tokens whose ratio was clipped})``."""
    if not (isinstance(clip_eps, (int, float)) and 0 < clip_eps < 1):
        raise ValueError(f"clipped_surrogate: clip_eps must be a number in (0, 1), got {clip_eps!r}")
    if advantages.dim() == 1:
        advantages = advantages[:, None]
    rho = torch.exp(logp - old_logp)  # pi_theta / pi_old, per token
    unclipped = rho * advantages
    clipped = torch.clamp(rho, 1 - clip_eps, 1 + clip_eps) * advantages
    per_token = -torch.min(unclipped, clipped)
    mask = mask.to(per_token.dtype)
    loss = ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    outside = ((rho < 1 - clip_eps) | (rho > 1 + clip_eps)).to(mask.dtype)
    return loss, {"clip_fraction": (outside * mask).sum() / mask.sum().clamp(min=1.0)}


def kl_penalized_reward(score: torch.Tensor, logp: torch.Tensor, ref_logp: torch.Tensor,
                        mask: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(R (B,), kl (B,))``: ``R = score - beta * kl``, ``kl = sum_t mask (log pi - log pi_ref)``."""
    kl = ((logp - ref_logp) * mask).sum(-1)
    return score - beta * kl, kl


def baseline_advantages(R: torch.Tensor, whiten: bool = True) -> torch.Tensor:
    """Per-answer advantages ``R - mean(R)``, divided by ``std(R)`` when ``whiten``."""
    A = R - R.mean()
    return A / (R.std() + 1e-8) if whiten and R.numel() > 1 else A


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation over ``(B, T)`` per-token rewards and values (0 after the end):

        delta_t = r_t + gamma V_{t+1} - V_t,    A_t = delta_t + gamma lam A_{t+1},    returns = A + V.

    ``lam = 1`` gives Monte-Carlo returns minus ``V``; ``lam = 0`` the one-step TD error."""
    mask = mask.to(rewards.dtype)
    values = values * mask
    A = torch.zeros_like(rewards)
    next_A = torch.zeros_like(rewards[:, 0])
    next_V = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_V - values[:, t]
        next_A = (delta + gamma * lam * next_A) * mask[:, t]
        next_V = values[:, t]
        A[:, t] = next_A
    return A, A + values


@dataclass
class Rollout:
    """One batch of sampled answers with everything the update needs (no gradients)."""

    input_ids: torch.Tensor  # (B, T) left-padded prompt + answer
    attention_mask: torch.Tensor  # (B, T)
    completion_mask: torch.Tensor  # (B, T) 1 on answer tokens (up to and including </s>)
    old_logps: torch.Tensor  # (B, T - 1) per-token log pi_old
    ref_logps: torch.Tensor  # (B, T - 1) per-token log pi_ref
    scores: torch.Tensor  # (B,) reward model
    kl: torch.Tensor  # (B,)
    advantages: torch.Tensor  # (B,)


@torch.no_grad()
def rollout(policy, ref, reward_fn: Callable, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
            cfg: PPOConfig, eos_id: int, pad_id: int = 0, generator=None) -> Rollout:
    """Sample answers to left-padded prompts, score them (``reward_fn(input_ids, attention_mask) ->
    (B,)``), and compute the KL-penalised rewards and the advantages."""
    policy.eval()
    ids = generate(policy, prompt_ids, prompt_mask, max_new_tokens=cfg.max_new_tokens,
                   temperature=cfg.temperature, stop_ids=[eos_id], pad_id=pad_id, generator=generator)
    answer = ids[:, prompt_ids.shape[1]:]
    is_eos = (answer == eos_id).long()
    valid = (torch.cumsum(is_eos, 1) - is_eos) == 0  # up to and including the first </s>
    attention_mask = torch.cat([prompt_mask.bool(), valid], 1).long()
    completion_mask = torch.cat([torch.zeros_like(prompt_mask, dtype=torch.bool), valid], 1).long()
    old = completion_logps(policy, ids, attention_mask, completion_mask, per_token=True)
    ref_lp = completion_logps(ref, ids, attention_mask, completion_mask, per_token=True)
    scores = reward_fn(ids, attention_mask).float()
    R, kl = kl_penalized_reward(scores, old, ref_lp, completion_mask[:, 1:], cfg.beta)
    return Rollout(ids, attention_mask, completion_mask, old, ref_lp, scores, kl, baseline_advantages(R))


def ppo_update(policy, optimizer: torch.optim.Optimizer, ro: Rollout, cfg: PPOConfig) -> dict:
    """``cfg.ppo_epochs`` clipped-surrogate gradient steps on one rollout (the whole batch at once)."""
    policy.train()
    stats = {}
    for _ in range(cfg.ppo_epochs):
        logp = completion_logps(policy, ro.input_ids, ro.attention_mask, ro.completion_mask, per_token=True)
        loss, stats = clipped_surrogate(logp, ro.old_logps, ro.advantages, ro.completion_mask[:, 1:], cfg.clip_eps)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
        optimizer.step()
    return {"loss": loss.detach(), **stats}


@dataclass
class PPOHistory:
    reward: list[float] = field(default_factory=list)  # mean reward-model score per rollout
    kl: list[float] = field(default_factory=list)  # mean KL(pi || pi_ref) estimate per rollout
    loss: list[float] = field(default_factory=list)
    clip_fraction: list[float] = field(default_factory=list)


def train_ppo(policy, ref, reward_fn: Callable, sample_prompts: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
              cfg: PPOConfig, steps: int, eos_id: int, pad_id: int = 0, seed: int = 0) -> PPOHistory:
    """``steps`` PPO iterations (rollout, then ``ppo_epochs`` updates). ``sample_prompts(step)``
    returns left-padded ``(prompt_ids, prompt_mask)``. Statistics stay on the device until the end."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    ref.eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    device = next(policy.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=0.0)
    rows = []
    for step in range(steps):
        prompt_ids, prompt_mask = sample_prompts(step)
        ro = rollout(policy, ref, reward_fn, prompt_ids, prompt_mask, cfg, eos_id, pad_id, gen)
        s = ppo_update(policy, optimizer, ro, cfg)
        rows.append(torch.stack([ro.scores.mean(), ro.kl.mean(), s["loss"], s["clip_fraction"]]))
    table = torch.stack(rows).cpu().tolist()  # one host copy
    return PPOHistory(*(list(col) for col in zip(*table)))
