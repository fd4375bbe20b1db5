"""Pretrained BERT checkpoints (Hugging Face folders) loaded into our :class:`~neuraltext.bert.BertModel`.

``transformers`` names the same tensors differently (``encoder.layer.3.attention.self.query`` is our
``encoder.3.self_attn.W_q``...); :func:`load_state_dict_from_hf` maps every name and checks every shape, so a
checkpoint either loads completely or fails with the names that did not fit. :func:`from_pretrained`
takes a packaged name (``"all-minilm-l6-v2"``, ``"multilingual-e5-small"``), a local folder or, online,
a hub name, and returns the model and its tokenizer.
"""

from __future__ import annotations

from pathlib import Path

import torch

from neuraltext.bert.model import BertConfig, BertForPreTraining, BertModel
from neuraltext.weights.files import load_safetensors, read_config_json

__all__ = ["CheckpointError", "SUPPORTED_ARCHITECTURES", "load_state_dict_from_hf", "from_pretrained"]


class CheckpointError(ValueError):
    """A checkpoint that does not fit our BERT: says everything that is wrong at once."""


SUPPORTED_ARCHITECTURES = ("BertModel", "BertForPreTraining", "BertForMaskedLM", "BertForSequenceClassification",
                           "BertForTokenClassification", "BertForNextSentencePrediction", "BertForQuestionAnswering")
_LAYER = {  # our name inside encoder.{i} -> transformers' name inside encoder.layer.{i}
    "self_attn.W_q": "attention.self.query", "self_attn.W_k": "attention.self.key",
    "self_attn.W_v": "attention.self.value", "self_attn.W_o": "attention.output.dense",
    "norm1": "attention.output.LayerNorm", "ffn.W_1": "intermediate.dense", "ffn.W_2": "output.dense",
    "norm2": "output.LayerNorm",
}
_TOP = {"embeddings.token": "embeddings.word_embeddings", "embeddings.position": "embeddings.position_embeddings",
        "embeddings.segment": "embeddings.token_type_embeddings", "embeddings.norm": "embeddings.LayerNorm",
        "pooler.dense": "pooler.dense"}
_HEADS = {"mlm.transform": "cls.predictions.transform.dense", "mlm.norm": "cls.predictions.transform.LayerNorm",
          "nsp.classifier": "cls.seq_relationship"}


def _hf_name(ours: str) -> str:
    """Our parameter name -> transformers' (without the ``bert.`` prefix of the models with heads)."""
    owner, _, leaf = ours.rpartition(".")
    if ours.startswith("bert."):
        return _hf_name(ours[5:])
    if ours == "mlm.bias":
        return "cls.predictions.bias"
    if owner.startswith("encoder."):
        _, i, sub = owner.split(".", 2)
        return f"encoder.layer.{i}.{_LAYER[sub]}.{leaf}"
    return f"{_TOP.get(owner) or _HEADS[owner]}.{leaf}"


def _normalise_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip a ``bert.`` prefix, rename old TF-era ``gamma``/``beta`` to ``weight``/``bias``, drop
    buffers that are not parameters (``position_ids``) and the tied decoder copy."""
    out = {}
    for key, value in state.items():
        key = key[5:] if key.startswith("bert.") else key
        key = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        if key.endswith("position_ids") or key in ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias"):
            continue  # decoder.weight is the token embedding (tied); decoder.bias is cls.predictions.bias
        out[key] = value
    return out


def load_state_dict_from_hf(model: BertModel | BertForPreTraining, state: dict[str, torch.Tensor],
                            source: str = "checkpoint", assign: bool = False) -> None:
    """Copy a transformers BERT state dict into ``model`` after checking every key and shape; on any
    problem raise one :class:`CheckpointError` listing all of them, with ``model`` untouched.
    Loading into a :class:`BertModel` ignores the pre-training heads (``cls.*``), as transformers does.
    ``assign=True`` makes the checkpoint's tensors the parameters (for a model built on the meta device)."""
    state = _normalise_keys(state)
    heads = isinstance(model, BertForPreTraining)
    ours = {k: v for k, v in model.state_dict().items() if k != "mlm.decoder.weight"}  # tied to the embedding
    wanted = {_hf_name(k): k for k in ours}
    missing = sorted(hf for hf in wanted if hf not in state)
    unexpected = sorted(k for k in state if k not in wanted and (heads or not k.startswith("cls.")))
    mismatched = [f"{hf}: checkpoint {tuple(state[hf].shape)}, model {tuple(ours[k].shape)}"
                  for hf, k in sorted(wanted.items()) if hf in state and state[hf].shape != ours[k].shape]
    problems = ([f"missing key(s): {', '.join(missing)}"] if missing else []) + \
        ([f"unexpected key(s): {', '.join(unexpected)}"] if unexpected else []) + \
        ([f"shape mismatch(es): {'; '.join(mismatched)}"] if mismatched else [])
    if problems:
        raise CheckpointError(f"{source} does not fit {type(model).__name__} "
                              f"({model.cfg.n_layers} layers, hidden {model.cfg.hidden_size}):\n  - "
                              + "\n  - ".join(problems))
    new = {k: state[hf].to(ours[k].dtype) for hf, k in wanted.items()}
    if heads:
        new["mlm.decoder.weight"] = new["bert.embeddings.token.weight"]
    model.load_state_dict(new, strict=True, assign=assign)


