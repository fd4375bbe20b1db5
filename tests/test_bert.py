"""neuraltext.bert.model against transformers' BertModel / BertForPreTraining on copied weights (tiny random
configs and the packaged MiniLM), BERT's 80/10/10 masking and NSP pairs checked statistically, the
checkpoint loader's errors on broken folders, and the fine-tuning pieces."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
import transformers

from neuraltext.bert import (BertConfig, BertForPreTraining, BertModel, CheckpointError, count_parameters,
                             from_pretrained, load_state_dict_from_hf, mlm_loss, nsp_loss)
from neuraltext.bert.loading import _hf_name
from neuraltext.bert import BertClassifier, classifier_loss, encode, pool
from neuraltext.bert import (encode_pair, fill_masks, mask_tokens, nsp_pairs, pretraining_batches,
                             pretraining_loss, topic_documents)

TOL = dict(atol=1e-5, rtol=1e-5)
TINY = BertConfig(vocab_size=97, hidden_size=32, n_layers=3, n_heads=4, intermediate_size=64, max_position=40,
                  dropout=0.0)


def _reference(cls, cfg: BertConfig = TINY, device="cpu"):
    transformers.set_seed(0)
    hf_cfg = transformers.BertConfig(**cfg.to_hf(), attn_implementation="eager")
    return cls(hf_cfg).to(device).eval()


def _inputs(B=4, T=11, cfg=TINY, device="cpu"):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, cfg.vocab_size, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, 7:] = 0  # two padded sequences
    mask[3, 4:] = 0
    ids[mask == 0] = cfg.pad_id
    segments = torch.zeros(B, T, dtype=torch.long)
    segments[:, 5:] = 1
    return ids.to(device), mask.to(device), segments.to(device)


# ------------------------------------------------------------------ the model vs transformers
def test_bert_model_equals_transformers(device):
    ref = _reference(transformers.BertModel, device=device)
    ours = BertModel(TINY).to(device).eval()
    load_state_dict_from_hf(ours, ref.state_dict())
    ids, mask, seg = _inputs(device=device)
    r = ref(input_ids=ids, attention_mask=mask, token_type_ids=seg, output_hidden_states=True)
    o = ours(ids, mask, seg, output_hidden_states=True)
    keep = mask.bool()  # padded positions are not compared: neither library defines them
    assert len(o.hidden_states) == len(r.hidden_states) == TINY.n_layers + 1
    for a, b in zip(o.hidden_states, r.hidden_states):
        torch.testing.assert_close(a[keep], b[keep], **TOL)
    torch.testing.assert_close(o.last_hidden_state[keep], r.last_hidden_state[keep], **TOL)
    torch.testing.assert_close(o.pooler_output, r.pooler_output, **TOL)
    # without token_type_ids both use segment 0; without attention_mask nothing is padding
    torch.testing.assert_close(ours(ids).last_hidden_state, ref(input_ids=ids).last_hidden_state, **TOL)

    # gradients of every parameter, through the pooler and all hidden states
    weight = torch.randn(o.last_hidden_state.shape, generator=torch.Generator().manual_seed(2)).to(device) * keep[..., None]
    for model, out in ((ours, ours(ids, mask, seg)), (ref, ref(input_ids=ids, attention_mask=mask, token_type_ids=seg))):
        ((out[0] * weight).sum() + out[1].sum()).backward()
    theirs = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, theirs[_hf_name(name)].grad, **TOL, msg=name)


def test_bert_for_pretraining_equals_transformers(device):
    ref = _reference(transformers.BertForPreTraining, device=device)
    ours = BertForPreTraining(TINY).to(device).eval()
    load_state_dict_from_hf(ours, ref.state_dict())
    assert ours.mlm.decoder.weight is ours.bert.embeddings.token.weight  # tied, not copied
    ids, mask, seg = _inputs(device=device)
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[2, 6], labels[3, 1] = 5, 17, 42
    is_next = torch.tensor([True, False, True, False], device=device)
    r = ref(input_ids=ids, attention_mask=mask, token_type_ids=seg, labels=labels,
            next_sentence_label=(~is_next).long())  # transformers: 0 = IsNext
    mlm_logits, nsp_logits = ours(ids, mask, seg)
    keep = mask.bool()
    torch.testing.assert_close(mlm_logits[keep], r.prediction_logits[keep], **TOL)
    torch.testing.assert_close(nsp_logits, r.seq_relationship_logits, **TOL)
    loss = mlm_loss(mlm_logits, labels) + nsp_loss(nsp_logits, is_next)
    torch.testing.assert_close(loss, r.loss, **TOL)
    loss.backward()
    r.loss.backward()
    theirs = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        hf = ("bert." if name.startswith("bert.") else "") + _hf_name(name)
        torch.testing.assert_close(p.grad, theirs[hf].grad, **TOL, msg=name)


def test_losses_are_the_course_equations():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 5, 11, generator=g)
    labels = torch.full((2, 5), -100)
    labels[0, 1], labels[1, 3], labels[1, 4] = 4, 0, 9
    by_hand = -sum(logits[b, t].log_softmax(-1)[labels[b, t]] for b, t in ((0, 1), (1, 3), (1, 4))) / 3
    torch.testing.assert_close(mlm_loss(logits, labels), by_hand)
    nsp = torch.randn(6, 2, generator=g)
    y = torch.tensor([1, 0, 1, 1, 0, 0])
    y_hat = nsp.softmax(-1)[:, 0]  # P(IsNext)
    eq7 = -(y * y_hat.log() + (1 - y) * (1 - y_hat).log()).mean()
    torch.testing.assert_close(nsp_loss(nsp, y.bool()), eq7)
    with pytest.raises(ValueError, match="nsp_logits must be"):
        nsp_loss(torch.zeros(3, 3), torch.zeros(3))


def test_parameter_count_formula_and_bert_base():
    assert count_parameters(TINY) == sum(p.numel() for p in BertModel(TINY).parameters())
    assert count_parameters(TINY) == sum(p.numel() for p in _reference(transformers.BertModel).parameters())
    base = BertConfig()  # 768 dims, 12 x 12, 512 positions, 30,522 tokens
    assert (base.hidden_size, base.n_layers, base.n_heads, base.max_position, base.vocab_size) == (768, 12, 12, 512, 30522)
    assert count_parameters(base) == 109_482_240  # "110M" in the paper
    with pytest.raises(ValueError, match="not a multiple of n_heads"):
        BertConfig(hidden_size=30, n_heads=4)


# ------------------------------------------------------------------------------- MiniLM
@pytest.fixture(scope="module")
def minilm():
    return from_pretrained("all-minilm-l6-v2", device="cpu")


SENTENCES = ["The mole dug a tunnel under the garden.", "One mole of carbon dioxide weighs 44 grams.",
             "Take a biopsy of the mole.", "Mon frère est à la retraite depuis longtemps, il jardine."]


@pytest.mark.pretrained
def test_minilm_equals_transformers(minilm):
    ref = transformers.AutoModel.from_pretrained(_minilm_path()).eval()
    batch = minilm.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        r = ref(**batch).last_hidden_state
        o = minilm(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).last_hidden_state
    keep = batch["attention_mask"].bool()
    torch.testing.assert_close(o[keep], r[keep], atol=1e-4, rtol=1e-4)
    # sentence-transformers' "mean tokens" pooling, computed from transformers' output
    m = batch["attention_mask"].unsqueeze(-1).float()
    reference = (r * m).sum(1) / m.sum(1)
    ours = encode(minilm, SENTENCES, pooling="mean", batch_size=3, progress=False)
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(encode(minilm, SENTENCES, pooling="cls", batch_size=2, progress=False), r[:, 0],
                               atol=1e-4, rtol=1e-4)


def _minilm_path():
    from neuraltext.weights import resolve

    return resolve("all-minilm-l6-v2").path


@pytest.mark.pretrained
def test_encode_checks_and_prefix(minilm):
    one = encode(minilm, ["passage: bonjour"], pooling="mean", progress=False)
    torch.testing.assert_close(encode(minilm, ["bonjour"], pooling="mean", prefix="passage: ", progress=False), one)
    assert torch.allclose(encode(minilm, ["a b"], normalize=True, progress=False).norm(dim=-1), torch.ones(1))
    with pytest.raises(ValueError, match="pooling must be one of"):
        encode(minilm, ["x"], pooling="max")
    with pytest.raises(TypeError, match="list of strings"):
        encode(minilm, "x")
    with pytest.raises(ValueError, match="pooling must be one of"):
        pool(torch.zeros(1, 2, 3), torch.ones(1, 2), "first")


# ------------------------------------------------------------------- checkpoints on disk
def _save(folder, model, config_changes=None, key_changes=None, bin_format=False):
    from safetensors.torch import save_file

    folder.mkdir()
    cfg = model.config.to_dict()
    cfg.update(config_changes or {})
    (folder / "config.json").write_text(json.dumps(cfg))
    state = {k: v.clone() for k, v in model.state_dict().items()}  # tied tensors saved as copies
    for k, v in (key_changes or {}).items():
        if v is None:
            del state[k]
        else:
            state[k] = v
    if bin_format:
        torch.save(state, folder / "pytorch_model.bin")
    else:
        save_file(state, folder / "model.safetensors")
    return folder


def test_from_pretrained_folders_with_and_without_prefix(tmp_path):
    ref = _reference(transformers.BertForPreTraining)
    ids, mask, seg = _inputs()
    r = ref(input_ids=ids, attention_mask=mask, token_type_ids=seg)
    folder = _save(tmp_path / "pre", ref)  # keys "bert.*" and "cls.*"
    full = from_pretrained(str(folder), heads=True, tokenizer=False)
    torch.testing.assert_close(full(ids, mask, seg)[1], r.seq_relationship_logits, **TOL)
    base = from_pretrained(str(folder), tokenizer=False)  # heads dropped, as transformers does
    torch.testing.assert_close(base(ids, mask, seg).pooler_output, ref.bert(ids, mask, seg).pooler_output, **TOL)
    plain = _save(tmp_path / "bin", ref.bert, bin_format=True)  # no prefix, pytorch_model.bin
    torch.testing.assert_close(from_pretrained(str(plain), tokenizer=False)(ids).last_hidden_state,
                               ref.bert(ids).last_hidden_state, **TOL)


def test_broken_checkpoints_raise_one_error_listing_everything(tmp_path):
    ref = _reference(transformers.BertModel)
    sd = ref.state_dict()
    broken = _save(tmp_path / "broken", ref, key_changes={
        "encoder.layer.1.attention.self.key.weight": None,  # missing
        "encoder.layer.0.output.dense.weight": torch.zeros(32, 63),  # wrong shape
        "encoder.layer.7.extra.weight": torch.zeros(3),  # unexpected
    })
    with pytest.raises(CheckpointError) as err:
        from_pretrained(str(broken), tokenizer=False)
    msg = str(err.value)
    assert "missing key(s): encoder.layer.1.attention.self.key.weight" in msg
    assert "encoder.layer.0.output.dense.weight: checkpoint (32, 63), model (32, 64)" in msg
    assert "unexpected key(s): encoder.layer.7.extra.weight" in msg
    # never half-loaded: a model that fails to load keeps its own weights
    model = BertModel(TINY)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    bad = dict(sd)
    del bad["pooler.dense.bias"]
    with pytest.raises(CheckpointError, match="pooler.dense.bias"):
        load_state_dict_from_hf(model, bad)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())

    wrong = _save(tmp_path / "roberta", ref, config_changes={"model_type": "roberta",
                                                             "architectures": ["RobertaModel"]})
    with pytest.raises(CheckpointError, match="unsupported architecture(.|\n)*roberta(.|\n)*RobertaModel"):
        from_pretrained(str(wrong), tokenizer=False)
    heads_missing = _save(tmp_path / "nohead", ref)
    with pytest.raises(CheckpointError, match="missing key.*cls.predictions.bias"):
        from_pretrained(str(heads_missing), heads=True, tokenizer=False)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text(json.dumps(ref.config.to_dict()))
    with pytest.raises(CheckpointError, match="neither model.safetensors nor pytorch_model.bin"):
        from_pretrained(str(tmp_path / "empty"), tokenizer=False)


# ------------------------------------------------------------------------- MLM masking
def test_masking_is_bert_80_10_10():
    V, B, T = 1000, 400, 128
    special = [0, 1, 2, 3, 4]  # pad, unk, cls, sep, mask
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, V, (B, T), generator=g)
    ids[:, 0], ids[:, 60] = 2, 3  # [CLS] ... [SEP]
    ids[::2, 100:] = 0  # padding in every other row
    inputs, labels = mask_tokens(ids, mask_id=4, special_ids=special, vocab_size=V, generator=g)
    eligible = ~torch.isin(ids, torch.tensor(special))
    chosen = labels != -100
    assert not chosen[~eligible].any()  # specials and padding never chosen
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(inputs[~chosen], ids[~chosen])  # what is not chosen is never changed
    n = int(eligible.sum())
    k = int(chosen.sum())

    def within(count, total, p):  # 4.5 binomial standard deviations: a false alarm ~ 1 in 150,000
        sd = math.sqrt(total * p * (1 - p))
        assert abs(count - total * p) <= 4.5 * sd, (count, total, p)

    within(k, n, 0.15)
    masked = int((inputs[chosen] == 4).sum())
    replaced = inputs[chosen] != ids[chosen]
    random_ = int((replaced & (inputs[chosen] != 4)).sum())
    unchanged = int((~replaced).sum())
    n_pool = V - len(special)  # a random draw equals the original token with probability 1 / n_pool
    within(masked, k, 0.8)
    within(random_, k, 0.1 * (1 - 1 / n_pool))
    within(unchanged, k, 0.1 + 0.1 / n_pool)
    assert not torch.isin(inputs[chosen & (inputs != 4)], torch.tensor(special)).any()  # random ids are ordinary
    with pytest.raises(ValueError, match="p must be in"):
        mask_tokens(ids, 4, special, V, p=1.5)


def test_nsp_pairs_half_true_next():
    docs = [[[f"d{d}s{i}"] for i in range(6)] for d in range(200)]
    pairs = nsp_pairs(docs, seed=0)
    assert len(pairs) == 200 * 5
    n_next = sum(p.is_next for p in pairs)
    assert abs(n_next - 500) <= 4.5 * math.sqrt(1000 * 0.25)
    for p in pairs:
        (da, sa), (db, sb) = (map(int, p.a[0][1:].split("s")), map(int, p.b[0][1:].split("s")))
        if p.is_next:
            assert (db, sb) == (da, sa + 1)
        else:
            assert db != da  # a random sentence of another document
    with pytest.raises(ValueError, match="at least two documents"):
        nsp_pairs(docs[:1])


def test_pretraining_a_tiny_bert_through_the_shared_loop():
    from neuraltext.data import synthetic_corpus
    from neuraltext.tokenize import Vocab
    from neuraltext.training import train

    corpus = synthetic_corpus(6_000, seed=0)
    vocab = Vocab.build(corpus.sentences)
    ids, seg = encode_pair(vocab, ["mon", "père"], ["il", "est"], 16)
    assert vocab.decode(ids) == ["<s>", "mon", "père", "</s>", "il", "est", "</s>"] and seg == [0, 0, 0, 0, 1, 1, 1]
    pairs = nsp_pairs(topic_documents(corpus), seed=0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, n_layers=1, n_heads=2, intermediate_size=64,
                     max_position=48, dropout=0.0, pad_id=vocab.pad_id)
    model = BertForPreTraining(cfg)
    batches = pretraining_batches(pairs, vocab, batch_size=32, max_len=48)
    first = next(iter(batches()))
    assert first["input_ids"].shape == first["mlm_labels"].shape and first["is_next"].dtype == torch.bool
    history = train(model, pretraining_loss, batches, epochs=2, lr=3e-3, device="cpu")
    start, end = sum(history.loss[:5]) / 5, sum(history.loss[-5:]) / 5
    assert end < start - 1.0, (start, end)
    filled = fill_masks(model, vocab, "mon <mask> est content .", k=2)
    assert len(filled) == 1 and len(filled[0]) == 2


# ------------------------------------------------------------------------- fine-tuning
def test_classifier_heads_and_losses():
    bert = BertModel(TINY)
    ids, mask, seg = _inputs()
    multi = BertClassifier(bert, n_labels=11).eval()  # eval: no dropout between the two forward passes
    assert [m.out_features for m in multi.head if isinstance(m, torch.nn.Linear)] == [200, 110, 11]
    labels = (torch.rand(4, 11) > 0.5).float()
    z = multi(ids, mask, seg)
    torch.testing.assert_close(classifier_loss(multi, {"input_ids": ids, "attention_mask": mask, "token_type_ids": seg,
                                                       "labels": labels}),
                               -(labels * z.sigmoid().log() + (1 - labels) * (1 - z.sigmoid()).log()).mean())
    single = BertClassifier(bert, n_labels=3, hidden=(8,), multilabel=False, pooling="mean", freeze_encoder=True).eval()
    y = torch.tensor([0, 2, 1, 1])
    z = single(ids, mask)  # no segments given: all sentence A, in both calls
    torch.testing.assert_close(classifier_loss(single, {"input_ids": ids, "attention_mask": mask, "labels": y}),
                               F.nll_loss(z.log_softmax(-1), y))
    assert not any(p.requires_grad for p in bert.parameters())
    with pytest.raises(ValueError, match="pooling must be one of"):
        BertClassifier(bert, 2, pooling="max")


@pytest.mark.pretrained
def test_classifier_predict_proba(minilm):
    clf = BertClassifier(minilm, n_labels=3, multilabel=False)
    p = clf.predict_proba(["un", "deux mots", "trois mots ici"])
    assert p.shape == (3, 3)
    torch.testing.assert_close(p.sum(-1), torch.ones(3))
    multi = BertClassifier(minilm, n_labels=2, multilabel=True).predict_proba(["un"])
    assert ((multi > 0) & (multi < 1)).all()


def test_pretraining_loss_on_chosen_positions_equals_the_full_loss():
    model = BertForPreTraining(TINY).eval()
    ids, mask, seg = _inputs()
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[2, 6] = 5, 17
    batch = {"input_ids": ids, "attention_mask": mask, "token_type_ids": seg, "mlm_labels": labels,
             "is_next": torch.tensor([True, False, True, True])}
    mlm_logits, nsp_logits = model(ids, mask, seg)
    torch.testing.assert_close(pretraining_loss(model, batch),
                               mlm_loss(mlm_logits, labels) + nsp_loss(nsp_logits, batch["is_next"]), **TOL)


@pytest.mark.pretrained
def test_word_vectors_average_the_pieces_of_the_word(minilm):
    from neuraltext.bert import word_vectors

    sentence = "The unbelievably small mole."
    minilm.eval()  # a classifier built on the shared fixture may have left it in training mode
    enc = minilm.tokenizer(sentence, return_tensors="pt")
    pieces = minilm.tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    with torch.no_grad():
        h = minilm(enc["input_ids"], enc["attention_mask"]).last_hidden_state[0]
    span = [i for i, p in enumerate(pieces) if p in ("un", "##bel", "##ie", "##va", "##bly", "unbelievably")]
    assert span, pieces
    torch.testing.assert_close(word_vectors(minilm, [sentence], "unbelievably")[0], h[span].mean(0))
    torch.testing.assert_close(word_vectors(minilm, [sentence], "MOLE")[0], h[pieces.index("mole")])
    with pytest.raises(ValueError, match="does not occur"):
        word_vectors(minilm, [sentence], "cat")
