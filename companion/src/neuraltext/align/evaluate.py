"""Chapter 9's comparison of aligned policies (SFT, PPO, DPO) from the same starting model.

On the **held-out pairs** ``(x, y_w, y_l)`` (prompts never trained on):

* *preference accuracy*: the fraction of pairs where the policy gives the preferred answer the larger
  log-probability, ``log pi(y_w|x) > log pi(y_l|x)`` (summed over tokens);
* *reward margin*: the mean implicit-reward margin of DPO,
  ``beta [log pi/pi_ref (y_w|x) - log pi/pi_ref (y_l|x)]``, with the SFT model as ``pi_ref`` (0 for SFT itself).

On answers **sampled** from the policy for the held-out prompts:

* *KL to the reference*: the mean of ``sum_t log pi(y_t|.) - log pi_ref(y_t|.)`` over the samples, the
  one-sample estimate of ``KL(pi || pi_ref)``;
* *reward*: the reward model's mean score; *polite*: the fraction that open politely; *good*: the
  fraction the oracle :func:`neuraltext.data.preferences.judge` accepts (polite **and** naming the
  requested object), independent of any model.

The chat format is the word-level one of :func:`neuraltext.data.preferences.chat_words`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from neuraltext.align.ppo import PPOConfig, eval_mode, rollout
from neuraltext.align.sft import completion_logps, pair_batch
from neuraltext.data.preferences import POLITE_OPENERS, PreferencePair, chat_words, judge
from neuraltext.gpt.sampling import pad_left

__all__ = ["encode_pairs", "encode_prompts", "sample_answers", "policy_report"]


def encode_pairs(vocab, pairs: Sequence[PreferencePair], batch_size: int = 64, device=None) -> list[dict]:
    """``[chosen; rejected]`` batches (:func:`neuraltext.align.sft.pair_batch`) in the chat format."""
    out = []
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i:i + batch_size]
        prompts = [vocab.encode(chat_words(p.prompt)) for p in chunk]
        chosen = [vocab.encode(p.chosen.split(), eos=True) for p in chunk]
        rejected = [vocab.encode(p.rejected.split(), eos=True) for p in chunk]
        out.append(pair_batch(prompts, chosen, rejected, vocab.pad_id, device))
    return out


def encode_prompts(vocab, prompts: Sequence[str], device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ``<user> prompt <assistant>`` ids and mask, ready for generation."""
    return pad_left([vocab.encode(chat_words(p)) for p in prompts], vocab.pad_id, device)


def sample_answers(policy, ref, vocab, prompts: Sequence[str], reward_fn=None, max_new_tokens: int = 16,
                   temperature: float = 1.0, seed: int = 0):
    """One sampled answer per prompt: ``(texts, rollout)`` (the rollout carries log-probs, KL, scores)."""
    device = next(policy.parameters()).device
    ids, mask = encode_prompts(vocab, prompts, device)
    score = reward_fn or (lambda i, m: torch.zeros(i.shape[0], device=i.device))
    cfg = PPOConfig(batch_size=len(prompts), max_new_tokens=max_new_tokens, temperature=temperature, beta=0.0)
    gen = torch.Generator(device=device).manual_seed(seed)
    ro = rollout(policy, ref, score, ids, mask, cfg, vocab.eos_id, vocab.pad_id, gen)
    texts = []
    for row, cm in zip(ro.input_ids.tolist(), ro.completion_mask.tolist()):
        words = [vocab.itos[t] for t, m in zip(row, cm) if m]
        texts.append(" ".join(w for w in words if w != "</s>"))
    return texts, ro


@torch.no_grad()
def policy_report(policy, ref, vocab, pairs: Sequence[PreferencePair], prompts: Sequence[str], reward_fn,
                  beta: float = 0.1, samples_per_prompt: int = 4, max_new_tokens: int = 16, seed: int = 0) -> dict:
    """The comparison table's row for one policy (see the module docstring); in eval mode, the
    caller's modes restored after."""
    device = next(policy.parameters()).device
    lp, ref_lp = [], []
    with eval_mode(policy, ref):
        for b in encode_pairs(vocab, list(pairs), device=device):
            args = (b["input_ids"], b["attention_mask"], b["completion_mask"])
            lp.append(completion_logps(policy, *args))
            ref_lp.append(completion_logps(ref, *args))
    lp, ref_lp = torch.cat([x.view(2, -1) for x in lp], 1), torch.cat([x.view(2, -1) for x in ref_lp], 1)
    margin = beta * ((lp[0] - ref_lp[0]) - (lp[1] - ref_lp[1]))
    many = [p for p in prompts for _ in range(samples_per_prompt)]
    texts, ro = sample_answers(policy, ref, vocab, many, reward_fn, max_new_tokens, seed=seed)
    return {"preference accuracy": float((lp[0] > lp[1]).float().mean()), "reward margin": float(margin.mean()),
            "KL to reference": float(ro.kl.mean()), "reward (RM)": float(ro.scores.mean()),
            "polite answers": sum(any(t.startswith(o + " ,") for o in POLITE_OPENERS) for t in texts) / len(many),
            "good answers (oracle)": sum(judge(p, t) for p, t in zip(many, texts)) / len(many)}
