"""GPU-minded details of chapters 7-8, checked on the CPU.

* The Llama KV cache takes the compute dtype under autocast (bfloat16), as GPT's does: the rotary
  tables are cast to the dtype of q and k, so the cache is not silently float32 (twice the memory).
* BERT's masks are drawn without reading anything back from the device: ``mask_tokens`` runs on the
  ``meta`` device, where any data-dependent read (``.item()``, ``int()``, a boolean index) fails; the
  random replacement ids are exactly the ordinary ids, found by ``searchsorted`` instead of a pool
  gathered on the host.
"""

from __future__ import annotations

import torch

from neuraltext.bert import mask_tokens
from neuraltext.bert.pretraining import _nth_ordinary
from neuraltext.gpt import GPT, GPTConfig, Llama, LlamaConfig


def _cache_dtypes(model, ids):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, past = model(ids[:, :-1])
        step, present = model(ids[:, -1:], past=past)  # the cached step runs on the bf16 cache
    return {t.dtype for kv in past + present for t in kv}, step.shape


def test_kv_cache_takes_the_compute_dtype_under_autocast():
    torch.manual_seed(0)
    ids = torch.randint(0, 40, (2, 7))
    llama = Llama(LlamaConfig(vocab_size=40, d_model=16, n_layers=2, n_heads=2, n_kv_heads=1, d_ff=24)).eval()
    gpt = GPT(GPTConfig(vocab_size=40, max_len=16, d_model=16, n_heads=2, n_layers=2)).eval()
    for model in (llama, gpt):
        dtypes, shape = _cache_dtypes(model, ids)
        assert dtypes == {torch.bfloat16}, (type(model).__name__, dtypes)
        assert shape == (2, 1, 40)
    _, past = llama(ids)  # without autocast: float32, as the weights
    assert {t.dtype for kv in past for t in kv} == {torch.float32}


def test_masks_are_drawn_without_reading_the_device():
    ids = torch.randint(5, 50, (4, 9)).to("meta")  # meta tensors have no data: any read would fail
    inputs, labels = mask_tokens(ids, mask_id=4, special_ids=[0, 1, 2, 3], vocab_size=50)
    assert inputs.device.type == "meta" and labels.shape == (4, 9)


def test_random_replacements_are_exactly_the_ordinary_ids():
    special = [0, 1, 2, 5, 9, 11]
    V = 14
    ordinary = [i for i in range(V) if i not in special]
    assert _nth_ordinary(torch.arange(len(ordinary)), special).tolist() == ordinary
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 5, (200, 50), generator=g)
    inputs, labels = mask_tokens(ids, mask_id=9, special_ids=special, vocab_size=V, p=0.5, generator=g)
    replaced = inputs[(labels != -100) & (inputs != 9)]
    assert set(replaced.tolist()) <= set(ordinary) and set(replaced.tolist()) >= set(ordinary) - {3, 4}


def test_the_mlm_gather_with_n_masked_equals_the_boolean_index():
    """pretraining_loss with the batch's ``n_masked`` (a stable sort, no host wait) gives the loss of the
    boolean index (one wait), which gives the full-logits loss (tests/test_bert.py)."""
    from neuraltext.bert import BertConfig, BertForPreTraining, pretraining_loss

    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig(vocab_size=40, hidden_size=16, n_layers=1, n_heads=2,
                                          intermediate_size=24, max_position=16, dropout=0.0)).eval()
    ids = torch.randint(5, 40, (3, 10))
    labels = torch.where(torch.rand(3, 10) < 0.3, ids, torch.full_like(ids, -100))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids),
             "mlm_labels": labels, "is_next": torch.tensor([True, False, True])}
    n = int((labels != -100).sum())
    assert n > 0
    torch.testing.assert_close(pretraining_loss(model, dict(batch, n_masked=n)), pretraining_loss(model, batch),
                               atol=1e-6, rtol=1e-6)
