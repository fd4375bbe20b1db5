"""Chapter 9's figures beyond RLHF's three steps: what PPO and DPO each need, and the reward model's
scores of sampled answers before and after training."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from neuraltext.diagrams.drawing import FONTSIZE, arrow, box, new_figure

__all__ = ["ppo_vs_dpo", "reward_histograms"]


def ppo_vs_dpo():
    """Side by side, one training step of each. PPO: prompts -> k samples from the policy -> the reward
    model scores them, the frozen reference gives the KL penalty, the group of each prompt gives the
    baseline -> clipped update; three models in memory (policy, reference, reward model) and sampling
    in the loop. DPO: given preference pairs -> the policy's and the (pre-computed) reference's summed
    log-probabilities -> one classification loss; no reward model, no sampling."""
    fig, ax = new_figure(12.0, 5.0, (-0.3, 14.3), (-1.4, 4.4))
    ax.text(3.5, 4.1, "PPO (RLHF step 3)", ha="center", fontsize=FONTSIZE + 1, weight="bold")
    ax.text(10.5, 4.1, "DPO", ha="center", fontsize=FONTSIZE + 1, weight="bold")
    box(ax, (3.5, 3.4), "prompts $x$ (no answers needed)", 4.6, 0.6, "input", fontsize=FONTSIZE - 1)
    box(ax, (3.5, 2.3), "policy $\\pi_\\theta$ samples $k$ answers\n$y_1, \\dots, y_k$ per prompt (rollout)", 4.6, 0.8,
        "state", fontsize=FONTSIZE - 1)
    box(ax, (1.3, 0.9), "reward model $r_\\phi$\n(trained first)", 2.4, 0.8, "gate", fontsize=FONTSIZE - 1)
    box(ax, (3.9, 0.9), "reference $\\pi_{ref}$\n(KL penalty)", 2.2, 0.8, "gate", fontsize=FONTSIZE - 1)
    box(ax, (6.0, 0.9), "baseline: the\nprompt's group", 1.8, 0.8, "gate", fontsize=FONTSIZE - 1)
    box(ax, (3.5, -0.5), "advantages $A_i$ $\\to$ clipped objective, $\\pi_\\theta$ updated", 5.6, 0.6, "op",
        fontsize=FONTSIZE - 1)
    arrow(ax, (3.5, 3.1), (3.5, 2.7))
    for x in (1.3, 3.9, 6.0):
        arrow(ax, (3.5 + 0.5 * (x - 3.5), 1.9), (x, 1.3))
        arrow(ax, (x, 0.5), (3.5 + 0.4 * (x - 3.5), -0.2))
    box(ax, (10.5, 3.4), "pairs $(x, y_w, y_l)$ from labellers", 4.6, 0.6, "input", fontsize=FONTSIZE - 1)
    box(ax, (9.3, 1.9), "policy $\\pi_\\theta$:\n$\\log \\pi_\\theta(y_w|x)$, $\\log \\pi_\\theta(y_l|x)$", 2.6, 0.9,
        "state", fontsize=FONTSIZE - 1)
    box(ax, (12.2, 1.9), "reference $\\pi_{ref}$:\ncomputed once", 2.2, 0.9, "gate", fontsize=FONTSIZE - 1)
    box(ax, (10.5, -0.5), "$-\\log \\sigma(\\beta \\log \\frac{\\pi_\\theta}{\\pi_{ref}}(y_w)"
        " - \\beta \\log \\frac{\\pi_\\theta}{\\pi_{ref}}(y_l))$", 5.0, 0.7, "op", fontsize=FONTSIZE - 1)
    for x in (9.3, 12.2):
        arrow(ax, (10.5 + 0.5 * (x - 10.5), 3.1), (x, 2.35))
        arrow(ax, (x, 1.45), (10.5 + 0.4 * (x - 10.5), -0.15))
    ax.text(3.5, -1.25, "3 models in memory, sampling in the loop", ha="center", color="tab:red", fontsize=FONTSIZE - 1)
    ax.text(10.5, -1.25, "2 models, no reward model, no sampling", ha="center", color="tab:green",
            fontsize=FONTSIZE - 1)
    return fig


def reward_histograms(scores: Mapping[str, Sequence[float]], bins: int = 30, title: str | None = None):
    """One histogram per policy (overlaid, shared bins) of the reward model's scores of its sampled
    answers, e.g. ``{"SFT": [...], "PPO": [...], "DPO": [...]}``; each policy's mean as a dashed line."""
    import matplotlib.pyplot as plt
    import numpy as np

    if not scores or any(len(v) == 0 for v in scores.values()):
        raise ValueError(f"scores must map each policy name to a non-empty list of scores, got "
                         f"{ {k: len(v) for k, v in scores.items()} }")
    values = {k: np.asarray([float(x) for x in v]) for k, v in scores.items()}
    edges = np.histogram_bin_edges(np.concatenate(list(values.values())), bins=bins)
    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=90)
    for i, (name, v) in enumerate(values.items()):
        color = f"C{i}"
        ax.hist(v, bins=edges, alpha=0.45, color=color, label=f"{name} (mean {v.mean():.2f}, n = {len(v)})")
        ax.axvline(v.mean(), color=color, ls="--", lw=1.2)
    ax.set(xlabel="reward-model score of a sampled answer", ylabel="answers")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
