"""Chat templates (chapter 8): a conversation laid out as one text, split where its parts begin.

An instruction-tuned model reads a conversation as one string in which special tokens mark who speaks;
each model family has its own markers (SmolLM2 and Qwen: ``<|im_start|>assistant ... <|im_end|>``;
Llama 3: ``<|start_header_id|>assistant<|end_header_id|> ... <|eot_id|>``; Gemma:
``<start_of_turn>model ... <end_of_turn>``), written in the tokenizer's *chat template*. Code that
needs a part of the conversation -- the prompt and the answer of a demonstration (chapter 9's SFT),
the report shared by every question (chapter 11's KV-prefix cache) -- must ask the template, never
hard-code one family's markers:

* :func:`chat_split` renders ``head + tail`` and returns the two texts, ``head_text + tail_text``
  being the whole conversation. When the tail starts with the assistant's turn (or is empty), the
  head ends with the assistant's header: the prompt the model continues;
* :func:`end_of_turn_id` is the token the template closes an assistant turn with (the one a model
  emits when its answer is complete), read from the template itself, the tokenizer's EOS otherwise.
"""

from __future__ import annotations

__all__ = ["chat_split", "end_of_turn_id"]


def _render(tokenizer, messages: list[dict], add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def chat_split(tokenizer, head: list[dict], tail: list[dict]) -> tuple[str, str]:
    """``(head_text, tail_text)`` of the conversation ``head + tail`` under ``tokenizer``'s template.

    The whole conversation ends with the assistant's header unless its last turn is the assistant's;
    the head does when the tail is empty or starts with the assistant's turn. Raises ``ValueError`` when
    the template does not render the head as a prefix of the whole (it then cannot be shared)."""
    if not head:
        raise ValueError("head must hold at least one message, got []")
    head_prompt = not tail or tail[0]["role"] == "assistant"
    head_text = _render(tokenizer, head, add_generation_prompt=head_prompt)
    if not tail:
        return head_text, ""
    full = _render(tokenizer, head + tail, add_generation_prompt=tail[-1]["role"] != "assistant")
    if not full.startswith(head_text):
        roles = [m["role"] for m in head]
        raise ValueError(f"the chat template of {type(tokenizer).__name__} does not render the turns {roles} as a "
                         "prefix of the whole conversation; split it by hand for this tokenizer")
    return head_text, full[len(head_text):]


def end_of_turn_id(tokenizer) -> int:
    """The id of the token that closes an assistant turn in ``tokenizer``'s chat template (the first
    special token after the answer: ``<|im_end|>``, ``<|eot_id|>``, ``<end_of_turn>``), else its EOS."""
    marker = "Réponse42"
    try:
        after = _render(tokenizer, [{"role": "user", "content": "?"}, {"role": "assistant", "content": marker}],
                        add_generation_prompt=False).split(marker, 1)[1]
    except (ValueError, IndexError, AttributeError):  # no chat template, or one that drops the answer
        after = ""
    special = set(tokenizer.all_special_ids)
    for token_id in tokenizer(after, add_special_tokens=False)["input_ids"] if after else []:
        if token_id in special:
            return int(token_id)
    if tokenizer.eos_token_id is None:
        raise ValueError(f"{type(tokenizer).__name__} has no chat template end-of-turn token and no eos_token_id")
    return int(tokenizer.eos_token_id)
