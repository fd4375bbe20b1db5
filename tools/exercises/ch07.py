"""Writes chapter 7's exercises section (labs form). Run: .venv/bin/python tools/exercises/ch07.py

Also tags `solution` the hidden body cell that computes only the numbers solution 5 quotes (the
`ex_layers_*` glue names), so the student notebook drops it.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nb import (code, exercise, exercises_intro, replace_exercises, solution, solution_end,  # noqa: E402
                solution_start, tag_solution_cell)

NOTEBOOK = Path(__file__).resolve().parents[2] / "book" / "07_bert.ipynb"
HIDDEN = "# The numbers quoted in solution 5"

CELLS = [
    exercises_intro("Exercises 1, 2, 4 and 6 are", "Exercises 3 and 5 are experiments with the chapter's models."),
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
    exercise("ex-07-mlm-loss", "The masked-language-model loss", r"""
Write `my_mlm_loss(mlm_logits, labels)`, the loss {eq}`mlm` of a batch: `mlm_logits` `(B, T, |V|)` are the
scores of the MLM head at every position, `labels` `(B, T)` holds the original token at the chosen
positions $M$ and $-100$ elsewhere (what `mask_tokens` returns). Return
$L_{\mathrm{MLM}} = -\frac{1}{|M|}\sum_{t \in M} \log P(w_t \mid \text{context})$ as a 0-dimensional tensor
of the logits' dtype: the positions outside $M$ count neither in the sum nor in $|M|$. The check compares
you with `neuraltext.bert.mlm_loss` on seeded batches, a row without any chosen token, float64 logits and
logits in the hundreds."""),
    solution_start("ex-07-mlm-loss", r"""
Select the chosen positions first, so that the mean runs over $|M|$ only; `log_softmax` subtracts the
largest score before exponentiating, so logits in the hundreds do not overflow:"""),
    code('''def my_mlm_loss(mlm_logits, labels):
    """L_MLM of logits (B, T, V) and labels (B, T), -100 at the positions that were not chosen."""
    ### BEGIN SOLUTION
    chosen = labels != -100                                   # the positions in M
    log_p = torch.log_softmax(mlm_logits[chosen], dim=-1)     # (|M|, V)
    return -log_p.gather(-1, labels[chosen][:, None]).mean()
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("07.mlm_loss", my_mlm_loss)'),
    exercise("ex-07-all-mask", "Why not always [MASK]?", r"""
Pre-train the tiny BERT again with a masking that always uses `[MASK]` (set the 80% to 100%), then
measure how often it predicts the *input* token itself at unmasked positions. What does that say about
fine-tuning, where no `[MASK]` ever appears?"""),
    solution("ex-07-all-mask", r"""
With 100% `[MASK]` the loss only ever asks about `[MASK]` positions, so nothing forces the vector
of an ordinary token to keep predicting that token; at fine-tuning time every token is
"unmasked", a situation pre-training never showed. The 10% unchanged tokens teach the model that
an observed token is usually right, the 10% random ones that it may be wrong."""),
    exercise("ex-07-parameters", "BERT-Large's 340 million parameters", r"""
Write `my_bert_parameters(cfg)`, the number of parameters of a `BertModel` (embeddings, encoder blocks
and pooler) built from a `BertConfig` `cfg`, from its sizes only: `vocab_size` $V$, `hidden_size` $H$,
`n_layers` $N$, `intermediate_size` $F$, `max_position` $P$ and `type_vocab_size` $S$ (the number of
heads does not matter: why?). Every linear layer has a bias, every layer norm a gain and a bias. The
check compares you with the modules' own count on BERT-base, BERT-Large ($H = 1024$, $N = 24$,
$F = 4096$), multilingual-e5-small's sizes and seeded small configurations."""),
    solution_start("ex-07-parameters", r"""
Count what each module holds. The heads split $H$ into $h$ pieces of $H/h$, but $W_q$, $W_k$, $W_v$ and
$W_o$ are $H \times H$ whatever $h$ is. BERT-Large gives {glue:text}`n_bert_large:,`, the lecture's "340M":"""),
    code('''def my_bert_parameters(cfg):
    """Parameters of a BertModel with the sizes of cfg (embeddings, N blocks, pooler)."""
    ### BEGIN SOLUTION
    H, F, V = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size
    embeddings = (V + cfg.max_position + cfg.type_vocab_size) * H + 2 * H   # three tables and a layer norm
    attention = 4 * (H * H + H)                                             # W_q, W_k, W_v, W_o and biases
    feed_forward = (H * F + F) + (F * H + H)
    block = attention + feed_forward + 2 * 2 * H                            # and two layer norms
    return embeddings + cfg.n_layers * block + (H * H + H)                  # the pooler
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("07.bert_parameters", my_bert_parameters)'),
    exercise("ex-07-layers", "Which layer separates the senses?", r"""
Recompute the same-sense and different-senses means of the *baguette* / *loup* / *mole* table with
`word_vectors(..., layer=k)` for every layer $k = 0, \dots, 12$ ($k = 0$ is the input embedding).
Where does the difference peak?"""),
    solution("ex-07-layers", r"""
`probe.separation_by_layer(bert, SENSES, range(13))` computes the table with
`word_vectors(..., layer=k)`. At layer 0 an occurrence's vector is its pieces' token embeddings plus a
position vector, then a layer norm: the sentence has not entered yet, so the lowest cosine there is
{glue:text}`ex_layers_lowest0:.2f` (against {glue:text}`ex_layers_lowest_last:.2f` at the last layer),
and any gap comes from positions. In the run saved here the gap (same sense minus different senses),
averaged over the three words, is largest at layer {glue:text}`ex_layers_best_mean`
({glue:text}`ex_layers_gap_mean:.3f`); *baguette* peaks at layer {glue:text}`ex_layers_best_baguette`
({glue:text}`ex_layers_gap_baguette:.3f`), *mole* at layer {glue:text}`ex_layers_best_mole`
({glue:text}`ex_layers_gap_mole:.3f`), and *loup*'s gap is positive at {glue:text}`ex_layers_loup_positive`
of the {glue:text}`ex_layers_n` layers (its largest, {glue:text}`ex_layers_gap_loup:.3f`, at layer
{glue:text}`ex_layers_best_loup`). Gaps of a few hundredths from six sentences per word are a weak signal:
the vectors *can* follow the senses, but which layer separates them best is a question for more
sentences and a larger model."""),
    exercise("ex-07-mean-pooling", "Mean pooling with a padding mask", r"""
Write `mean_pool(last_hidden_state, attention_mask)`: the sentence vectors `(B, H)` of a batch of last
hidden states `(B, T, H)` by mean pooling over the real tokens only,
$\mathbf{e} = \sum_t m_t \mathbf{h}_t \,/\, \max(\sum_t m_t, 10^{-9})$, where `attention_mask` `(B, T)`
holds $m_t$: 1 (or True) on tokens and 0 on padding, as a tokenizer returns it (integers) or as booleans.
A row with no token at all gets the zero vector (that is what the $10^{-9}$ is for). The check compares
you with `neuraltext.bert.pool(..., "mean")`, what `encode(..., pooling="mean")` uses."""),
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
]

if __name__ == "__main__":
    replace_exercises(NOTEBOOK, CELLS)
    tag_solution_cell(NOTEBOOK, HIDDEN)
