"""Byte Pair Encoding from scratch (chapter 1), checked against Hugging Face ``tokenizers``."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuraltext.data import synthetic_corpus
from neuraltext.tokenize import SPECIAL_TOKENS, UNK, BPETokenizer, read_tokenizer, pretokenize
from neuraltext.tokenize.bpe import byte_token, train_hf_bpe

FRENCH = [
    "Ma grand-mère est très fière de moi, elle me l'a dit hier.",
    "L'élève a révisé ses leçons : « Où est passé le cœur du problème ? »",
    "Le médecin a prescrit 500 mg de paracétamol à la sœur de Noël.",
]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    lines = synthetic_corpus(60_000, seed=1).text().split("\n")
    # some capitals and punctuation so the alphabet is not only lower-case
    return [ln.capitalize() if i % 3 == 0 else ln for i, ln in enumerate(lines)] + FRENCH


@pytest.fixture(scope="module")
def bpe(texts) -> BPETokenizer:
    return BPETokenizer(vocab_size=700, min_frequency=2).train(texts)


def test_hand_worked_example():
    """aaabdaaabac: merge aa (4 times), then ab (2; ties go to the smaller ids), then aa+ab."""
    tok = BPETokenizer(vocab_size=1000, min_frequency=2, byte_fallback=False).train(["aaabdaaabac"])
    assert tok.alphabet_ == ["a", "b", "c", "d"]
    assert tok.merges_ == [("a", "a"), ("a", "b"), ("aa", "ab")]
    assert tok.merge_counts_ == [4, 2, 2]
    assert tok.tokenize("aaabdaaabac") == ["aaab", "d", "aaab", "a", "c"]
    assert len(tok.vocab) == len(SPECIAL_TOKENS) + 4 + 3


def test_pretokenize_covers_the_text():
    text = "  L'oncle,  aujourd'hui:\t12,5 °C —\n\nça va_bien ! "
    chunks = pretokenize(text)
    assert "".join(chunks) == text
    assert chunks[:7] == [" ", " L", "'", "oncle", ",", " ", " aujourd"]  # a space joins the next word
    assert chunks[9:12] == [":", "\t", "12"]


def test_merges_are_learned_most_frequent_first(bpe, texts):
    assert len(bpe.vocab) == 700
    counts = bpe.merge_counts_
    assert all(a >= b for a, b in zip(counts, counts[1:])), "a merge count can never grow"
    assert counts[-1] >= 2
    # the first merge is the most frequent adjacent pair of characters inside a chunk
    from collections import Counter
    pairs = Counter()
    for t in texts:
        for chunk in pretokenize(t):
            pairs.update(zip(chunk, chunk[1:]))
    (top, n), = pairs.most_common(1)
    assert bpe.merges_[0] == top and bpe.merge_counts_[0] == n
    # frequent words become single tokens
    assert bpe.tokenize(" mon grand-père est content") == [" mon", " grand", "-", "père", " est", " content"]


def test_same_merges_vocab_and_ids_as_hf_tokenizers(bpe, texts):
    """Same pre-tokenization, vocab_size and min_frequency: the HF trainer learns the same merges."""
    hf = train_hf_bpe(texts, vocab_size=700, min_frequency=2)
    assert [c for c, _ in hf.pre_tokenizer.pre_tokenize_str(texts[0] + FRENCH[1])] == pretokenize(texts[0] + FRENCH[1])
    model = json.loads(hf.to_str())["model"]
    hf_merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    assert hf_merges == bpe.merges_
    assert hf.get_vocab() == bpe.vocab.stoi
    sample = texts[::25] + ["Le cœur de l'élève bat à 120 € — naïve 😀"]
    for t in sample:
        assert hf.encode(t).ids == bpe.encode(t), t
        assert hf.decode(hf.encode(t).ids, skip_special_tokens=False) == t
    hf_ratio = sum(map(len, sample)) / sum(len(hf.encode(t).ids) for t in sample)
    assert bpe.compression(sample) == pytest.approx(hf_ratio, rel=0, abs=0)
    assert bpe.compression(sample) > 2.5  # 354 merges: well under one token per character


def test_unseen_characters_fall_back_to_bytes(bpe):
    ids = bpe.encode("€")
    assert bpe.vocab.decode(ids) == [byte_token(b) for b in "€".encode("utf-8")]
    assert bpe.decode(ids) == "€"


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_round_trip_any_text(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(list("aàâbcçdeéèêëfgiîïoôœuùûüy '-,.")), min_size=1, max_size=40))
def test_round_trip_french_letters(bpe, chars):
    text = "".join(chars)
    ids = bpe.encode(text)
    assert bpe.decode(ids) == text
    assert len(ids) <= len(text.encode("utf-8"))


def test_without_byte_fallback_unknown_characters_are_unk():
    tok = BPETokenizer(vocab_size=60, byte_fallback=False).train(FRENCH)
    assert len(tok.vocab) == 60
    ids = tok.encode("été €")
    assert ids[-1] == tok.vocab.unk_id
    assert tok.decode(ids) == f"été {UNK}"


def test_special_tokens(bpe):
    ids = bpe.encode("mon père", add_special_tokens=True)
    assert ids[0] == bpe.vocab.bos_id and ids[-1] == bpe.vocab.eos_id
    assert bpe.decode(ids) == "mon père"
    assert bpe.decode(ids, skip_special_tokens=False) == "<s>mon père</s>"


def test_save_load(bpe, tmp_path):
    path = bpe.save(tmp_path / "bpe.json")
    back = BPETokenizer.load(path)
    assert back.merges_ == bpe.merges_ and back.vocab == bpe.vocab
    for t in FRENCH:
        assert back.encode(t) == bpe.encode(t)
    assert type(read_tokenizer(path)) is BPETokenizer
    data = json.loads(path.read_text(encoding="utf-8"))
    data["merges"].append(["zz", "qq"])
    (tmp_path / "broken.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="missing from the vocabulary"):
        BPETokenizer.load(tmp_path / "broken.json")


def test_bad_input():
    with pytest.raises(ValueError, match="empty corpus"):
        BPETokenizer().train([])
    with pytest.raises(ValueError, match="empty corpus"):
        BPETokenizer().train(["", ""])
    with pytest.raises(ValueError, match="too small"):
        BPETokenizer(vocab_size=100).train(FRENCH)  # 5 specials + 256 bytes > 100
    with pytest.raises(TypeError, match="not one string"):
        BPETokenizer().train("un texte")
    with pytest.raises(RuntimeError, match="not trained"):
        BPETokenizer().encode("bonjour")
