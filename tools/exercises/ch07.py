"""Writes chapter 7's exercises section (labs form). Run: .venv/bin/python tools/exercises/ch07.py"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nb import code, exercise, exercises_intro, replace_exercises, solution, solution_end, solution_start  # noqa: E402

CELLS = [
    exercises_intro("Exercises 1, 4 and 5 are", "Exercises 2 and 3 are experiments with the chapter's models."),
    code("""import torch
from neuraltext import labs"""),
    exercise("ex-07-masking", "The 80/10/10 rule by hand", r"""
Write `my_mask_tokens(ids, mask_id, special_ids, vocab_size, p=0.15, generator=None)` without looking
at `neuraltext.bert.pretraining`. `ids` is a `(B, T)` tensor of token ids; the tokens whose id is in
`special_ids` (padding, `[CLS]`, `[SEP]`, `[MASK]`...) are never chosen. Choose each other token with
probability $p$; a chosen token is replaced by `mask_id` with probability 0.8, by a random *ordinary*
token (not special, in $[0, |V|)$) with probability 0.1, and left unchanged with probability 0.1.
Return `(inputs, labels)`, both like `ids`: `labels` holds the original id at the chosen positions and
$-100$ elsewhere (the index the loss ignores). Draw every random number with `generator`.

The answer is random, so the check measures it: on three seeded batches of 16,384 to 32,768 tokens
(one with a vocabulary of 50, one with special ids scattered through the text) the structure must be
exact, and the four proportions (chosen, `[MASK]`, replaced, unchanged) must be within five binomial
standard deviations of $p$, 80%, 10% and 10% (a random token equal to the original counts as
unchanged)."""),
    solution_start("ex-07-masking", r"""
Draw `u < p` among the non-special tokens for the choice, then one more uniform number per token,
`< 0.8` for `[MASK]`, `[0.8, 0.9)` for a random ordinary token, the rest unchanged:"""),
    code('''def my_mask_tokens(ids, mask_id, special_ids, vocab_size, p=0.15, generator=None):
    """BERT's 80/10/10 masking of ids (B, T): returns (inputs, labels), labels -100 where not chosen."""
    ### BEGIN SOLUTION
    specials = torch.tensor(list(special_ids) + [mask_id])
    eligible = ~torch.isin(ids, specials)
    chosen = eligible & (torch.rand(ids.shape, generator=generator) < p)
    u = torch.rand(ids.shape, generator=generator)
    ordinary = torch.tensor([i for i in range(vocab_size) if i not in specials])
    random_ids = ordinary[torch.randint(len(ordinary), ids.shape, generator=generator)]
    inputs = torch.where(chosen & (u < 0.8), mask_id, ids)
    inputs = torch.where(chosen & (u >= 0.8) & (u < 0.9), random_ids, inputs)
    return inputs, torch.where(chosen, ids, -100)
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("07.mask_tokens", my_mask_tokens)'),
    exercise("ex-07-all-mask", "Why not always [MASK]?", r"""
Pre-train the tiny BERT again with a masking that always uses `[MASK]` (set the 80% to 100%), then
measure how often it predicts the *input* token itself at unmasked positions. What does that say about
fine-tuning, where no `[MASK]` ever appears?"""),
    solution("ex-07-all-mask", r"""
With 100% `[MASK]` the loss only ever asks about `[MASK]` positions, so nothing forces the vector
of an ordinary token to keep predicting that token; at fine-tuning time every token is
"unmasked", a situation pre-training never showed. The 10% unchanged tokens teach the model that
an observed token is usually right, the 10% random ones that it may be wrong."""),
    exercise("ex-07-layers", "Which layer separates the senses?", r"""
Recompute the same-sense and different-senses means of the *baguette* / *loup* / *mole* table with
`word_vectors(..., layer=k)` for every layer $k = 0, \dots, 12$ ($k = 0$ is the input embedding).
Where does the difference peak?"""),
    solution("ex-07-layers", r"""
At layer 0 every occurrence has the same token embedding plus a position vector, so the cosines
are near 1 and the senses are not separated; the middle layers separate them best for this small
sentence-embedding model, while the last layer is pulled toward the whole sentence's meaning."""),
    exercise("ex-07-mean-pooling", "Mean pooling with a padding mask", r"""
Write `mean_pool(last_hidden_state, attention_mask)`: the sentence vectors `(B, H)` of a batch of last
hidden states `(B, T, H)` by mean pooling over the real tokens only,
$\mathbf{e} = \sum_t m_t \mathbf{h}_t \,/\, \max(\sum_t m_t, 10^{-9})$, where `attention_mask` `(B, T)`
holds $m_t$: 1 (or True) on tokens and 0 on padding, as a tokenizer returns it (integers) or as booleans.
A row with no token at all gets the zero vector (that is what the $10^{-9}$ is for). The check compares
you with `bert_finetune.pool(..., "mean")`, what `encode(..., pooling="mean")` uses."""),
    solution_start("ex-07-mean-pooling", r"""
Turn the mask into the hidden states' dtype, with a trailing axis so that it multiplies every
coordinate; the count is clamped so that an empty row divides 0 by $10^{-9}$:"""),
    code('''def mean_pool(last_hidden_state, attention_mask):
    """Masked mean over the T axis: (B, T, H), (B, T) -> (B, H)."""
    ### BEGIN SOLUTION
    m = attention_mask.to(last_hidden_state.dtype)[:, :, None]          # (B, T, 1)
    return (last_hidden_state * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("07.mean_pooling", mean_pool)'),
    exercise("ex-07-bias", "The attention mask as an additive bias", r"""
Chapter 6's attention accepts a float mask that is *added* to the scores,
$\mathrm{softmax}(QK^\top / \sqrt{d_k} + M)$. Write `attention_bias(attention_mask, dtype)` that turns
a tokenizer's `attention_mask` `(B, T)` (1 or True on tokens, 0 on padding) into such a bias of shape
`(B, 1, 1, T)` and dtype `dtype`, so that it broadcasts over heads and queries: 0 on tokens and
`torch.finfo(dtype).min`, the most negative number of the dtype, on padding keys (what `transformers`
does). The check adds your bias to seeded scores of shape `(B, 2, T, T)` and compares the softmax with
the weights of the boolean mask (exactly 0 on padding), and checks that the bias is 0 on tokens."""),
    solution_start("ex-07-bias", r"""
$(1 - m) \times$ `finfo.min`. Why not $-\infty$? Both give weight 0 to padding, but a query whose keys
are *all* blocked would get $\mathrm{softmax}(-\infty, \dots, -\infty)$ = NaN, while the finite minimum
gives a finite, uniform row, which the rest of the model can ignore."""),
    code('''def attention_bias(attention_mask, dtype):
    """(B, T) mask, 1 = token, 0 = padding -> (B, 1, 1, T) additive bias: 0 on tokens, finfo(dtype).min on padding."""
    ### BEGIN SOLUTION
    keep = attention_mask.to(dtype)[:, None, None, :]
    return (1.0 - keep) * torch.finfo(dtype).min
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("07.attention_bias", attention_bias)'),
]

if __name__ == "__main__":
    replace_exercises(Path(__file__).resolve().parents[2] / "book" / "07_bert.ipynb", CELLS)
