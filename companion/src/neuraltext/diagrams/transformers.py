"""Diagrams of the transformer chapters: the encoder block (chapter 6), BERT's inputs (chapter 7), the
decoder-only blocks and the KV cache (chapter 8).
"""

from __future__ import annotations

from neuraltext.diagrams.drawing import FONTSIZE, arrow, box, new_figure

__all__ = ["transformer_block", "bert_inputs", "decoder_only_blocks", "kv_cache"]


def transformer_block(norm_first: bool = True, decoder: bool = False):
    """An encoder block (or a decoder block with ``decoder=True``): attention and feed-forward
    sublayers, each with a residual connection and a layer norm, pre-norm or post-norm."""
    layers = [("Multi-head\nself-attention" + ("\n(causal)" if decoder else ""), "attention")]
    if decoder:
        layers.append(("Multi-head cross-attention\n(keys, values: encoder)", "attention"))
    layers.append((r"Feed-forward" + "\n" + r"$W_2\,\mathrm{act}(W_1 x + b_1) + b_2$", "gate"))
    height = 1.2 + 2.4 * len(layers)
    fig, ax = new_figure(5.6, height * 0.9, (-0.5, 6.0), (-0.4, height + 0.6))
    y = 0.0
    ax.text(2.5, y - 0.2, "x  (B, T, d_model)", ha="center", fontsize=FONTSIZE)
    y += 0.2
    for name, kind in layers:
        y_in = y
        if norm_first:
            box(ax, (2.5, y + 0.55), "LayerNorm", 1.8, 0.45, "norm")
            arrow(ax, (2.5, y), (2.5, y + 0.32))
            box(ax, (2.5, y + 1.35), name, 3.0, 0.85, kind, fontsize=FONTSIZE - 1)
            arrow(ax, (2.5, y + 0.78), (2.5, y + 0.92))
            box(ax, (2.5, y + 2.15), "+", 0.45, 0.45, "op", round_=True)
            arrow(ax, (2.5, y + 1.78), (2.5, y + 1.93))
            y_out = y + 2.37
        else:
            box(ax, (2.5, y + 0.75), name, 3.0, 0.85, kind, fontsize=FONTSIZE - 1)
            arrow(ax, (2.5, y), (2.5, y + 0.32))
            box(ax, (2.5, y + 1.5), "+", 0.45, 0.45, "op", round_=True)
            arrow(ax, (2.5, y + 1.18), (2.5, y + 1.28))
            box(ax, (2.5, y + 2.1), "LayerNorm", 1.8, 0.45, "norm")
            arrow(ax, (2.5, y + 1.72), (2.5, y + 1.88))
            y_out = y + 2.33
        # residual connection: around the sublayer, into the +
        plus_y = y + (2.15 if norm_first else 1.5)
        arrow(ax, (2.5, y_in + 0.1), (4.3, y_in + 0.1), style="-", color="tab:blue")
        arrow(ax, (4.3, y_in + 0.1), (4.3, plus_y), style="-", color="tab:blue")
        arrow(ax, (4.3, plus_y), (2.73, plus_y), color="tab:blue")
        ax.text(4.4, (y_in + plus_y) / 2, "residual", fontsize=FONTSIZE - 2, color="tab:blue",
                rotation=90, va="center")
        y = y_out
    arrow(ax, (2.5, y), (2.5, y + 0.4))
    ax.text(2.5, y + 0.5, "output  (B, T, d_model)", ha="center", fontsize=FONTSIZE)
    kind = "decoder" if decoder else "encoder"
    placement = "pre-norm" if norm_first else "post-norm"
    ax.set_title(f"Transformer {kind} block ({placement})", fontsize=FONTSIZE + 2)
    return fig


