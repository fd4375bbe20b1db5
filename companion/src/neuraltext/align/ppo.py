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
once, at the end of the answer, so we use a **per-prompt group baseline** instead: each prompt is
answered ``k`` times (``samples_per_prompt``) and every token of answer ``i`` gets one advantage,
computed from the rewards of the same prompt's answers only:

* RLOO (Ahmadian et al. 2024), :func:`rloo_advantages`: ``A_i = R_i - 1/(k-1) sum_{j != i} R_j``,
  the leave-one-out mean of the *other* answers, so the baseline does not contain ``R_i`` and the
  estimate stays unbiased;
* GRPO (Shao et al. 2024), :func:`grpo_advantages`: ``A_i = (R_i - mean_g R) / (std_g R + 1e-4)``
  over the prompt's group ``g`` (TRL's ``GRPOTrainer``), scaled, slightly biased.

A prompt that is easy (every answer scores high) then pushes nothing, and a hard one is not
punished for being hard: a baseline shared across different prompts would mix the two.
No critic to train; GAE with a critic is what full-size PPO-RLHF uses.

**Dropout is off in every forward pass of PPO** -- sampling, ``pi_old``, ``pi_ref`` and the update
(TRL's ``disable_dropout``): the ratio ``rho_t`` compares the policy before and after a step, and
with dropout on it would differ from 1 at the first step on a rollout although nothing had changed.
Gradients flow in eval mode all the same; the caller's train/eval mode is restored at the end.

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
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from neuraltext.align.sft import completion_logps
from neuraltext.gpt.sampling import generate

__all__ = ["BASELINES", "PPOConfig", "clipped_surrogate", "kl_penalized_reward", "rloo_advantages",
           "grpo_advantages", "group_advantages", "gae", "eval_mode", "Rollout", "rollout", "ppo_update",
           "PPOHistory", "train_ppo"]


BASELINES = ("rloo", "grpo")


@dataclass
class PPOConfig:
    batch_size: int = 8  # prompts per rollout
    samples_per_prompt: int = 4  # k answers to each prompt: the group of the baseline
    baseline: str = "rloo"  # "rloo" (leave-one-out mean) or "grpo" (group mean and std)
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
        if not self.beta >= 0:
            raise ValueError(f"PPOConfig.beta must be >= 0, got {self.beta}")
        for name in ("batch_size", "max_new_tokens", "ppo_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"PPOConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.samples_per_prompt < 2:
            raise ValueError(f"PPOConfig.samples_per_prompt must be >= 2 (the baseline of an answer is "
                             f"the same prompt's other answers), got {self.samples_per_prompt}")
        if self.baseline not in BASELINES:
            raise ValueError(f"PPOConfig.baseline must be one of {BASELINES}, got {self.baseline!r}")
        for name in ("temperature", "lr", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"PPOConfig.{name} must be > 0, got {getattr(self, name)}")


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


def _groups(R: torch.Tensor, k: int) -> torch.Tensor:
    if R.dim() != 1 or k < 2 or R.numel() % k:
        raise ValueError(f"rewards must be (n_prompts * k,) with the k >= 2 answers of each prompt "
                         f"consecutive, got shape {tuple(R.shape)} and k = {k}")
    return R.view(-1, k)  # (n_prompts, k)


def rloo_advantages(R: torch.Tensor, k: int) -> torch.Tensor:
    """RLOO: ``A_i = R_i - 1/(k-1) sum_{j != i} R_j`` over the ``k`` answers of the same prompt
    (consecutive in ``R``, ``(n_prompts * k,)``): each answer's baseline leaves its own reward out."""
    g = _groups(R, k)
    leave_one_out = (g.sum(1, keepdim=True) - g) / (k - 1)
    return (g - leave_one_out).reshape(-1)


def grpo_advantages(R: torch.Tensor, k: int, eps: float = 1e-4) -> torch.Tensor:
    """GRPO: ``A_i = (R_i - mean_g R) / (std_g R + eps)`` over the ``k`` answers of the same prompt
    (consecutive in ``R``); ``std`` with Bessel's correction, as TRL's ``GRPOTrainer``."""
    g = _groups(R, k)
    return ((g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + eps)).reshape(-1)


def group_advantages(R: torch.Tensor, k: int, baseline: str = "rloo") -> torch.Tensor:
    """The advantages of ``baseline`` (``"rloo"`` or ``"grpo"``) for groups of ``k`` answers."""
    if baseline == "rloo":
        return rloo_advantages(R, k)
    if baseline == "grpo":
        return grpo_advantages(R, k)
    raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}")


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


@contextmanager
def eval_mode(*models):
    """Every model in eval mode (dropout off) inside the block; each one's own mode restored after."""
    modes = [m.training for m in models]
    for m in models:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(models, modes):
            m.train(mode)


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
    rewards: torch.Tensor  # (B,) R = score - beta kl
    advantages: torch.Tensor | None = None  # (B,) set by train_ppo from each prompt's group


@torch.no_grad()
def rollout(policy, ref, reward_fn: Callable, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
            cfg: PPOConfig, eos_id: int, pad_id: int = 0, generator=None) -> Rollout:
    """Sample one answer to each row of the left-padded prompts, score it (``reward_fn(input_ids,
    attention_mask) -> (B,)``) and compute the KL-penalised reward ``R``; policy and reference run
    in eval mode (dropout off), and keep their own modes after the call."""
    with eval_mode(policy, ref):
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
    return Rollout(ids, attention_mask, completion_mask, old, ref_lp, scores, kl, R)


def ppo_update(policy, optimizer: torch.optim.Optimizer, ro: Rollout, cfg: PPOConfig) -> dict:
    """``cfg.ppo_epochs`` clipped-surrogate gradient steps on one rollout (the whole batch at once),
    in eval mode like the rollout (dropout off: ``rho = 1`` before the first step)."""
    if ro.advantages is None:
        raise ValueError("the rollout has no advantages: set ro.advantages = group_advantages(ro.rewards, k)")
    stats = {}
    with eval_mode(policy):
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


def train_ppo(policy, ref, reward_fn: Callable, sample_prompts: Callable[[int, int], tuple[torch.Tensor, torch.Tensor]],
              cfg: PPOConfig, steps: int, eos_id: int, pad_id: int = 0, seed: int = 0) -> PPOHistory:
    """``steps`` PPO iterations: ``sample_prompts(step, cfg.batch_size)`` returns that many left-padded
    ``(prompt_ids, prompt_mask)``; each prompt is answered ``cfg.samples_per_prompt`` times, the
    advantages come from each prompt's group (``cfg.baseline``), then ``ppo_epochs`` updates.
    ``batch_size * samples_per_prompt`` answers per rollout. Statistics stay on the device until the end."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    ref.eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    device = next(policy.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=0.0)
    k, rows = cfg.samples_per_prompt, []
    for step in range(steps):
        prompt_ids, prompt_mask = sample_prompts(step, cfg.batch_size)
        if prompt_ids.shape[0] != cfg.batch_size:
            raise ValueError(f"sample_prompts(step, {cfg.batch_size}) returned {prompt_ids.shape[0]} prompts")
        ro = rollout(policy, ref, reward_fn, prompt_ids.repeat_interleave(k, 0), prompt_mask.repeat_interleave(k, 0),
                     cfg, eos_id, pad_id, gen)  # the k answers of a prompt are consecutive rows
        ro.advantages = group_advantages(ro.rewards, k, cfg.baseline)
        s = ppo_update(policy, optimizer, ro, cfg)
        rows.append(torch.stack([ro.scores.mean(), ro.kl.mean(), s["loss"], s["clip_fraction"]]))
    table = torch.stack(rows).cpu().tolist()  # one host copy
    return PPOHistory(*(list(col) for col in zip(*table)))
