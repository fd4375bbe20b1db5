"""Values that cross from a student's kernel to the grader as JSON: no pickle, so no code runs on reading.

The grader (:mod:`neuraltext.labs.grade`) calls a student's function inside the notebook's kernel and
judges the result in its own process. What comes back is written by code the student could have
tampered with, so it is read as data only: :func:`encode` turns tensors, arrays, numbers, strings,
tuples, lists, sets, dicts and modules (as their ``state_dict``) into plain JSON, and :func:`decode`
rebuilds them; anything else comes back as an opaque placeholder that matches no reference.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np
import torch

__all__ = ["encode", "decode", "Opaque"]


class Opaque(str):
    """A value the grader cannot rebuild (its type's name); it compares equal to no reference value."""

    def __eq__(self, other: object) -> bool:
        return False

    __hash__ = str.__hash__


def _float(x: float) -> Any:
    return x if math.isfinite(x) else {"float": repr(x)}


def encode(x: Any) -> Any:
    """``x`` as JSON-ready data (see the module docstring for the kinds kept)."""
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, int) and not isinstance(x, bool):
        return {"int": str(x)}
    if isinstance(x, float):
        return _float(x)
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu().contiguous()
        raw = t.view(torch.uint8) if t.dtype.itemsize == 1 or t.numel() == 0 else t.view(-1).view(torch.uint8)
        return {"tensor": str(t.dtype).removeprefix("torch."), "shape": list(t.shape),
                "data": base64.b64encode(raw.numpy().tobytes()).decode("ascii")}
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biufc":
            return {"opaque": f"numpy.ndarray of {x.dtype}"}
        a = np.ascontiguousarray(x)
        return {"ndarray": a.dtype.str, "shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}
    if isinstance(x, (np.integer, np.floating, np.bool_)):
        return {"npscalar": np.asarray(x).dtype.str, "value": encode(x.item())}
    if isinstance(x, torch.dtype):
        return {"dtype": str(x).removeprefix("torch.")}
    if isinstance(x, torch.nn.Module):
        return {"module": encode(dict(x.state_dict())), "training": x.training}
    if isinstance(x, (torch.Generator, np.random.Generator)):
        return {"generator": True}
    if isinstance(x, dict):
        return {"dict": [[encode(k), encode(v)] for k, v in x.items()]}
    if isinstance(x, (list, tuple, set, frozenset)):
        return {type(x).__name__: [encode(v) for v in x]}
    return {"opaque": type(x).__name__}


def _tensor(d: dict) -> torch.Tensor:
    dtype = getattr(torch, d["tensor"], None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown tensor dtype {d['tensor']!r}")
    raw = torch.frombuffer(bytearray(base64.b64decode(d["data"])), dtype=torch.uint8) if d["data"] else torch.empty(0, dtype=torch.uint8)
    return raw.view(dtype).reshape(d["shape"]).clone()


def decode(d: Any) -> Any:
    """The value :func:`encode` wrote (modules come back as ``{"state_dict": ..., "training": ...}``)."""
    if d is None or isinstance(d, (bool, str, float)):
        return d
    if not isinstance(d, dict) or len(d) == 0:
        return Opaque(type(d).__name__)
    if "int" in d:
        return int(d["int"])
    if "float" in d:
        return float(d["float"])
    if "tensor" in d:
        return _tensor(d)
    if "ndarray" in d:
        return np.frombuffer(base64.b64decode(d["data"]), dtype=np.dtype(d["ndarray"])).reshape(d["shape"]).copy()
    if "npscalar" in d:
        return np.dtype(d["npscalar"]).type(decode(d["value"]))
    if "dtype" in d:
        dtype = getattr(torch, d["dtype"], None)
        return dtype if isinstance(dtype, torch.dtype) else Opaque(d["dtype"])
    if "module" in d:
        return {"state_dict": decode(d["module"]), "training": d["training"]}
    if "generator" in d:
        return "<a random generator>"
    if "dict" in d:
        return {decode(k): decode(v) for k, v in d["dict"]}
    for kind, build in (("list", list), ("tuple", tuple), ("set", set), ("frozenset", frozenset)):
        if kind in d:
            return build(decode(v) for v in d[kind])
    return Opaque(str(d.get("opaque", "unknown")))
