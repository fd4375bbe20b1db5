"""neuraltext.bert.probe: the sense-separation statistics by hand, the partly frozen classifier, the
batches and the landmarks chapter 7 compares against."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuraltext.bert import BertClassifier, BertConfig, BertModel, from_pretrained, probe

TINY = BertConfig(vocab_size=97, hidden_size=32, n_layers=3, n_heads=4, intermediate_size=64, max_position=40,
                  dropout=0.0)


def test_sense_separation_by_hand():
    # occurrences a1 a2 b1 b2: same-sense pairs (a1,a2), (b1,b2) both ways; different: the 8 cross pairs
    c = np.array([[1.0, 0.9, 0.2, 0.4],
                  [0.9, 1.0, 0.3, 0.5],
                  [0.2, 0.3, 1.0, 0.7],
                  [0.4, 0.5, 0.7, 1.0]])
    s = probe.sense_separation(c, ["a", "a", "b", "b"])
    assert s["same"] == pytest.approx((0.9 + 0.7) / 2)
    assert s["different"] == pytest.approx((0.2 + 0.4 + 0.3 + 0.5) / 4)
    assert s["gap"] == pytest.approx(0.8 - 0.35)
    assert s["lowest"] == pytest.approx(0.2)  # the diagonal (1) is not a pair but never the lowest
    with pytest.raises(ValueError, match=r"cosines must be \(3, 3\)"):
        probe.sense_separation(c, ["a", "a", "b"])
    with pytest.raises(ValueError, match="at least two senses"):
        probe.sense_separation(c, ["a", "b", "c", "d"])


@pytest.mark.pretrained
def test_separation_by_layer_uses_each_layer():
    minilm = from_pretrained("all-minilm-l6-v2", device="cpu").eval()
    examples = {"mole": [("animal", "The mole dug a tunnel."), ("animal", "A mole ate the worm."),
                         ("skin", "The doctor looked at the mole."), ("skin", "A mole on her arm.")]}
    by_layer = probe.separation_by_layer(minilm, examples, layers=[0, 6])
    assert [len(v) for v in by_layer.values()] == [2]
    for k, got in zip((0, 6), by_layer["mole"]):
        c = probe.sense_cosines(minilm, [t for _, t in examples["mole"]], "mole", layer=k)
        assert got == probe.sense_separation(c, ["animal", "animal", "skin", "skin"])
    assert by_layer["mole"][0] != by_layer["mole"][1]  # the input embeddings differ from the last layer


def test_freeze_below_keeps_the_embeddings_and_the_lower_blocks():
    clf = BertClassifier(BertModel(TINY), n_labels=2, multilabel=False)
    trainable = probe.freeze_below(clf, 1)
    assert not any(p.requires_grad for p in clf.bert.embeddings.parameters())
    assert not any(p.requires_grad for b in clf.bert.encoder[:2] for p in b.parameters())
    top = list(clf.bert.encoder[2].parameters())
    assert all(p.requires_grad for p in top)
    assert {id(p) for p in trainable} == {id(p) for p in top} | {id(p) for p in clf.bert.pooler.parameters()}
    assert all(p.requires_grad for p in clf.head.parameters())
    with pytest.raises(ValueError, match=r"trainable_blocks must be an integer in \[0, 3\].*got 4"):
        probe.freeze_below(clf, 4)


class _Tokenizer:
    """Character ids, padded to the longest text of the batch, like a transformers tokenizer's output."""

    def __call__(self, texts, padding=True, return_tensors="pt"):
        n = max(len(t) for t in texts)
        ids = torch.tensor([[ord(ch) % 90 + 5 for ch in t] + [0] * (n - len(t)) for t in texts])
        return {"input_ids": ids, "attention_mask": (ids != 0).long()}


def test_labelled_batches_cover_the_data_in_a_fresh_order_each_epoch():
    data = [(f"text {i}" + "x" * (i % 3), i % 2) for i in range(10)]
    epoch = probe.labelled_batches(data, _Tokenizer(), batch_size=4, prefix="q: ", seed=0)
    first, second = list(epoch()), list(epoch())
    assert [len(b["labels"]) for b in first] == [4, 4, 2]
    assert sorted(torch.cat([b["labels"] for b in first]).tolist()) == sorted(y for _, y in data)
    assert first[0]["input_ids"].shape[1] == max(len("q: " + t) for t in
                                                 [data[i][0] for i in np.random.default_rng(0).permutation(10)[:4]])
    assert [b["labels"].tolist() for b in first] != [b["labels"].tolist() for b in second] or \
        not torch.equal(first[0]["input_ids"], second[0]["input_ids"])
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        probe.labelled_batches(data, _Tokenizer(), batch_size=0)


class _Fixed:
    """A classifier stub whose predict_proba answers class 1 for texts containing 'yes'."""

    def predict_proba(self, texts):
        return torch.tensor([[0.2, 0.8] if "yes" in t else [0.9, 0.1] for t in texts])


def test_accuracy_and_the_majority_baseline():
    data = [("yes a", 1), ("no b", 0), ("yes c", 0), ("no d", 0)]
    assert probe.accuracy(_Fixed(), data) == 0.75
    assert probe.accuracy(_Fixed(), data, prefix="yes ") == 0.25  # the prefix reaches the classifier
    assert probe.majority_baseline([1, 0, 1, 1, 0, 1]) == pytest.approx(4 / 6)
    assert probe.majority_baseline([0, 0, 1]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="labels is empty"):
        probe.majority_baseline([])
