"""Writes chapter 9's exercises section (labs form). Run: .venv/bin/python tools/exercises/ch09.py

The order follows the chapter (reward model, PPO, DPO) and keeps the PPO experiment as exercise 3,
which the chapter's discussion of reward hacking refers to.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nb import code, exercise, exercises_intro, replace_exercises, solution, solution_end, solution_start  # noqa: E402

CELLS = [
    exercises_intro("Exercises 1, 2 and 4 are", "Exercises 3 and 5 are experiments and questions about the chapter's models."),
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
    exercise("ex-09-hacking", "Reward hacking", r"""
Run PPO again with `beta=0.1, lr=2e-4`, then with `beta=0.0` (no KL penalty), same number of
iterations. What happens to the KL curve, to the reward model's score, to the answers, and to the
oracle's verdict?"""),
    solution("ex-09-hacking", r"""
With the weaker penalty and the larger steps the reward model's score rises further, the KL keeps
climbing, and the answers turn into polite phrases without the request: the oracle's share falls toward
zero (reward hacking). With $\beta = 0$ nothing holds the policy near the SFT model at all. A larger
$\beta$, smaller steps, or stopping early when the oracle (or a human) stops improving are the
remedies."""),
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
