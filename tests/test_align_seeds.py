"""neuraltext.align.seeds (chapter 9's recipe over seeds) and diagrams.alignment (its figures)."""

import math

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from neuraltext import diagrams  # noqa: E402
from neuraltext.align import PPOConfig  # noqa: E402
from neuraltext.align.seeds import Recipe, paired_difference, run_seed, summarize  # noqa: E402

METRICS = {"preference accuracy", "reward margin", "KL to reference", "reward (RM)", "polite answers",
           "good answers (oracle)"}


def test_summarize_mean_standard_error_and_student_interval_by_hand():
    runs = [{"PPO": {"good": v}} for v in (0.4, 0.5, 0.9)]
    s = summarize(runs)["PPO"]["good"]
    mean = 0.6
    se = math.sqrt(((0.4 - mean) ** 2 + (0.5 - mean) ** 2 + (0.9 - mean) ** 2) / 2 / 3)
    assert s["mean"] == pytest.approx(mean) and s["se"] == pytest.approx(se)
    # t_{0.975, 2} = 4.302653 (a table value): the interval is wider than the normal's 1.96 se
    assert s["high"] - mean == pytest.approx(4.302653 * se, rel=1e-6)
    assert s["low"] == pytest.approx(mean - 4.302653 * se, rel=1e-6)
    assert s["n"] == 3 and s["values"] == [0.4, 0.5, 0.9]


def test_paired_difference_is_seed_by_seed():
    # a large spread across seeds that both policies share: the paired difference is exactly 0.1 each time
    runs = [{"PPO": {"good": base + 0.1}, "SFT": {"good": base}} for base in (0.1, 0.5, 0.9)]
    d = paired_difference(summarize(runs), "PPO", "SFT", "good")
    assert d["values"] == pytest.approx([0.1, 0.1, 0.1]) and d["mean"] == pytest.approx(0.1)
    assert d["se"] == pytest.approx(0.0, abs=1e-12) and d["low"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="'DPO' is not in the summary"):
        paired_difference(summarize(runs), "DPO", "SFT", "good")
    with pytest.raises(ValueError, match="metric 'bad'"):
        paired_difference(summarize(runs), "PPO", "SFT", "bad")


def test_summarize_refuses_one_run():
    with pytest.raises(ValueError, match="got 1"):
        summarize([{"SFT": {"good": 0.4}}])


def test_the_recipe_is_the_chapters():
    r = Recipe()
    assert r.ppo == PPOConfig(batch_size=8, samples_per_prompt=4, max_new_tokens=24, beta=0.2, clip_eps=0.2,
                              ppo_epochs=2, lr=5e-5)
    assert r.dpo_beta == 0.1 and r.ppo_steps == 40 and r.sft_steps == 300
    assert all(changes.get("beta") == 0.0 for changes in r.hacking.values())


TINY = dict(corpus_sentences=300, web_lines=50, sft_steps=3, rm_epochs=1, ppo_steps=2, d_model=16,
            samples_per_prompt=2, max_new_tokens=6)


def test_run_seed_reports_every_policy_and_is_seeded():
    recipe = Recipe(**TINY, ppo=PPOConfig(batch_size=2, samples_per_prompt=2, max_new_tokens=6, beta=0.2))
    torch.set_num_threads(1)
    a, b = run_seed(3, recipe), run_seed(3, recipe)
    assert list(a) == ["SFT", "PPO", *recipe.hacking, "DPO"]
    for row in a.values():
        assert set(row) == METRICS
        assert all(0 <= row[k] <= 1 for k in ("preference accuracy", "polite answers", "good answers (oracle)"))
    assert a["SFT"]["reward margin"] == 0 and a["SFT"]["KL to reference"] == 0
    assert a == b
    assert run_seed(4, recipe) != a


def test_alignment_diagrams_draw():
    assert len(diagrams.ppo_vs_dpo().axes) == 1
    fig = diagrams.reward_histograms({"SFT": [-2.0, -1.0, 0.5], "PPO": [1.0, 2.0]}, bins=5, title="t")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["SFT (mean -0.83, n = 3)", "PPO (mean 1.50, n = 2)"]


def test_reward_histograms_refuses_an_empty_policy():
    with pytest.raises(ValueError, match="PPO': 0"):
        diagrams.reward_histograms({"SFT": [1.0], "PPO": []})
