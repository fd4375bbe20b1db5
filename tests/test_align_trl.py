"""Our post-training losses against TRL 1.16's trainers, on the same tiny random Llama, batch and reference.

TRL has no standalone loss functions: the DPO loss is inside ``DPOTrainer._compute_loss``, the
reward-model loss in ``RewardTrainer.compute_loss``, the clipped surrogate in
``GRPOTrainer._compute_loss`` (there is no PPOTrainer in 1.16). Each test builds the trainer (no
training loop), takes one batch from its own data pipeline and compares its loss with ours computed
from the same model's logits. TRL 1.x configs default to ``bf16=True`` even on a CPU: switched off.
"""

from __future__ import annotations

import pytest
import torch

trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")
transformers = pytest.importorskip("transformers")

from neuraltext.align import dpo_loss
from neuraltext.align import clipped_surrogate
from neuraltext.align import bradley_terry_loss, pool_last
from neuraltext.align import completion_logps

WORDS = ["<pad>", "<unk>", "<s>", "</s>", "pourriez-vous", "appeler", "mon", "père", "?", "bien", "sûr", ",",
         "je", "vais", ".", "non", "vous-même", "avec", "plaisir"]
TOL = dict(rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                                                bos_token="<s>", eos_token="</s>")


def tiny_llama(seed: int, cls=None, **extra):
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(vocab_size=len(WORDS), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                   num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                                   pad_token_id=0, bos_token_id=2, eos_token_id=3, **extra)
    return (cls or transformers.LlamaForCausalLM)(cfg)


PAIRS = {"prompt": ["pourriez-vous appeler mon père ?", "pourriez-vous appeler ?"],
         "chosen": [" bien sûr , je vais appeler mon père .", " avec plaisir ."],
         "rejected": [" non .", " non , appeler mon père vous-même ."]}


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_dpo_loss_equals_trl(tokenizer, tmp_path, beta):
    model, ref = tiny_llama(0), tiny_llama(1)
    args = trl.DPOConfig(output_dir=str(tmp_path), bf16=False, use_cpu=True, per_device_train_batch_size=2,
                         report_to=[], beta=beta)
    trainer = trl.DPOTrainer(model=model, ref_model=ref, args=args, processing_class=tokenizer,
                             train_dataset=datasets.Dataset.from_dict(PAIRS))
    batch = next(iter(trainer.get_train_dataloader()))  # [chosen; rejected], right-padded
    theirs = trainer.compute_loss(trainer.model, dict(batch))

    ids, att, comp = batch["input_ids"], batch["attention_mask"], batch["completion_mask"]
    lp = completion_logps(model, ids, att, comp)
    with torch.no_grad():
        ref_lp = completion_logps(ref, ids, att, comp)
    ours, _ = dpo_loss(*lp.chunk(2), *ref_lp.chunk(2), beta=beta)
    torch.testing.assert_close(ours, theirs, **TOL)
    # and the gradient with respect to the policy's weights
    g_ours = torch.autograd.grad(ours, list(model.parameters()))
    g_theirs = torch.autograd.grad(trainer.compute_loss(trainer.model, dict(batch)), list(model.parameters()))
    for a, b in zip(g_ours, g_theirs):
        torch.testing.assert_close(a, b, **TOL)


def test_reward_loss_and_last_token_head_equal_trl(tokenizer, tmp_path):
    rm = tiny_llama(0, transformers.LlamaForSequenceClassification, num_labels=1)
    full = {"chosen": [p + c for p, c in zip(PAIRS["prompt"], PAIRS["chosen"])],
            "rejected": [p + r for p, r in zip(PAIRS["prompt"], PAIRS["rejected"])]}
    args = trl.RewardConfig(output_dir=str(tmp_path), bf16=False, use_cpu=True, per_device_train_batch_size=2,
                            report_to=[])
    trainer = trl.RewardTrainer(model=rm, args=args, processing_class=tokenizer,
                                train_dataset=datasets.Dataset.from_dict(full))
    batch = next(iter(trainer.get_train_dataloader()))
    theirs = trainer.compute_loss(trainer.model, dict(batch))

    # ours: the scalar head w^T E on the last real token of the backbone's final (normed) embeddings
    E = rm.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    r = (pool_last(E, batch["attention_mask"]) @ rm.score.weight.T).squeeze(-1)
    torch.testing.assert_close(r, rm(**batch).logits.squeeze(-1), **TOL)
    ours = bradley_terry_loss(*r.chunk(2))
    torch.testing.assert_close(ours, theirs, **TOL)


