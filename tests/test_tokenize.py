"""Vocab, WordTokenizer and CharTokenizer (chapter 1)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuraltext.tokenize import (BOS, EOS, MASK, PAD, SPECIAL_TOKENS, UNK, CharTokenizer, Vocab,
                                 WordTokenizer, read_tokenizer)


# ---------------------------------------------------------------------------- Vocab
def test_vocab_specials_first_then_by_frequency():
    v = Vocab.build([["b", "a", "b"], ["c", "b", "a"]])
    assert v.itos[:5] == [PAD, UNK, BOS, EOS, MASK] == list(SPECIAL_TOKENS)
    assert v.itos[5:] == ["b", "a", "c"]  # 3, 2, 1 occurrences
    assert (v.pad_id, v.unk_id, v.bos_id, v.eos_id, v.mask_id) == (0, 1, 2, 3, 4)
    assert v.stoi == {t: i for i, t in enumerate(v.itos)}
    assert len(v) == 8
    assert v.counts == {"b": 3, "a": 2, "c": 1}


def test_vocab_ties_are_alphabetical_whatever_the_order():
    assert Vocab.build([["z", "y", "x"]]).itos[5:] == ["x", "y", "z"]
    assert Vocab.build([["x", "z", "y"]]).itos == Vocab.build([["y", "x", "z"]]).itos


def test_vocab_min_freq_and_max_size():
    seqs = [["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"]]
    assert Vocab.build(seqs, min_freq=2).itos[5:] == ["a", "b", "c"]
    assert Vocab.build(seqs, max_size=7).itos[5:] == ["a", "b"]
    assert len(Vocab.build(seqs, max_size=7)) == 7


def test_vocab_encode_unknown_and_decode():
    v = Vocab.build([["je", "suis", "malade"]])
    ids = v.encode(["je", "suis", "heureux"])
    assert ids == [v["je"], v["suis"], v.unk_id]
    assert v.decode(ids) == ["je", "suis", UNK]
    assert v.decode([v.bos_id, v["je"], v.eos_id, v.pad_id], skip_specials=True) == ["je"]
    with pytest.raises(IndexError, match="outside the vocabulary"):
        v.decode([len(v)])
    with pytest.raises(TypeError, match="list of tokens"):
        v.encode("je suis")


def test_vocab_without_unk_raises_on_unknown():
    v = Vocab(["a"], specials=[PAD], unk=None)
    assert v.encode(["a"]) == [1]
    with pytest.raises(KeyError, match="not in the vocabulary"):
        v.encode(["b"])


def test_vocab_bad_input():
    with pytest.raises(TypeError, match="token lists"):
        Vocab.build(["je suis malade"])
    with pytest.raises(ValueError, match="min_freq"):
        Vocab.build([["a"]], min_freq=0)
    with pytest.raises(ValueError, match="max_size"):
        Vocab.build([["a"]], max_size=2)
    with pytest.raises(ValueError, match="unk token"):
        Vocab(["a"], specials=[PAD], unk=UNK)


def test_vocab_save_load(tmp_path):
    v = Vocab.build([["grand-père", "sœur", "élève", "sœur"]])
    path = v.save(tmp_path / "vocab.json")
    assert "sœur" in path.read_text(encoding="utf-8")  # readable UTF-8, not \u escapes
    assert Vocab.load(path) == v
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.json"):
        Vocab.load(tmp_path / "bad.json")
    (tmp_path / "partial.json").write_text(json.dumps({"itos": []}), encoding="utf-8")
    with pytest.raises(ValueError, match="specials"):
        Vocab.load(tmp_path / "partial.json")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        Vocab.load(tmp_path / "missing.json")


# ---------------------------------------------------------------------------- WordTokenizer
@pytest.mark.parametrize("text, tokens", [
    ("Je suis malade", ["je", "suis", "malade"]),
    ("L'oncle de Léa, aujourd’hui, est fier.",
     ["l'", "oncle", "de", "léa", ",", "aujourd'hui", ",", "est", "fier", "."]),
    ("Mon grand-père et ma demi-sœur vont chez le gastro-entérologue.",
     ["mon", "grand-père", "et", "ma", "demi-sœur", "vont", "chez", "le", "gastro-entérologue", "."]),
    ("J'aime qu'il vienne jusqu'ici, n'est-ce pas ?",
     ["j'", "aime", "qu'", "il", "vienne", "jusqu'", "ici", ",", "n'", "est-ce", "pas", "?"]),
    ("Lorsqu'elle a 12,5 de fièvre... (rare)!",
     ["lorsqu'", "elle", "a", "12,5", "de", "fièvre", "...", "(", "rare", ")", "!"]),
])
def test_word_tokenizer_french(text, tokens):
    assert WordTokenizer().tokenize(text) == tokens


def test_word_tokenizer_keeps_case_when_asked():
    assert WordTokenizer(lowercase=False).tokenize("L'Oncle") == ["L'", "Oncle"]


def test_word_tokenizer_encode_decode():
    texts = ["Mon père est content.", "Ma sœur aime l'école, aujourd'hui."]
    tok = WordTokenizer().fit(texts)
    ids = tok.encode("Ma sœur aime l'école.")
    assert tok.decode(ids) == "ma sœur aime l'école."
    assert tok.decode(tok.encode(texts[1])) == "ma sœur aime l'école, aujourd'hui."
    unknown = tok.encode("Mon cousin est content.")
    assert unknown[1] == tok.vocab.unk_id
    assert tok.decode(unknown) == "mon <unk> est content."
    wrapped = tok.encode("mon père", add_special_tokens=True)
    assert wrapped[0] == tok.vocab.bos_id and wrapped[-1] == tok.vocab.eos_id
    assert tok.decode(wrapped) == "mon père"
    assert tok.decode(wrapped, skip_special_tokens=False) == "<s> mon père </s>"


def test_word_tokenizer_min_freq_sends_rare_words_to_unk():
    tok = WordTokenizer(min_freq=2).fit(["le chat dort", "le chien dort"])
    assert tok.vocab.itos[5:] == ["dort", "le"]
    assert tok.encode("le chat") == [tok.vocab["le"], tok.vocab.unk_id]


def test_tokenizer_bad_input():
    with pytest.raises(RuntimeError, match="not fitted"):
        WordTokenizer().encode("bonjour")
    with pytest.raises(ValueError, match="empty corpus"):
        WordTokenizer().fit([])
    with pytest.raises(ValueError, match="empty corpus"):
        CharTokenizer().fit(["", ""])
    with pytest.raises(TypeError, match="iterable of texts"):
        WordTokenizer().fit("une seule chaîne")
    with pytest.raises(TypeError, match="expects a string"):
        WordTokenizer().fit(["a"]).encode(["a"])


# ---------------------------------------------------------------------------- CharTokenizer
def test_char_tokenizer():
    tok = CharTokenizer().fit(["Je suis malade"])
    assert len(tok.vocab) == len(SPECIAL_TOKENS) + len(set("Je suis malade"))
    ids = tok.encode("Je suis")
    assert len(ids) == 7
    assert tok.decode(ids) == "Je suis"
    assert tok.decode(tok.encode("Je suis X")) == "Je suis <unk>"


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=80))
def test_char_tokenizer_round_trips_any_text_it_was_fitted_on(text):
    tok = CharTokenizer().fit([text])
    assert tok.decode(tok.encode(text)) == text


# ---------------------------------------------------------------------------- save / load
@pytest.mark.parametrize("cls", [WordTokenizer, CharTokenizer])
def test_tokenizer_save_load(cls, tmp_path):
    texts = ["Ma grand-mère est fière de moi.", "L'été, j'aime le café."]
    tok = cls(min_freq=1).fit(texts)
    path = tok.save(tmp_path / "tok.json")
    back = cls.load(path)
    assert back.vocab == tok.vocab
    assert back.encode(texts[1]) == tok.encode(texts[1])
    assert type(read_tokenizer(path)) is cls
    other = CharTokenizer if cls is WordTokenizer else WordTokenizer
    with pytest.raises(ValueError, match=f"not a {other.__name__}"):
        other.load(path)


# ---------------------------------------------------------------------------- bad files, clearly
@pytest.mark.parametrize("reader", [Vocab.load, read_tokenizer, WordTokenizer.load])
def test_a_file_that_is_not_utf8_names_the_file_and_line(reader, tmp_path):
    """Before: a bare UnicodeDecodeError with a byte offset and no file name."""
    from neuraltext.data import TextFileError

    path = tmp_path / "latin1.json"
    path.write_bytes('{"itos": [\n "caf\xe9"]}'.encode("latin-1"))
    with pytest.raises(TextFileError, match=r"latin1\.json, line 2, column 6: bytes e9 are not valid utf-8"):
        reader(path)


@pytest.mark.parametrize("content, message", [
    ("{oops", r"bad\.json, line 1, column 2: not valid JSON"),
    ("[1, 2]", r"bad\.json: expected a JSON object .* got a JSON list"),
    ('"text"', r"bad\.json: expected a JSON object .* got a JSON str"),
])
def test_read_tokenizer_names_the_file_on_bad_json(content, message, tmp_path):
    """Before: a JSONDecodeError without the path, and AttributeError ('list' has no 'get')."""
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_tokenizer(path)
    with pytest.raises(ValueError, match=message):
        Vocab.load(path)
    with pytest.raises(FileNotFoundError, match="no tokenizer file at .*missing"):
        read_tokenizer(tmp_path / "missing.json")


# ---------------------------------------------------------------------------- one Vocab for every chapter
def test_one_vocab_and_one_set_of_special_ids_in_every_chapter():
    """Chapter 1's words, chapter 2-3's counts and chapter 5-6's characters share the class and the
    special tokens with their ids (before: the date task had <bos>/<eos> with other ids)."""
    from neuraltext.cooccurrence import build_vocabulary
    from neuraltext.data import CharVocab, source_vocab, target_vocab
    from neuraltext.word2vec import build_vocab

    words = WordTokenizer().fit(["le chat dort", "le chien dort"]).vocab
    for v in (words, source_vocab(), target_vocab(), CharVocab("abc")):
        assert type(v) is Vocab
        assert v.itos[:5] == list(SPECIAL_TOKENS)
        assert (v.pad_id, v.unk_id, v.bos_id, v.eos_id, v.mask_id) == (0, 1, 2, 3, 4)
    sentences = [["le", "chat", "dort"], ["le", "chien", "dort"], ["un", "chat"]]
    ref = Vocab.build(sentences, specials=(), unk=None)
    for itos, counts in (build_vocabulary(sentences), build_vocab(sentences, min_count=1)):
        assert itos == ref.itos == ["chat", "dort", "le", "chien", "un"]
        assert counts.tolist() == [ref.counts[w] for w in ref.itos] == [2, 2, 2, 1, 1]


def test_character_vocab_encodes_strings_and_decodes_to_strings(tmp_path):
    v = Vocab.from_characters("0123456789-")
    assert len(v) == 5 + 11 and v.characters
    ids = v.encode("2017-02", bos=True, eos=True)
    assert ids[0] == v.bos_id and ids[-1] == v.eos_id and ids[1:-1] == [v[c] for c in "2017-02"]
    assert v.decode(ids + [v.pad_id, v["9"]]) == "2017-02"  # stops at </s>, skips <s> and <pad>
    assert v.encode("2x") == [v["2"], v.unk_id] and v.decode(v.encode("2x")) == "2<unk>"
    batch, lengths = v.batch(["12", "3"], eos=True)
    assert batch.tolist() == [[v["1"], v["2"], v.eos_id], [v["3"], v.eos_id, v.pad_id]]
    assert lengths.tolist() == [3, 2]
    back = Vocab.load(v.save(tmp_path / "chars.json"))
    assert back == v and back.decode(ids) == "2017-02"
    with pytest.raises(ValueError, match="single characters, got 'ab'"):
        Vocab(["ab"], characters=True)
    with pytest.raises(TypeError, match="not a string"):
        Vocab(["a"]).encode("a")  # a word vocabulary still refuses raw text
