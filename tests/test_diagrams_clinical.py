"""Chapter 11's diagrams draw (the pipeline, the constrained-decoding mask) and refuse bad steps."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from neuraltext import diagrams  # noqa: E402

TOKENS = ["T", "T1", "1", "b", " N", "0", " M", "La", "<end>"]
STEPS = [("", {"T", "T1"}, "T"), ("T", {"1"}, "1"), ("T1", {"b", " N"}, "b"), ("T1b", {" N"}, " N"),
         ("T1b N", {"0", "1"}, "0"), ("T1b N0", {" M"}, " M"), ("T1b N0 M", {"1"}, "1"), ("T1b N0 M1", {"<end>"}, "<end>")]


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts]


def _readable(fig) -> bool:
    return min(t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text()) >= 8


def test_the_pipeline_names_every_step():
    fig = diagrams.extraction_pipeline()
    text = " ".join(_texts(fig))
    for step in ("shared prefix", "per key", "validate", "ground", "retry pass", "patient table"):
        assert step in text, step
    assert _readable(fig)
    fig.canvas.draw()
    matplotlib.pyplot.close(fig)


def test_the_token_mask_has_one_cell_per_step_and_token_and_frames_each_choice():
    from matplotlib.patches import Rectangle

    fig = diagrams.token_mask(TOKENS, STEPS)
    rects = [p for p in fig.axes[0].patches if isinstance(p, Rectangle)]
    filled = [p for p in rects if p.get_fill()]
    assert len(filled) == len(TOKENS) * len(STEPS)
    assert len(rects) - len(filled) == len(STEPS)  # one frame per step: the chosen token
    greens = sum(p.get_facecolor() == matplotlib.colors.to_rgba("#74c476") for p in filled)
    assert greens == sum(len(allowed) for _, allowed, _ in STEPS)
    assert _readable(fig)
    fig.canvas.draw()
    matplotlib.pyplot.close(fig)


def test_the_token_mask_refuses_tokens_it_does_not_show():
    with pytest.raises(ValueError, match="not in tokens"):
        diagrams.token_mask(["T"], [("", {"T", "X"}, "T")])
    with pytest.raises(ValueError, match="at least one"):
        diagrams.token_mask(["T"], [])