def test_clipped_surrogate_equals_trl_grpo(tokenizer, tmp_path):
    model = tiny_llama(0)
    args = trl.GRPOConfig(output_dir=str(tmp_path), bf16=False, use_cpu=True, per_device_train_batch_size=2,
                          num_generations=2, report_to=[], beta=0.0, loss_type="grpo", epsilon=0.2)
    trainer = trl.GRPOTrainer(model=model, reward_funcs=lambda completions, **kw: [0.0] * len(completions),
                              args=args, processing_class=tokenizer,
                              train_dataset=datasets.Dataset.from_dict({"prompt": PAIRS["prompt"]}))
    trainer.model.eval()  # eval mode: no division by the gradient-accumulation count
    prompt_ids = torch.tensor([[0, 4, 5, 8], [4, 5, 6, 7]])  # left-padded prompts
    prompt_mask = (prompt_ids != 0).long()
    completion_ids = torch.tensor([[9, 10, 14, 3, 0], [15, 11, 5, 16, 14]])
    completion_mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    ids = torch.cat([prompt_ids, completion_ids], 1)
    att = torch.cat([prompt_mask, completion_mask], 1)
    comp = torch.cat([torch.zeros_like(prompt_mask), completion_mask], 1)
    with torch.no_grad():  # a pretend "old" policy: the current log-probs, shifted so that rho spans the clip
        cur = completion_logps(model, ids, att, comp, per_token=True)[:, -5:]
    old = cur + torch.tensor([[0.5, -0.5, 0.05, 0.0, 0.0], [-0.3, 0.3, 0.1, -0.1, 0.0]])
    advantages = torch.tensor([1.0, -0.7])
    inputs = dict(prompt_ids=prompt_ids, prompt_mask=prompt_mask, completion_ids=completion_ids,
                  completion_mask=completion_mask, advantages=advantages, old_per_token_logps=old)
    theirs = trainer._compute_loss(trainer.model, inputs)

    logp = completion_logps(model, ids, att, comp, per_token=True)[:, -5:]
    ours, stats = clipped_surrogate(logp, old, advantages, completion_mask, clip_eps=0.2)
    assert 0 < stats["clip_fraction"] < 1  # both regimes are exercised
    torch.testing.assert_close(ours, theirs, **TOL)


def test_chapter_9s_trl_check_is_one_call():
    """``dpo_loss_vs_trl`` (chapter 9's cell) builds TRL's trainer on the pairs and returns both losses:
    equal to 1e-5, and different for another beta (the beta reaches both sides)."""
    from types import SimpleNamespace

    from neuraltext.align.trl_check import dpo_loss_vs_trl

    pairs = [SimpleNamespace(prompt=p, chosen=c.strip(), rejected=r.strip())
             for p, c, r in zip(PAIRS["prompt"], PAIRS["chosen"], PAIRS["rejected"])]
    ours, theirs = dpo_loss_vs_trl(pairs, beta=0.1)
    assert isinstance(ours, float) and ours == pytest.approx(theirs, rel=1e-5, abs=1e-6)
    ours_b, theirs_b = dpo_loss_vs_trl(pairs, beta=2.0)
    assert ours_b == pytest.approx(theirs_b, rel=1e-5, abs=1e-6) and abs(ours_b - ours) > 1e-4
    with pytest.raises(ValueError, match="pairs is empty"):
        dpo_loss_vs_trl([], beta=0.1)
