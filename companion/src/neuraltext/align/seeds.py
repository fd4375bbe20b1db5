"""Chapter 9's whole recipe (base model -> SFT -> reward model -> PPO and DPO) for one seed, and its
summary over several seeds: how much of the SFT / PPO / DPO table is the method and how much the seed.

One run (:func:`run_seed`) draws every random choice of training from ``seed`` -- the base model's
initialisation and batches, the SFT batches, the reward model's head, the PPO prompts and samples,
DPO's initial state, and the evaluation samples -- while the data (``preference_data(data_seed)``)
stay fixed. It returns the row of :func:`neuraltext.align.evaluate.policy_report` for each policy:
``SFT``, ``PPO`` (the chapter's ``beta = 0.2``), ``DPO`` (``beta = 0.1``) and the reward-hacking
settings of :attr:`Recipe.hacking` (PPO with no KL penalty, and with four times the learning rate).

:func:`summarize` gives, per policy and metric, over ``n`` seeds with values ``v_s``::

    mean = 1/n sum_s v_s,   se = std(v) / sqrt(n)   (std with Bessel's correction),
    95 % interval = mean +- t_{0.975, n-1} se        (Student's t: the seeds are few)

and :func:`paired_difference` the same for ``d_s = a_s - b_s``, two policies of the same seed (they share
the SFT model and the reward model, so the difference has less spread than either): an interval that
holds 0 means the seeds cannot tell the two policies apart.

``benchmarks/alignment_seeds.py`` runs it and writes ``benchmarks/results/alignment_seeds.json``,
which the chapter reads.
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass, field, replace

import torch

from neuraltext.align.dpo import dpo_batch_loss, reference_logps
from neuraltext.align.evaluate import encode_pairs, encode_prompts, policy_report
from neuraltext.align.ppo import PPOConfig, train_ppo
from neuraltext.align.reward import RewardModel, reward_loss
from neuraltext.align.sft import sft_batch, sft_loss

__all__ = ["Recipe", "run_seed", "summarize", "paired_difference"]


@dataclass
class Recipe:
    """The chapter's sizes at its default scale (2 CPU cores, a few minutes)."""

    corpus_sentences: int = 60_000
    web_lines: int = 2000
    pretrain_epochs: int = 1
    sft_steps: int = 300
    rm_epochs: int = 2
    ppo_steps: int = 40
    dpo_epochs: int = 1
    dpo_beta: float = 0.1
    d_model: int = 64
    ppo: PPOConfig = field(default_factory=lambda: PPOConfig(
        batch_size=8, samples_per_prompt=4, max_new_tokens=24, beta=0.2, clip_eps=0.2, ppo_epochs=2, lr=5e-5))
    # name -> the PPOConfig fields changed from ``ppo``: the settings that let the policy drift
    hacking: dict = field(default_factory=lambda: {"PPO beta=0": {"beta": 0.0},
                                                   "PPO beta=0, lr x4": {"beta": 0.0, "lr": 2e-4}})
    samples_per_prompt: int = 4  # evaluation samples per held-out prompt
    max_new_tokens: int = 24