def _read_config(folder: Path) -> BertConfig:
    path = folder / "config.json"
    if not path.exists():
        raise CheckpointError(f"{folder} has no config.json: not a transformers model folder")
    try:
        cfg = read_config_json(path)
    except ValueError as err:  # not JSON, not UTF-8, not an object: the message names the file
        raise CheckpointError(str(err)) from None
    problems = []
    if cfg.get("model_type") != "bert":
        problems.append(f"model_type is {cfg.get('model_type')!r}, expected 'bert'")
    archs = cfg.get("architectures") or ["BertModel"]
    if not set(archs) & set(SUPPORTED_ARCHITECTURES):
        problems.append(f"architectures {archs} is none of {list(SUPPORTED_ARCHITECTURES)}")
    if cfg.get("hidden_act", "gelu") != "gelu":
        problems.append(f"hidden_act is {cfg.get('hidden_act')!r}; our blocks use the exact 'gelu'")
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        problems.append(f"position_embedding_type is {cfg.get('position_embedding_type')!r}, expected 'absolute'")
    missing = [k for k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                           "intermediate_size", "max_position_embeddings") if k not in cfg]
    if missing:
        problems.append(f"config lacks {missing}")
    if problems:
        raise CheckpointError(f"{path}: unsupported architecture:\n  - " + "\n  - ".join(problems))
    try:
        return BertConfig.from_hf(cfg)
    except (TypeError, ValueError) as err:  # a value BertConfig refuses (a size of 0, a string...)
        raise CheckpointError(f"{path}: {err}") from None


def _read_weights(folder: Path) -> tuple[dict[str, torch.Tensor], str]:
    st = folder / "model.safetensors"
    if st.exists():
        try:
            return load_safetensors(st), str(st)
        except ValueError as err:  # truncated or corrupt: the message names the file
            raise CheckpointError(str(err)) from None
    pt = folder / "pytorch_model.bin"
    if pt.exists():
        try:
            return torch.load(pt, map_location="cpu", weights_only=True), str(pt)
        except Exception as err:  # a truncated zip, or a pickle that weights_only refuses
            raise CheckpointError(f"{pt}: not a readable PyTorch checkpoint: {type(err).__name__}: {err}") from None
    raise CheckpointError(f"{folder} has neither model.safetensors nor pytorch_model.bin")


def from_pretrained(name_or_path: str = "all-minilm-l6-v2", device: str | torch.device | None = None,
                    heads: bool = False, tokenizer: bool = True) -> BertModel | BertForPreTraining:
    """Our :class:`BertModel` (or :class:`BertForPreTraining` with ``heads=True``) carrying the weights
    of a transformers BERT checkpoint, in eval mode, with its tokenizer as ``.tokenizer``.

    ``name_or_path`` goes through :func:`neuraltext.weights.resolve`: a packaged name
    (``"all-minilm-l6-v2"``, ``"multilingual-e5-small"``), a local folder, or a hub name when online.
    An unsupported architecture, missing/unexpected keys or shape mismatches raise one
    :class:`CheckpointError` listing them; nothing is half-loaded.
    """
    from neuraltext.weights.registry import resolve
    from neuraltext.utils import get_device

    resolved = resolve(name_or_path)
    folder = Path(resolved.path)
    if resolved.source == "hub":  # online: fetch the folder (config, weights, tokenizer) first
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(resolved.path, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"]))
    cfg = _read_config(folder)
    with torch.device("meta"):  # shapes only: no time spent drawing random weights that are replaced
        model = BertForPreTraining(cfg) if heads else BertModel(cfg)
    state, source = _read_weights(folder)
    load_state_dict_from_hf(model, state, source, assign=True)
    bert = model.bert if heads else model
    if tokenizer:
        from transformers import AutoTokenizer

        bert.tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if heads:
        model.tokenizer = bert.tokenizer
    return model.to(get_device(device)).eval()
