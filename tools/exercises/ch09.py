"""Writes chapter 9's exercises section (labs form). Run: .venv/bin/python tools/exercises/ch09.py

The order follows the chapter (reward model, PPO's reward and clipped objective, DPO); the reward-hacking
experiment follows the PPO exercises, which the chapter's discussion of reward hacking refers to.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nb import code, exercise, exercises_intro, replace_exercises, solution, solution_end, solution_start  # noqa: E402

CELLS = [
    exercises_intro("Exercises 1, 2, 3 and 5 are", "Exercises 4 and 6 are experiments and questions about the chapter's models."),
    code("""import torch
import torch.nn.functional as F
from neuraltext import labs"""),
    exercise("ex-09-bradley-terry", "The reward model's loss", r"""
Write `my_bradley_terry_loss(r_chosen, r_rejected)`: the Bradley-Terry loss {eq}`bradley-terry` of a
batch of pairs, $-\frac{1}{B}\sum_b \log \sigma(r_{w,b} - r_{l,b})$, from two tensors of rewards of
shape `(B,)`; return a 0-dim tensor. The check compares it with
`neuraltext.align.reward.bradley_terry_loss`, also on equal rewards, on rewards shifted by a constant and
on margins of hundreds, where $\log(\sigma(z))$ computed in two steps overflows."""),
    solution_start("ex-09-bradley-terry", r"""`F.logsigmoid` computes $\log \sigma(z) = -\log(1 + e^{-z})$ without forming $\sigma(z)$,
which rounds to 0 for $z$ below about $-100$ in float32:"""),
    code('''def my_bradley_terry_loss(r_chosen, r_rejected):
    """-mean log sigma(r_chosen - r_rejected), from rewards (B,) each."""
    ### BEGIN SOLUTION
    return -F.logsigmoid(r_chosen - r_rejected).mean()
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("09.bradley_terry", my_bradley_terry_loss)'),
    exercise("ex-09-kl-reward", "PPO's penalised reward", r"""
Write `my_kl_reward(score, logp, ref_logp, mask, beta)` returning `(R, kl)`, the reward
{eq}`kl-reward` that PPO maximises and the KL estimate it subtracts:
$\mathrm{kl}_b = \sum_t m_{b,t}\,\big(\log \pi_\theta(y_t \mid x, y_{<t}) - \log \pi_{ref}(y_t \mid x, y_{<t})\big)$
and $R_b = r_b - \beta\, \mathrm{kl}_b$. `score` is the reward model's score `(B,)`; `logp` and
`ref_logp` are the per-token log-probabilities `(B, T)` of the sampled tokens under the policy and the
reference; `mask` `(B, T)` is 1 on the answer's tokens and 0 on the prompt and the padding (whose
log-probabilities mean nothing). The check compares it with `neuraltext.align.ppo.kl_penalized_reward`."""),
    solution_start("ex-09-kl-reward", "Mask the per-token log-ratios, sum them over the answer, subtract $\\beta$ times the sum:"),
    code('''def my_kl_reward(score, logp, ref_logp, mask, beta):
    """(R, kl), each (B,): kl = sum_t mask (logp - ref_logp), R = score - beta kl."""
    ### BEGIN SOLUTION
    kl = ((logp - ref_logp) * mask).sum(-1)
    return score - beta * kl, kl
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("09.kl_reward", my_kl_reward)'),
    exercise("ex-09-ppo-clip", "PPO's clipped objective", r"""
Write `my_ppo_clip_loss(logp, old_logp, advantages, mask, clip_eps)`, the loss that PPO minimises, minus
the clipped objective {eq}`ppo-clip`: per token, with $\rho_t = \exp(\log \pi_\theta - \log \pi_{\theta_{old}})$
and the answer's advantage $A_b$, the value $-\min\big(\rho_t A_b,\ \mathrm{clip}(\rho_t, 1 - \epsilon, 1 + \epsilon) A_b\big)$;
average it over each answer's tokens (`mask` 1), then over the answers, and return a 0-dim tensor.
`logp` and `old_logp` are the per-token log-probabilities `(B, T)` of the sampled tokens under the
policy being updated and under the policy that sampled them; `advantages` is `(B,)`, one per answer;
an answer with no token counts as 0. The check compares it with the loss of
`neuraltext.align.ppo.clipped_surrogate`, also with ratios far outside $[1 - \epsilon, 1 + \epsilon]$ for
advantages of both signs, with $\rho = 1$, and with padding that holds large values."""),
    solution_start("ex-09-ppo-clip", r"""The minimum picks, for a positive advantage, the ratio capped at $1 + \epsilon$, and for a
