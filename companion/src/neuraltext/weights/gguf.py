"""GGUF checkpoints (llama.cpp's file format): their header checked, then read into an ordinary
``transformers`` folder, once.

``transformers`` loads a GGUF file directly (``gguf_file=``, with the ``gguf`` package), dequantising
every tensor to float32: ~20 s for SmolLM2-135M. :func:`convert_gguf` saves that result as
safetensors, which then loads in under a second.

The ``gguf`` package's reader trusts the counts it reads: a 115-byte file whose key-value array
claims 2^40 elements makes it allocate until memory runs out. :func:`read_header` walks the header
first, little- or big-endian, versions 2 and 3::

    "GGUF"  u32 version  u64 n_tensors  u64 n_kv
    n_kv x      (string key, u32 value_type, value)        string = u64 length + UTF-8 bytes
                                                           array  = u32 item_type, u64 count, items
    n_tensors x (string name, u32 n_dims, u64 dims[n_dims], u32 ggml_type, u64 offset)
    padding to general.alignment (default 32), then the tensor data

and bounds every count and length by the bytes left in the file *before* it loops or slices (an
array of ``count`` items needs at least ``count x`` the smallest item), so a truncated, random or
crafted file is refused at once, by a :class:`GGUFError` that names the file, the offset and what
did not fit. Files that the ``gguf`` package cannot dequantise are refused the same way, before the load.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path

from neuraltext.weights.cache import write_folder

__all__ = ["GGUFError", "GGUFTensorInfo", "GGUFHeader", "read_header", "check_types", "convert_gguf"]

MAGIC = b"GGUF"
VERSIONS = (2, 3)  # the ones the gguf package reads
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_NESTING = 4  # arrays of arrays of ...: deeper is refused (the recursion is bounded by this)
DEFAULT_ALIGNMENT = 32
#: bytes of each scalar value type (GGUFValueType): uint8, int8, uint16, int16, uint32, int32,
#: float32, bool, -, -, uint64, int64, float64
_SCALAR_BYTES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9
#: the fewest bytes one item of each type takes: a string is at least its u64 length, an array at
#: least its u32 item type and u64 count
_MIN_BYTES = {**_SCALAR_BYTES, _STRING: 8, _ARRAY: 12}


class GGUFError(ValueError):
    """A GGUF file that cannot be read; the message names the file and what is wrong."""


@dataclass(frozen=True)
class GGUFTensorInfo:
    name: str
    ggml_type: int  #: a ``gguf.GGMLQuantizationType`` value
    shape: tuple[int, ...]  #: ggml's order: the first dimension is the contiguous one
    offset: int  #: from the start of the tensor data
    n_bytes: int


@dataclass(frozen=True)
class GGUFHeader:
    path: str
    version: int
    byte_order: str  #: "<" little-endian, ">" big-endian
    alignment: int
    data_offset: int  #: where the tensor data starts in the file
    keys: list[str] = field(default_factory=list)
    tensors: list[GGUFTensorInfo] = field(default_factory=list)


class _Cursor:
    """A position in the file; every read is checked against the bytes left first."""

    def __init__(self, data, path: str):
        self.data, self.path, self.pos, self.order = data, path, 0, "<"

    def need(self, n: int, what: str) -> None:
        left = len(self.data) - self.pos
        if n > left:
            raise GGUFError(f"{self.path}: truncated or corrupt GGUF file: {what} needs {n} bytes at offset "
                            f"{self.pos}, but only {left} of the file's {len(self.data)} bytes are left")

    def unpack(self, fmt: str, what: str):
        size = struct.calcsize(fmt)
        self.need(size, what)
        (value,) = struct.unpack_from(self.order + fmt, self.data, self.pos)
        self.pos += size
        return value

    def skip(self, n: int, what: str) -> None:
        self.need(n, what)
        self.pos += n

    def string(self, what: str) -> str:
        n = self.unpack("Q", f"the length of {what}")
        self.need(n, what)
        raw = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise GGUFError(f"{self.path}: {what} at offset {self.pos - n} is not UTF-8: {raw[:40]!r}") from None


def _skip_value(c: _Cursor, vtype: int, what: str, depth: int = 0):
    """Step over one value of type ``vtype``; returns it when it is a scalar (for general.alignment)."""
    if vtype in _SCALAR_BYTES:
        fmt = {1: "B", 2: "H", 4: "I", 8: "Q"}[_SCALAR_BYTES[vtype]]
        return c.unpack(fmt, what)
    if vtype == _STRING:
        c.skip(c.unpack("Q", f"the length of {what}"), what)
        return None
    if vtype != _ARRAY:
        raise GGUFError(f"{c.path}: {what} has value type {vtype} at offset {c.pos}; known types: 0..12")
    if depth >= MAX_NESTING:
        raise GGUFError(f"{c.path}: {what} nests arrays more than {MAX_NESTING} deep")
    itype, count = c.unpack("I", f"the item type of {what}"), c.unpack("Q", f"the length of {what}")
    if itype not in _MIN_BYTES:
        raise GGUFError(f"{c.path}: {what} is an array of value type {itype}; known types: 0..12")
    c.need(count * _MIN_BYTES[itype], f"{what} (an array of {count} items of type {itype})")  # before any loop
    if itype in _SCALAR_BYTES:
        c.skip(count * _SCALAR_BYTES[itype], what)
    else:
        for i in range(count):
            _skip_value(c, itype, f"item {i} of {what}", depth + 1)
    return None


def _read_preamble(c: _Cursor) -> tuple[int, int, int]:
    """Magic, version (which also tells the byte order), and the two counts, each bounded by the
    smallest size its entries can take (a key-value pair 13 bytes, a tensor description 24)."""
    c.need(24, "the GGUF preamble (magic, version, tensor and key-value counts)")
    magic = bytes(c.data[:4])
    if magic != MAGIC:
        raise GGUFError(f"{c.path}: not a GGUF file: it starts with {magic!r}, expected {MAGIC!r}")
    c.pos = 4
    version = c.unpack("I", "the version")
    if version & 0xFFFF == 0:  # a file written with the other byte order (as the gguf package guesses)
        c.order, version = ">", struct.unpack(">I", struct.pack("<I", version))[0]
    if version not in VERSIONS:
        raise GGUFError(f"{c.path}: GGUF version {version}; readable versions: {VERSIONS}")
    n_tensors, n_kv = c.unpack("Q", "the tensor count"), c.unpack("Q", "the key-value count")
    c.need(n_kv * 13 + n_tensors * 24, f"{n_kv} key-value pairs and {n_tensors} tensor descriptions")
    return version, n_tensors, n_kv


def _read_tensor_info(c: _Cursor, i: int, sizes: dict) -> GGUFTensorInfo:
    name = c.string(f"the name of tensor {i}")
    n_dims = c.unpack("I", f"tensor {name!r}'s number of dimensions")
    if n_dims > MAX_DIMS:
        raise GGUFError(f"{c.path}: tensor {name!r} claims {n_dims} dimensions; at most {MAX_DIMS}")
    shape = tuple(c.unpack("Q", f"tensor {name!r}'s shape") for _ in range(n_dims))
    ggml_type = c.unpack("I", f"tensor {name!r}'s type")
    offset = c.unpack("Q", f"tensor {name!r}'s offset")
    if ggml_type not in sizes:
        raise GGUFError(f"{c.path}: tensor {name!r} has ggml type {ggml_type}, unknown to the gguf package "
                        f"(known: {sorted(sizes)})")
    block, type_size = sizes[ggml_type]
    if shape and shape[0] % block:
        raise GGUFError(f"{c.path}: tensor {name!r} has shape {shape}: its first dimension must be a "
                        f"multiple of the type's block of {block} weights")
    n = 1
    for dim in shape:
        n *= dim
    return GGUFTensorInfo(name, ggml_type, shape, offset, n // block * type_size)


def read_header(path: str | Path) -> GGUFHeader:
    """Walk and check a GGUF file's header (see the module docstring) without trusting any count:
    every array, string and tensor must fit in the file. Raises :class:`GGUFError` naming the file."""
    from gguf import GGML_QUANT_SIZES

    path = Path(path)
    sizes = {int(t): v for t, v in GGML_QUANT_SIZES.items()}
    with open(path, "rb") as f:
        if path.stat().st_size == 0:
            raise GGUFError(f"{path}: empty file, not a GGUF checkpoint")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            c = _Cursor(data, str(path))
            version, n_tensors, n_kv = _read_preamble(c)
            keys, alignment = [], DEFAULT_ALIGNMENT
            for i in range(n_kv):
                key = c.string(f"key {i}")
                vtype = c.unpack("I", f"the value type of {key!r}")
                value = _skip_value(c, vtype, f"the value of {key!r}")
                if key == "general.alignment":
                    if vtype != 4 or value == 0 or value & (value - 1):
                        raise GGUFError(f"{path}: general.alignment must be a uint32 power of two, got "
                                        f"{value!r} (value type {vtype})")
                    alignment = value
                keys.append(key)
            tensors = [_read_tensor_info(c, i, sizes) for i in range(n_tensors)]
            data_offset = -(-c.pos // alignment) * alignment
            _check_layout(path, keys, tensors, data_offset, len(data))
    return GGUFHeader(str(path), version, c.order, alignment, data_offset, keys, tensors)


def _check_layout(path: Path, keys: list[str], tensors: list[GGUFTensorInfo], data_offset: int, size: int) -> None:
    """No key or tensor name twice; every tensor's bytes inside the file."""
    for what, names in (("key", keys), ("tensor", [t.name for t in tensors])):
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise GGUFError(f"{path}: the {what} {name!r} appears twice")
            seen.add(name)
    for t in tensors:
        end = data_offset + t.offset + t.n_bytes
        if end > size:
            raise GGUFError(f"{path}: tensor {t.name!r} ({t.n_bytes} bytes at data offset {t.offset}) ends at "
                            f"byte {end}, past the end of the file ({size} bytes): truncated file?")


