"""The reward model of RLHF: a scalar head on a language model, trained on preference pairs.

Labellers compare two answers ``y_w`` (preferred) and ``y_l`` to a prompt ``x``. The Bradley-Terry
model (Bradley & Terry 1952) says that a comparison is won with probability

    P(y_w > y_l | x) = sigma(r(x, y_w) - r(x, y_l)),        sigma(z) = 1 / (1 + e^{-z}),

for some score ``r``; the reward model ``r_phi`` is fitted by maximum likelihood (Christiano et al.
2017, Stiennon et al. 2020, Ouyang et al. 2022):

    L_RM(phi) = -E_{(x, y_w, y_l)} [ log sigma(r_phi(x, y_w) - r_phi(x, y_l)) ].

Only differences of rewards matter: ``r + c`` gives the same loss. ``r_phi`` is a language model
(here initialised from the SFT model) whose final embedding ``E_t`` at the *last non-padding*
position (the end of the answer, which has read the whole conversation) goes through one linear
layer ``w^T E_t`` to a scalar, as in ``transformers``' ``*ForSequenceClassification`` with one label,
which TRL's ``RewardTrainer`` trains. Its held-out *pairwise accuracy* is the fraction of pairs with
``r(x, y_w) > r(x, y_l)``.

The batch of pairs is laid out ``[chosen; rejected]`` (TRL's layout, see
:func:`neuraltext.align.sft.pair_batch`). Shapes: ``B`` pairs, ``T`` tokens, ``d`` model width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["last_token_index", "pool_last", "RewardModel", "bradley_terry_loss", "pairwise_accuracy",
           "reward_loss", "evaluate_rewards"]


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """``(B,)`` index of the last real token of each row (left or right padding)."""
    T = attention_mask.shape[1]
    positions = torch.arange(T, device=attention_mask.device).expand_as(attention_mask)
    return torch.where(attention_mask.bool(), positions, -1).max(dim=1).values


def pool_last(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """``(B, d)``: the vector at each row's last real token, from ``hidden`` ``(B, T, d)``."""
    idx = last_token_index(attention_mask)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]


class RewardModel(nn.Module):
    """``r_phi(x, y) = w^T E_last``: a language model's final embedding at the last real token -> scalar.

    ``lm`` follows the :mod:`neuraltext.gpt.sampling` contract; ``final_norm`` names its last module
    before the de-embedding (``"ln_f"`` for :class:`neuraltext.gpt.model.GPT`, ``"norm"`` for
    :class:`neuraltext.gpt.llama.Llama`): a forward hook reads ``E_t`` there, so the LM's own code runs
    unchanged (the ``V``-wide logits it also computes are thrown away).
    """

    def __init__(self, lm: nn.Module, d_model: int, final_norm: str = "ln_f"):
        super().__init__()
        self.lm = lm
        self.final_norm = final_norm
        if not isinstance(getattr(lm, final_norm, None), nn.Module):
            raise ValueError(f"final_norm={final_norm!r} is not a module of {type(lm).__name__}")
        self.w = nn.Linear(d_model, 1, bias=False)  # the reward head
        nn.init.normal_(self.w.weight, std=1.0 / d_model ** 0.5)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Rewards ``(B,)`` of full sequences (prompt + answer)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        captured = {}
        hook = getattr(self.lm, self.final_norm).register_forward_hook(
            lambda module, args, out: captured.__setitem__("E", out))
        try:
            self.lm(input_ids, attention_mask=attention_mask)
        finally:
            hook.remove()
        return self.w(pool_last(captured["E"], attention_mask)).squeeze(-1)  # (B,)


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """``-mean log sigma(r_w - r_l)`` (``logsigmoid`` is the stable form of ``log(1 / (1 + e^{-z}))``)."""
    if r_chosen.shape != r_rejected.shape:
        raise ValueError(f"r_chosen {tuple(r_chosen.shape)} and r_rejected {tuple(r_rejected.shape)} differ")
    return -F.logsigmoid(r_chosen - r_rejected).mean()


def pairwise_accuracy(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """Fraction of pairs ranked right, ``r_w > r_l`` (a tie counts as wrong)."""
    return (r_chosen > r_rejected).float().mean()


def reward_loss(model: RewardModel, batch: dict) -> torch.Tensor:
    """The ``loss_fn`` of :func:`neuraltext.training.loop.train` on a ``[chosen; rejected]`` pair batch."""
    r = model(batch["input_ids"], batch["attention_mask"])
    r_chosen, r_rejected = r.chunk(2)
    return bradley_terry_loss(r_chosen, r_rejected)


@torch.no_grad()
def evaluate_rewards(model: RewardModel, batches) -> dict[str, float]:
    """Held-out ``loss``, pairwise ``accuracy`` and mean ``margin`` r_w - r_l over pair batches."""
    was_training = model.training
    model.eval()
    chosen, rejected = [], []
    for batch in batches:
        r_c, r_r = model(batch["input_ids"], batch["attention_mask"]).chunk(2)
        chosen.append(r_c)
        rejected.append(r_r)
    model.train(was_training)
    r_c, r_r = torch.cat(chosen), torch.cat(rejected)
    return {"loss": float(bradley_terry_loss(r_c, r_r)), "accuracy": float(pairwise_accuracy(r_c, r_r)),
            "margin": float((r_c - r_r).mean())}
