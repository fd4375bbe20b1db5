"""Diagrams of use case 2 (chapter 11): the extraction pipeline, and constrained decoding's token mask.
"""

from __future__ import annotations

from neuraltext.diagrams.drawing import FONTSIZE, arrow, box, new_figure

__all__ = ["extraction_pipeline", "token_mask"]


def extraction_pipeline():
    """One report through the study's method, left to right: the report in a **shared prefix** (its
    KV cache computed once), one question per **key**, the answer (free, a regex-constrained decode,
    or the likeliest candidate span of the report), **parse/validate** into the key's form, **ground**
    it in the report (whole words, not negated, or inferred by a stated rule); a malformed answer is
    asked again in the **retry pass** with 4x the context; every report ends in one state in the
    results file, and a patient's records become one **row** of the patient table."""
    fig, ax = new_figure(14.0, 4.4, (-0.3, 18.4), (-2.6, 3.3))
    steps = [(1.2, "report\n(system turn)", "input"), (3.9, "shared prefix\nKV cache, once", "state"),
             (6.6, "one question\nper key", "input"), (9.3, "answer: free,\nregex or span", "attention"),
             (12.0, "parse +\nvalidate", "gate"), (14.7, "ground in\nthe report", "gate")]
    for x, text, kind in steps:
        box(ax, (x, 1.6), text, 2.3, 1.1, kind, fontsize=FONTSIZE)
    for (x0, *_), (x1, *_) in zip(steps, steps[1:]):
        arrow(ax, (x0 + 1.15, 1.6), (x1 - 1.15, 1.6))
    ax.text(6.6, 2.55, "x 8 keys", ha="center", fontsize=FONTSIZE - 1, color="tab:blue")
    box(ax, (12.0, -1.3), "retry pass\n4x context", 2.3, 1.0, "norm", fontsize=FONTSIZE)
    arrow(ax, (12.0, 1.05), (12.0, -0.8), "malformed,\ntoo long", color="tab:red", fontsize=FONTSIZE - 2)
    arrow(ax, (10.85, -1.3), (9.3, 1.05), None, color="tab:red", rad=-0.2)
    box(ax, (17.3, 1.6), "record:\none state", 1.8, 1.1, "output", fontsize=FONTSIZE)
    arrow(ax, (15.85, 1.6), (16.4, 1.6))
    arrow(ax, (14.7, 1.05), (14.7, 0.3), "not in the report:\nflagged, kept", color="tab:purple",
          fontsize=FONTSIZE - 2)
    box(ax, (17.1, -1.3), "patient table:\none row", 2.2, 1.0, "output", fontsize=FONTSIZE)
    arrow(ax, (17.3, 1.05), (17.3, -0.8), "results\n.jsonl", fontsize=FONTSIZE - 2, text_offset=(0.1, 0.1))
    ax.text(1.2, -2.3, "states: extracted | extracted_with_flags | failed (with a reason, never the text)",
            fontsize=FONTSIZE - 1, ha="left")
    return fig


def token_mask(tokens: list[str], steps: list[tuple[str, set[str], str]], end_token: str = "<end>"):
    """The constrained-decoding mask as a grid: one row per decoding step, one column per token of
    ``tokens`` (a handful of the vocabulary, ``end_token`` included). ``steps``: ``(text so far,
    allowed tokens, chosen token)``; a cell is green when the token keeps the text a prefix of a match
    of the key's regular expression, grey when it is masked out, and framed when it is the token
    decoding chose (the likeliest allowed one): ``y_t = argmax over A_t of p(v | prompt, y_<t)``."""
    if not steps:
        raise ValueError("steps must hold at least one (text so far, allowed, chosen) step, got none")
    unknown = {t for _, allowed, chosen in steps for t in (*allowed, chosen)} - set(tokens)
    if unknown:
        raise ValueError(f"steps name tokens not in tokens: {sorted(unknown)}; tokens: {tokens}")
    cell = 1.0
    width, height = len(tokens) * cell, len(steps) * cell
    fig, ax = new_figure(1.5 + 0.75 * len(tokens), 1.4 + 0.6 * len(steps), (-3.4, width + 0.2), (-0.3, height + 1.4))
    ax.set_aspect("auto")
    from matplotlib.patches import Rectangle

    for j, token in enumerate(tokens):
        ax.text(j * cell + cell / 2, height + 0.25, repr(token)[1:-1].replace(" ", "␣") if token != end_token
                else token, ha="center", va="bottom", fontsize=FONTSIZE, rotation=45, family="monospace")
    for i, (text, allowed, chosen) in enumerate(steps):
        y = height - (i + 1) * cell
        ax.text(-0.2, y + cell / 2, f"{i}: '{text}'", ha="right", va="center", fontsize=FONTSIZE, family="monospace")
        for j, token in enumerate(tokens):
            ok = token in allowed
            ax.add_patch(Rectangle((j * cell, y), cell, cell, facecolor="#74c476" if ok else "#d9d9d9",
                                   edgecolor="white", lw=2))
            if token == chosen:
                ax.add_patch(Rectangle((j * cell + 0.06, y + 0.06), cell - 0.12, cell - 0.12, fill=False,
                                       edgecolor="black", lw=2.5))
    ax.text(-3.3, height + 0.25, "step: text so far", fontsize=FONTSIZE, va="bottom")
    ax.text(0, -0.25, "green: allowed   grey: masked   framed: chosen", fontsize=FONTSIZE - 1, va="top")
    return fig