def bert_inputs(tokens_a: tuple[str, ...] = ("le", "loup", "nage"), tokens_b: tuple[str, ...] = ("il", "a", "faim")):
    """Chapter 7: BERT's input x_0 = LayerNorm(E_tok + E_seg + E_pos) for a sentence pair (A, B)."""
    tokens = ["[CLS]", *tokens_a, "[SEP]", *tokens_b, "[SEP]"]
    segments = ["A"] * (len(tokens_a) + 2) + ["B"] * (len(tokens_b) + 1)
    n, step = len(tokens), 1.25
    fig, ax = new_figure(1.05 * (n * step + 2.4), 5.0, (-2.3, n * step), (-0.3, 5.2))
    for y, label in ((4.4, "input"), (3.4, "token"), (2.3, "segment"), (1.2, "position"), (0.15, "LayerNorm")):
        ax.text(-2.2, y, label, ha="left", va="center", fontsize=FONTSIZE)
    for i, (tok, seg) in enumerate(zip(tokens, segments)):
        x = i * step + 0.4
        box(ax, (x, 4.4), tok, 1.1, 0.5, "op", fontsize=FONTSIZE - 1)
        box(ax, (x, 3.4), rf"$E_{{\mathrm{{{tok.strip('[]')}}}}}$", 1.1, 0.55, "input", fontsize=FONTSIZE - 1)
        ax.text(x, 2.85, "+", ha="center", va="center", fontsize=FONTSIZE + 2)
        box(ax, (x, 2.3), rf"$E_{seg}$", 1.1, 0.55, "gate", fontsize=FONTSIZE)
        ax.text(x, 1.75, "+", ha="center", va="center", fontsize=FONTSIZE + 2)
        box(ax, (x, 1.2), rf"$E_{{{i}}}$", 1.1, 0.55, "state", fontsize=FONTSIZE)
        arrow(ax, (x, 0.9), (x, 0.45))
        box(ax, (x, 0.15), rf"$x_{{0,{i}}}$", 1.0, 0.5, "norm", fontsize=FONTSIZE - 1)
    ax.set_title("BERT input: token + segment + position embeddings, then a layer norm", fontsize=FONTSIZE + 1)
    return fig


# ------------------------------------------------------------------ chapter 8: decoder-only models
def _decoder_column(ax, x: float, rows: list[tuple[str, str, bool]], title: str) -> None:
    """One column of boxes, bottom to top: embedding, (norm, attention), (norm, feed-forward), output.
    ``rows`` = (text, kind, changed); a changed box gets a thick red edge; the two residual
    connections wrap rows 1-2 and 3-4."""
    from matplotlib.patches import FancyBboxPatch

    w, h = 4.6, 0.8
    ys = [0.4 + 1.15 * i for i in range(len(rows))]
    for i, ((text, kind, changed), y) in enumerate(zip(rows, ys)):
        box(ax, (x, y), text, w, h, kind, fontsize=FONTSIZE - 1.5)
        if changed:
            ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                        facecolor="none", edgecolor="tab:red", lw=2.6))
        if i:
            arrow(ax, (x, ys[i - 1] + h / 2), (x, y - h / 2))
    for lo, hi in ((1, 2), (3, 4)):  # x = x + Sublayer(Norm(x))
        y0, y1 = (ys[lo - 1] + ys[lo]) / 2, (ys[hi] + ys[hi + 1]) / 2
        xr = x + w / 2 + 0.35
        arrow(ax, (x, y0), (xr, y0), style="-", color="tab:blue")
        arrow(ax, (xr, y0), (xr, y1), style="-", color="tab:blue")
        arrow(ax, (xr, y1), (x + 0.18, y1), color="tab:blue")
        box(ax, (x, y1), "+", 0.3, 0.3, "op", fontsize=FONTSIZE - 1, round_=True)
    top, bottom = (ys[4] + ys[5]) / 2 + 0.25, (ys[0] + ys[1]) / 2 - 0.12
    ax.add_patch(FancyBboxPatch((x - w / 2 - 0.2, bottom), w + 0.85, top - bottom, boxstyle="round,pad=0.02",
                                facecolor="none", edgecolor="grey", lw=1.0, ls="--"))
    ax.text(x - w / 2 - 0.3, (top + bottom) / 2, "x L blocks", rotation=90, ha="right", va="center",
            fontsize=FONTSIZE - 1, color="grey")
    ax.text(x, ys[-1] + 0.65, title, ha="center", fontsize=FONTSIZE, weight="bold")