def check_types(gguf: Path) -> GGUFHeader:
    """Check the header (:func:`read_header`), then refuse, before the ~20 s load, a GGUF whose tensors
    use a quantisation type the ``gguf`` package cannot dequantise (the error names the type and the
    tensors). Returns the header."""
    from gguf import GGMLQuantizationType
    from gguf.quants import _type_traits

    header = read_header(gguf)
    readable = {GGMLQuantizationType.F32, GGMLQuantizationType.F16, *_type_traits}
    bad: dict[str, list[str]] = {}
    for t in header.tensors:
        kind = GGMLQuantizationType(t.ggml_type)
        if kind not in readable:
            bad.setdefault(kind.name, []).append(t.name)
    if bad:
        found = "; ".join(f"{q} ({len(n)} tensors, e.g. {n[0]})" for q, n in bad.items())
        raise GGUFError(
            f"{gguf}: quantisation type(s) that cannot be read: {found}. Readable types: "
            f"{', '.join(sorted(q.name for q in readable))}.")
    return header


def convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantise a GGUF checkpoint once and save it as an ordinary transformers folder, written
    whole or not at all (:func:`neuraltext.weights.cache.write_folder`)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    check_types(gguf)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # save_pretrained refuses a GGUF-loaded model; rebuild a plain model from the same config,
    # without the GGUF quantization_config, and copy the (dequantised, float32) weights into it.
    config = AutoConfig.for_model(**{k: v for k, v in loaded.config.to_dict().items()
                                     if k not in ("quantization_config", "_name_or_path", "transformers_version")})
    plain = AutoModelForCausalLM.from_config(config)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    real_missing = [k for k in missing if not k.endswith("lm_head.weight")]
    if real_missing or unexpected:
        raise RuntimeError(f"GGUF conversion mismatch: missing {real_missing}, unexpected {unexpected}")

    def fill(folder: Path) -> None:
        plain.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    write_folder(target, fill)
