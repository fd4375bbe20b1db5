"""Diagrams of training: RLHF's steps and DPO (chapter 9), data-parallel training (appendix A).
"""

from __future__ import annotations

from neuraltext.diagrams.drawing import FONTSIZE, arrow, box, new_figure

__all__ = ["rlhf_steps", "ddp_diagram"]


def rlhf_steps():
    """RLHF's three steps (Ouyang et al. 2022), left to right: supervised fine-tuning on
    demonstrations, a reward model fitted to pairwise preferences, PPO against the reward model with
    a KL penalty to the frozen SFT model. DPO replaces steps 2 and 3 by one loss on the pairs."""
    fig, ax = new_figure(12.0, 4.6, (-0.4, 14.4), (-2.0, 3.6))
    cols = [(2.0, "1. SFT", [("demonstrations $(x, y)$", "input"), ("pre-trained LM", "state"),
                             ("$-\\log \\pi(y \\mid x)$ on $y$ only", "op"), ("SFT model $\\pi_{ref}$", "output")]),
            (7.0, "2. reward model", [("pairs $(x, y_w, y_l)$", "input"), ("SFT model + scalar head", "state"),
                                      ("$-\\log \\sigma(r_w - r_l)$", "op"), ("reward model $r_\\phi$", "output")]),
            (12.0, "3. PPO", [("prompts $x$, samples $y \\sim \\pi_\\theta$", "input"),
                              ("policy $\\pi_\\theta$ (from SFT)", "state"),
                              ("$r_\\phi - \\beta\\,\\mathrm{KL}(\\pi_\\theta \\| \\pi_{ref})$,\nclipped objective", "op"),
                              ("aligned policy", "output")])]
    for x, title, rows in cols:
        ax.text(x, 3.3, title, ha="center", fontsize=FONTSIZE + 1, weight="bold")
        for i, (text, kind) in enumerate(rows):
            y = 2.5 - 1.05 * i
            box(ax, (x, y), text, 3.6, 0.7, kind, fontsize=FONTSIZE - 1)
            if i:
                arrow(ax, (x, y + 0.7), (x, y + 0.35))
    arrow(ax, (3.8, -0.65), (5.2, -0.65), None, color="tab:blue")
    arrow(ax, (8.8, -0.65), (10.2, 0.4), None, color="tab:green")
    ax.text(9.1, -0.95, "scores", color="tab:green", fontsize=FONTSIZE - 1)
    ax.text(2.0, -1.3, "$\\pi_{ref}$ stays frozen: the KL anchor of step 3", ha="center", color="tab:blue",
            fontsize=FONTSIZE - 1)
    ax.text(7.0, -1.85, "DPO: steps 2 and 3 in one loss on the pairs (no reward model, no sampling)",
            ha="center", color="tab:red", fontsize=FONTSIZE - 1)
    return fig


def ddp_diagram(n_processes: int = 2):
    """Data-parallel training (``DistributedDataParallel`` under ``torchrun``): each process holds a
    full copy of the model and its own shard of every global batch; after the backward pass the
    gradients are averaged over the processes (all-reduce), so every copy takes the same step."""
    width = 4.2
    xs = [2.1 + width * p for p in range(n_processes)]
    fig, ax = new_figure(1.6 + 4.2 * n_processes, 6.0, (-0.2, xs[-1] + 2.3), (-1.0, 6.3))
    box(ax, ((xs[0] + xs[-1]) / 2, 5.7), "global batch of $P \\cdot B$ examples (DistributedSampler)",
        width * n_processes - 0.4, 0.55, "input")
    for p, x in enumerate(xs):
        arrow(ax, (x, 5.4), (x, 4.95), f"shard {p}", text_offset=(0.1, 0.0))
        box(ax, (x, 4.3), f"process {p}: model copy $\\theta$\nforward on $B$ examples", 3.4, 0.8, "state")
        arrow(ax, (x, 3.88), (x, 3.35))
        box(ax, (x, 3.05), f"backward: $g_{p}$", 3.4, 0.55, "gate")
        arrow(ax, (x, 2.76), (x, 1.95))
        box(ax, (x, 0.0), "optimiser step\n$\\theta \\leftarrow \\theta - \\eta\\, g$", 3.4, 0.8, "output")
    box(ax, ((xs[0] + xs[-1]) / 2, 1.55), "all-reduce: $g = \\frac{1}{P} \\sum_p g_p$  (gloo on CPUs, nccl on GPUs)",
        width * n_processes - 0.4, 0.7, "attention")
    for x in xs:
        arrow(ax, (x, 1.2), (x, 0.42))
    ax.text((xs[0] + xs[-1]) / 2, -0.75, "identical steps keep the copies identical; rank 0 logs and saves",
            ha="center", fontsize=FONTSIZE - 1, color="tab:blue")
    ax.set_title(f"Data-parallel training on {n_processes} processes (torchrun + DistributedDataParallel)",
                 fontsize=FONTSIZE + 1)
    return fig
