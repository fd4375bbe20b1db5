"""GGUF checkpoints (llama.cpp's file format) read into an ordinary ``transformers`` folder, once.

``transformers`` loads a GGUF file directly (``gguf_file=``, with the ``gguf`` package), dequantising
every tensor to float32: ~20 s for SmolLM2-135M. :func:`convert_gguf` saves that result as
safetensors, which then loads in under a second. Files that the ``gguf`` package cannot read are
refused before the load, with an error that names the file.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

__all__ = ["GGUFError", "check_types", "convert_gguf"]


class GGUFError(ValueError):
    """A GGUF file that cannot be read; the message names the file and what is wrong."""


def check_types(gguf: Path) -> None:
    """Refuse, before the ~20 s load, a GGUF whose tensors use a quantisation type the ``gguf``
    package cannot dequantise (the error names the type and the tensors)."""
    from gguf import GGMLQuantizationType, GGUFReader
    from gguf.quants import _type_traits

    readable = {GGMLQuantizationType.F32, GGMLQuantizationType.F16, *_type_traits}
    bad: dict[str, list[str]] = {}
    for t in GGUFReader(gguf).tensors:
        if t.tensor_type not in readable:
            bad.setdefault(t.tensor_type.name, []).append(t.name)
    if bad:
        found = "; ".join(f"{q} ({len(n)} tensors, e.g. {n[0]})" for q, n in bad.items())
        raise GGUFError(
            f"{gguf}: quantisation type(s) that cannot be read: {found}. Readable types: "
            f"{', '.join(sorted(q.name for q in readable))}.")


def convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantise a GGUF checkpoint once and save it as an ordinary transformers folder."""
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
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write to a temporary folder and rename, so two processes converting at once cannot
    # leave a half-written checkpoint behind.
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "config.json").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
