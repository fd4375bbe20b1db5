"""Supervised fine-tuning (SFT): the loss on the completion only, and completion log-probabilities.

A pre-trained language model continues text; an assistant answers. The first step of RLHF
(Ouyang et al. 2022) fine-tunes the model on demonstrations ``(x, y)`` (a prompt and a good
answer) with the same next-token loss as pre-training, but counted on the *completion* tokens only:

    L_SFT = -(1/N) sum_{(x, y)} sum_{t=1..|y|} log pi(y_t | x, y_<t)      (N = number of completion tokens)

The prompt is context, not something to imitate; padding is nothing at all. Both get the label
``-100`` (PyTorch's and ``transformers``' ``ignore_index``), exactly as TRL's ``SFTTrainer`` with
``completion_only_loss``. The prompt and answer are laid out with a *chat template*: special tokens
that mark who speaks (``<user> ... <assistant> ...``; for a ``transformers`` tokenizer its own
template, :func:`chat_texts`).

Every later step needs the same quantity, the log-probability of a completion under a model,

    log pi(y | x) = sum_t log pi(y_t | x, y_<t),

*summed* over the completion tokens (TRL's convention for DPO; some tutorials average over tokens
instead, which removes the length of the answer from the score and changes the loss).
:func:`completion_logps` computes it from the logits of any causal LM (ours return ``(logits,
present)``, ``transformers``' return an object with ``.logits``).

Layout: sequences are right-padded; ``completion_mask`` ``(B, T)`` is 1 on completion tokens, 0 on
the prompt and on padding (as in TRL). Logits at position ``t`` predict token ``t + 1``, so
per-token log-probabilities are ``(B, T - 1)`` and use ``completion_mask[:, 1:]``.
Shapes: ``B`` batch, ``T`` tokens, ``V`` vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from neuraltext.bert.model import IGNORE_INDEX  # -100: the label a loss skips (one definition, chapter 7's)
from neuraltext.gpt.chat import chat_split

__all__ = ["IGNORE_INDEX", "sft_example", "sft_batch", "pack", "sft_loss", "logits_of", "token_logps",
           "completion_logps", "pair_batch", "chat_texts"]


def sft_example(prompt_ids: Sequence[int], completion_ids: Sequence[int]) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)`` of one demonstration: labels copy the completion, -100 on the prompt."""
    if len(completion_ids) == 0:
        raise ValueError("completion_ids is empty: a demonstration needs at least one answer token")
    ids = list(prompt_ids) + list(completion_ids)
    return ids, [IGNORE_INDEX] * len(prompt_ids) + list(completion_ids)


def sft_batch(examples: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int, device=None) -> dict:
    """Right-pad ``(prompt_ids, completion_ids)`` pairs: ``input_ids``, ``attention_mask``, ``labels``
    (-100 on prompt and padding), ``completion_mask``; all ``(B, T)``."""
    rows = [sft_example(p, c) for p, c in examples]
    T = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), T), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), T), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros(len(rows), T, dtype=torch.long)
    for i, (ids, lab) in enumerate(rows):
        input_ids[i, :len(ids)] = torch.tensor(ids)
        labels[i, :len(lab)] = torch.tensor(lab)
        attention_mask[i, :len(ids)] = 1
    batch = dict(input_ids=input_ids, attention_mask=attention_mask, labels=labels,
                 completion_mask=(labels != IGNORE_INDEX).long())
    return {k: v.to(device) for k, v in batch.items()}


def pack(examples: Sequence[tuple[Sequence[int], Sequence[int]]], block_size: int, device=None) -> dict:
    """Packing: concatenate demonstrations into rows of exactly ``block_size`` tokens (no padding).

    Labels keep -100 on every prompt. Attention is *not* reset between demonstrations (a token may
    see the end of the previous one), the usual simplification; positions run across the row.
    The last incomplete row is dropped."""
    if block_size < 2:
        raise ValueError(f"block_size must be >= 2, got {block_size}")
    ids, labels = [], []
    for p, c in examples:
        i, lab = sft_example(p, c)
        ids += i
        labels += lab
    n = len(ids) // block_size
    if n == 0:
        raise ValueError(f"{len(ids)} tokens in all do not fill one block of block_size={block_size}")
    input_ids = torch.tensor(ids[: n * block_size]).view(n, block_size)
    labels_t = torch.tensor(labels[: n * block_size]).view(n, block_size)
    return dict(input_ids=input_ids.to(device), attention_mask=torch.ones_like(input_ids).to(device),
                labels=labels_t.to(device), completion_mask=(labels_t != IGNORE_INDEX).long().to(device))


def logits_of(output) -> torch.Tensor:
    """The logits of a causal LM's output: ours return ``(logits, present)``, transformers' ``.logits``."""
    if isinstance(output, tuple):
        return output[0]
    return output.logits


def sft_loss(model, batch: dict) -> torch.Tensor:
    """Mean next-token cross-entropy over the completion tokens (labels != -100) of ``batch``."""
    logits = logits_of(model(batch["input_ids"], attention_mask=batch["attention_mask"]))  # (B, T, V)
    targets = batch["labels"][:, 1:]  # logits at t predict token t + 1
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           ignore_index=IGNORE_INDEX)


def token_logps(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """``log pi(w_{t+1} | w_<=t)`` for t = 0..T-2: ``(B, T - 1)`` from logits ``(B, T, V)``."""
    x = logits[:, :-1]
    if x.dtype in (torch.float16, torch.bfloat16):  # log-softmax in float32 for half-precision logits
        x = x.float()
    logp = torch.log_softmax(x, dim=-1)
    return logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)


def completion_logps(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     completion_mask: torch.Tensor, per_token: bool = False) -> torch.Tensor:
    """Summed log-probability of each row's completion, ``(B,)``; ``per_token=True`` returns the
    masked per-token values ``(B, T - 1)`` instead (zeros outside the completion)."""
    logits = logits_of(model(input_ids, attention_mask=attention_mask))
    lp = token_logps(logits, input_ids) * completion_mask[:, 1:]
    return lp if per_token else lp.sum(-1)


def pair_batch(prompts: Sequence[Sequence[int]], chosen: Sequence[Sequence[int]],
               rejected: Sequence[Sequence[int]], pad_id: int, device=None) -> dict:
    """Preference pairs as one right-padded batch laid out ``[chosen; rejected]`` (TRL's layout):
    ``input_ids``, ``attention_mask``, ``completion_mask`` ``(2B, T)``."""
    if not (len(prompts) == len(chosen) == len(rejected)) or not prompts:
        raise ValueError(f"prompts, chosen and rejected must be non-empty and of one length, got "
                         f"{len(prompts)}, {len(chosen)}, {len(rejected)}")
    batch = sft_batch(list(zip(prompts, chosen)) + list(zip(prompts, rejected)), pad_id, device)
    batch.pop("labels")
    return batch


def chat_texts(tokenizer, prompt: str, completion: str | None = None) -> str | tuple[str, str]:
    """A transformers tokenizer's chat template: the prompt text ending with the assistant header
    (``add_generation_prompt=True``), and, with a completion, ``(prompt_text, completion_text)``
    such that ``prompt_text + completion_text`` is the full templated conversation
    (:func:`neuraltext.gpt.chat.chat_split`, shared with chapter 11)."""
    answer = [] if completion is None else [{"role": "assistant", "content": completion}]
    prompt_text, completion_text = chat_split(tokenizer, [{"role": "user", "content": prompt}], answer)
    return prompt_text if completion is None else (prompt_text, completion_text)
