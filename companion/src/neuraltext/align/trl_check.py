"""Chapter 9's check of our DPO loss against TRL's, on a tiny random Llama: one call for the notebook.

TRL (1.16) has no standalone DPO loss: it lives inside ``DPOTrainer``. :func:`dpo_loss_vs_trl` builds
the trainer (no training), takes one batch from TRL's own data pipeline (the ``[chosen; rejected]``
rows, right-padded, with TRL's ``completion_mask``), asks the trainer for its loss, and computes ours
with :func:`neuraltext.align.dpo.dpo_loss` from the summed completion log-probabilities of the same
models on the same batch. The two agree to 1e-5 (``tests/test_align_trl.py`` checks the gradient too).

The models are two seeded random ``LlamaForCausalLM`` (hidden size 16, two layers) over a word-level
tokenizer of the pairs' own words: nothing is downloaded. Needs the ``align`` extra (``trl``,
``datasets``, ``transformers``), imported only when the function runs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence

import torch

from neuraltext.align.dpo import dpo_loss
from neuraltext.align.sft import completion_logps

__all__ = ["word_level_tokenizer", "tiny_llama", "dpo_loss_vs_trl"]

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]


def word_level_tokenizer(texts: Sequence[str]):
    """A ``transformers`` fast tokenizer whose vocabulary is the specials + the texts' words (split on spaces)."""
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = SPECIALS + sorted({w for t in texts for w in t.split()} - set(SPECIALS))
    wl = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    wl.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=wl, pad_token="<pad>", unk_token="<unk>",
                                                bos_token="<s>", eos_token="</s>")


def tiny_llama(vocab_size: int, seed: int):
    """A seeded random ``LlamaForCausalLM`` small enough to run in a second on a CPU."""
    import transformers

    torch.manual_seed(seed)
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, pad_token_id=0, bos_token_id=2, eos_token_id=3))


def dpo_loss_vs_trl(pairs: Sequence, beta: float = 0.1, seeds: tuple[int, int] = (0, 1)) -> tuple[float, float]:
    """``(ours, TRL's)`` DPO loss on one batch of ``pairs`` (objects with ``prompt``, ``chosen``,
    ``rejected``, e.g. :class:`neuraltext.data.preferences.PreferencePair`), for a random policy and
    reference seeded by ``seeds``. TRL's configs default to ``bf16=True`` even on a CPU: switched off."""
    import datasets
    import trl

    pairs = list(pairs)
    if not pairs:
        raise ValueError("pairs is empty: give at least one (prompt, chosen, rejected) pair")
    rows = {"prompt": [p.prompt for p in pairs], "chosen": [" " + p.chosen for p in pairs],
            "rejected": [" " + p.rejected for p in pairs]}
    tok = word_level_tokenizer([t for column in rows.values() for t in column])
    policy, ref = tiny_llama(len(tok), seeds[0]), tiny_llama(len(tok), seeds[1])
    with tempfile.TemporaryDirectory(prefix="neuraltext-trl-") as out:
        args = trl.DPOConfig(output_dir=out, bf16=False, use_cpu=True, per_device_train_batch_size=len(pairs),
                             report_to=[], beta=beta, disable_tqdm=True)
        trainer = trl.DPOTrainer(model=policy, ref_model=ref, args=args, processing_class=tok,
                                 train_dataset=datasets.Dataset.from_dict(rows))
        batch = next(iter(trainer.get_train_dataloader()))  # [chosen; rejected]
        theirs = trainer.compute_loss(trainer.model, dict(batch))
    ids, att, comp = batch["input_ids"], batch["attention_mask"], batch["completion_mask"]
    with torch.no_grad():
        lp, ref_lp = completion_logps(policy, ids, att, comp), completion_logps(ref, ids, att, comp)
    ours, _ = dpo_loss(*lp.chunk(2), *ref_lp.chunk(2), beta=beta)
    return float(ours), float(theirs.detach())