def decoder_only_blocks():
    """The 2017-style decoder-only model (GPT-2) beside a Llama-family model, bottom to top; the four
    changes of the Llama variant (RMSNorm, RoPE, SwiGLU, GQA) are outlined in red."""
    gpt = [("token embedding $W_{te}$\n+ position embedding $W_{pe}$", "input", False),
           ("LayerNorm", "norm", False),
           ("causal multi-head attention\n($h$ heads for q, k and v)", "attention", False),
           ("LayerNorm", "norm", False),
           ("feed-forward:\n$W_2\\,\\mathrm{GELU}(W_1 x + b_1) + b_2$", "gate", False),
           ("LayerNorm, then logits $D E_t$\n(tied: $D = W_{te}$)", "output", False)]
    llama = [("token embedding only\n(no position vector)", "input", True),
             ("RMSNorm (no mean, no bias)", "norm", True),
             ("causal grouped-query attention + RoPE\n($h$ query heads, $g < h$ k/v heads)",
              "attention", True),
             ("RMSNorm", "norm", True),
             ("SwiGLU:\n$W_{down}\\,(\\mathrm{SiLU}(W_{gate} x) \\odot W_{up} x)$", "gate", True),
             ("RMSNorm, then logits $D E_t$", "output", True)]
    fig, ax = new_figure(11.0, 6.2, (-1.2, 13.4), (-0.3, 7.6))
    _decoder_column(ax, 2.0, gpt, "GPT-2 (2017 block, pre-norm)")
    _decoder_column(ax, 9.6, llama, "Llama family (SmolLM2)")
    ax.set_title("Decoder-only models, bottom to top (red: what the Llama variant changes)", fontsize=FONTSIZE + 1)
    return fig


def kv_cache(n_cached: int = 5):
    """One generation step with a KV cache: the keys and values of the earlier tokens are read from
    the cache; only the new token's q, k and v are computed, and its query scores every key."""
    from matplotlib.patches import Rectangle

    xs = [0.6 + 1.1 * i for i in range(n_cached + 1)]
    fig, ax = new_figure(8.0, 4.0, (-1.8, xs[-1] + 1.2), (-0.5, 4.0))
    for y, name in ((0.0, "tokens"), (1.1, "query"), (2.1, "keys"), (3.0, "values")):
        ax.text(-1.7, y, name, va="center", fontsize=FONTSIZE)
    for i, x in enumerate(xs):
        new = i == n_cached
        label = "t" if new else f"{i + 1}"
        box(ax, (x, 0.0), rf"$w_{{{label}}}$", 0.8, 0.5, "input")
        box(ax, (x, 2.1), rf"$k_{{{label}}}$", 0.8, 0.55, "attention" if new else "op")
        box(ax, (x, 3.0), rf"$v_{{{label}}}$", 0.8, 0.55, "attention" if new else "op")
    xn = xs[-1]
    box(ax, (xn, 1.1), r"$q_t$", 0.8, 0.55, "attention")
    arrow(ax, (xn, 0.25), (xn, 0.82))
    for x in xs:  # q_t scores every key, its own included
        arrow(ax, (xn - 0.2, 1.38), (x, 1.82), color="tab:purple", lw=0.9)
    ax.add_patch(Rectangle((xs[0] - 0.5, 1.75), xs[-2] - xs[0] + 1.0, 1.62, facecolor="none",
                           edgecolor="grey", ls="--", lw=1.2))
    ax.text((xs[0] + xs[-2]) / 2, 3.55, "the cache: computed at earlier steps, read back", ha="center",
            fontsize=FONTSIZE - 1, color="grey")
    ax.text(xn, 3.55, "new", ha="center", fontsize=FONTSIZE - 1, color="tab:purple")
    ax.set_title("Generating with a KV cache: one token's q, k, v per step", fontsize=FONTSIZE + 1)
    return fig