def _seed_all(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _base_and_sft(data, seed: int, recipe: Recipe, device):
    """The word vocabulary, the pre-trained base GPT and its SFT copy, as in the chapter."""
    from neuraltext.data.corpus import synthetic_corpus
    from neuraltext.data.preferences import CHAT_SPECIALS, chat_words, web_text
    from neuraltext.gpt import GPT, GPTConfig, gpt_loss
    from neuraltext.rnn import LMBatches
    from neuraltext.training import train
    from neuraltext.vocab import SPECIAL_TOKENS, Vocab

    corpus = synthetic_corpus(recipe.corpus_sentences, seed=0)
    web = web_text(recipe.web_lines, seed=0)
    vocab = Vocab.build(corpus.sentences + web + [t.split() for t in data.texts()],
                        specials=SPECIAL_TOKENS + CHAT_SPECIALS)
    lines = corpus.sentences + web
    random.Random(seed).shuffle(lines)
    stream = torch.tensor([i for line in lines for i in vocab.encode(line, eos=True)])
    _seed_all(seed)
    base = GPT(GPTConfig(vocab_size=len(vocab), max_len=64, d_model=recipe.d_model, n_heads=4, n_layers=2))
    train(base, gpt_loss, LMBatches(stream, batch_size=32, seq_len=32), epochs=recipe.pretrain_epochs,
          lr=3e-3, device=device)
    demos = [(vocab.encode(chat_words(p)), vocab.encode(a.split(), eos=True)) for p, a in data.demonstrations]
    gen = torch.Generator().manual_seed(seed)

    def sft_batches():
        order = torch.randperm(len(demos), generator=gen).tolist()
        return [sft_batch([demos[i] for i in order[k:k + 32]], vocab.pad_id) for k in range(0, len(order), 32)]

    sft = copy.deepcopy(base)
    train(sft, sft_loss, sft_batches, epochs=100, max_steps=recipe.sft_steps, lr=1e-3, device=device)
    return vocab, sft


def run_seed(seed: int, recipe: Recipe | None = None, data_seed: int = 0, device=None) -> dict[str, dict]:
    """``{policy name: policy_report row}`` for one seed of the whole recipe (module docstring)."""
    from neuraltext.data.preferences import preference_data
    from neuraltext.training import train

    recipe = recipe or Recipe()
    device = torch.device(device or "cpu")
    data = preference_data(seed=data_seed)
    vocab, sft = _base_and_sft(data, seed, recipe, device)
    train_pairs = encode_pairs(vocab, data.train, batch_size=32, device=device)
    _seed_all(seed)
    rm = RewardModel(copy.deepcopy(sft), recipe.d_model).to(device)
    train(rm, reward_loss, train_pairs, epochs=recipe.rm_epochs, lr=5e-4, device=device)
    rm.eval().requires_grad_(False)
    reward_fn = lambda ids, mask: rm(ids, mask)  # noqa: E731
    ref = copy.deepcopy(sft).eval().requires_grad_(False)
    policies = {"SFT": sft}
    settings = {"PPO": recipe.ppo, **{name: replace(recipe.ppo, **changes) for name, changes in recipe.hacking.items()}}
    for name, cfg in settings.items():
        prompt_gen = torch.Generator().manual_seed(seed + 1)

        def sample_prompts(step, n):
            idx = torch.randint(len(data.train_prompts), (n,), generator=prompt_gen).tolist()
            return encode_prompts(vocab, [data.train_prompts[i] for i in idx], device)

        policies[name] = copy.deepcopy(sft)
        train_ppo(policies[name], ref, reward_fn, sample_prompts, cfg, steps=recipe.ppo_steps, eos_id=vocab.eos_id,
                  pad_id=vocab.pad_id, seed=seed)
    dpo_train = [reference_logps(ref, b) for b in train_pairs]
    _seed_all(seed)
    policies["DPO"] = copy.deepcopy(sft)
    train(policies["DPO"], lambda m, b: dpo_batch_loss(m, b, recipe.dpo_beta), dpo_train, epochs=recipe.dpo_epochs,
          lr=1e-4, device=device)
    return {name: policy_report(model, ref, vocab, data.test, data.test_prompts, reward_fn, beta=recipe.dpo_beta,
                                samples_per_prompt=recipe.samples_per_prompt, max_new_tokens=recipe.max_new_tokens,
                                seed=seed)
            for name, model in policies.items()}


def summarize(runs: list[dict[str, dict]]) -> dict[str, dict[str, dict]]:
    """``{policy: {metric: {"mean", "se", "low", "high", "n", "values"}}}`` over the runs (one per seed):
    mean, standard error, 95 % Student-t interval (module docstring). Needs >= 2 runs."""
    from scipy.stats import t as student_t

    if len(runs) < 2:
        raise ValueError(f"summarize needs the runs of >= 2 seeds to estimate a spread, got {len(runs)}")
    n = len(runs)
    q = float(student_t.ppf(0.975, n - 1))
    out = {}
    for policy in runs[0]:
        out[policy] = {}
        for metric in runs[0][policy]:
            v = [float(r[policy][metric]) for r in runs]
            mean = sum(v) / n
            se = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1) / n)
            out[policy][metric] = {"mean": mean, "se": se, "low": mean - q * se, "high": mean + q * se,
                                   "n": n, "values": v}
    return out


def paired_difference(summary: dict, a: str, b: str, metric: str) -> dict:
    """``{"mean", "se", "low", "high", "n", "values"}`` of ``a - b`` on ``metric``, seed by seed, from
    :func:`summarize`'s output (whose ``values`` are in seed order)."""
    for name in (a, b):
        if name not in summary:
            raise ValueError(f"policy {name!r} is not in the summary; it has {sorted(summary)}")
    if metric not in summary[a]:
        raise ValueError(f"metric {metric!r} is not in the summary; it has {sorted(summary[a])}")
    d = [x - y for x, y in zip(summary[a][metric]["values"], summary[b][metric]["values"])]
    return summarize([{"d": {"d": v}} for v in d])["d"]["d"]