negative one, the ratio floored at $1 - \epsilon$; the mask is applied before the two averages, and
the division by the answer's length is kept at least 1 for an empty answer:"""),
    code('''def my_ppo_clip_loss(logp, old_logp, advantages, mask, clip_eps):
    """-mean over answers of the mean over answer tokens of min(rho A, clip(rho, 1-eps, 1+eps) A)."""
    ### BEGIN SOLUTION
    rho = torch.exp(logp - old_logp)
    A = advantages[:, None]
    per_token = -torch.min(rho * A, torch.clamp(rho, 1 - clip_eps, 1 + clip_eps) * A)
    mask = mask.to(per_token.dtype)
    return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("09.ppo_clip", my_ppo_clip_loss)'),
    exercise("ex-09-hacking", "Between the penalty and none", r"""
The chapter ran PPO at the penalty $\beta = 0.2$ and at $\beta = 0$. Run it at $\beta = 0.05$ and
$\beta = 0.1$ (same learning rate and iterations), over at least three seeds each
(`neuraltext.align.seeds.run_seed(seed, Recipe(hacking={...}))`, a few minutes per seed), and report,
per $\beta$, the KL to the reference, the reward model's score and the oracle's share with their
standard errors. Where, between $\beta = 0.2$ and $\beta = 0$, does the reward model's score stop
telling you whether the answers got better?"""),
    solution("ex-09-hacking", r"""
The answer is a measurement, so it is graded on how it is made rather than on one number. A good
answer: changes only $\beta$ (the `hacking` dictionary of `Recipe`, e.g.
`{"beta 0.05": {"beta": 0.05}, "beta 0.1": {"beta": 0.1}}`); uses at least three seeds and reports
mean $\pm$ standard error (`neuraltext.align.seeds.summarize`); reads the KL and the reward model's
score against the oracle's share, and says "no difference" wherever two intervals overlap rather
than ranking by the means. The chapter's table and its summary over seeds give the two ends to compare
with: the smaller $\beta$, the further the policy may move from the SFT model (the KL), and the reward
model's score is only worth what it says about the oracle's share at that distance."""),
    exercise("ex-09-dpo", "The DPO loss", r"""
Write `my_dpo_loss(pc, pr, rc, rr, beta)`, the DPO loss {eq}`dpo` from four tensors `(B,)` of summed
log-probabilities: the policy's on the chosen and the rejected answers (`pc`, `pr`) and the reference's
(`rc`, `rr`); return a 0-dim tensor. The check compares it with the loss of
`neuraltext.align.dpo.dpo_loss` for several $\beta$, a policy equal to the reference, and margins of
hundreds of nats."""),
    solution_start("ex-09-dpo", r"""Bradley-Terry on the implicit rewards $\beta \log \pi_\theta / \pi_{ref}$, with
`F.logsigmoid` for the same reason as in exercise 1:"""),
    code('''def my_dpo_loss(pc, pr, rc, rr, beta):
    """-mean log sigma(beta ((pc - rc) - (pr - rr))), from summed log-probabilities (B,) each."""
    ### BEGIN SOLUTION
    return -F.logsigmoid(beta * ((pc - rc) - (pr - rr))).mean()
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("09.dpo_loss", my_dpo_loss)'),
    exercise("ex-09-average", "Summed or averaged log-probabilities", r"""
Average the log-probabilities over the answer's tokens instead of summing them (divide by
`completion_mask[:, 1:].sum(-1)`). Is it still the same loss? Which answers does it favour?"""),
    solution("ex-09-average", r"""
No: with averages, $\beta$ multiplies a per-token log-ratio, so a long answer weighs as much as a short
one and the effective $\beta$ shrinks by the answer length. TRL and the paper sum; length differences
then enter the loss (and, through the margin, the accuracy)."""),
]

if __name__ == "__main__":
    replace_exercises(Path(__file__).resolve().parents[2] / "book" / "09_alignment.ipynb", CELLS)
