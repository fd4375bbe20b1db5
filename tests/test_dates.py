"""The synthetic date task (neuraltext.data.dates): generator, splits, metric, vocabularies and the
rule-based reference normaliser."""

from __future__ import annotations

import datetime as dt
import random

import pytest
import torch

from neuraltext.data import (
    date_pairs,
    date_splits,
    exact_match,
    exact_match_by,
    find_dates,
    normalize_date,
    source_vocab,
    target_vocab,
)
from neuraltext.data.dates import FORMATS, HELD_OUT_FORMATS, MONTH_FORMATS, format_date


def test_generator_is_seeded():
    a, b, c = date_pairs(200, seed=3), date_pairs(200, seed=3), date_pairs(200, seed=4)
    assert a.pairs() == b.pairs() and a.formats == b.formats
    assert a.pairs() != c.pairs()
    head = a[:5]
    assert head.pairs() == a.pairs()[:5] and head.formats == a.formats[:5] and a[0] == a.pairs()[0]


def test_course_examples_are_written_as_the_issue_shows():
    d = dt.date(2017, 2, 24)
    assert format_date(d, "le d mois yyyy") == ("le 24 février 2017", "2017-02-24")
    assert format_date(dt.date(2015, 11, 26), "dd/mm/yy") == ("26/11/15", "2015-11-26")
    assert format_date(dt.date(2015, 11, 3), "mois yyyy") == ("novembre 2015", "2015-11")
    assert format_date(dt.date(2018, 8, 24), "dd.mm.yyyy") == ("24.08.2018", "2018-08-24")
    assert format_date(d, "en mois yyyy") == ("en février 2017", "2017-02")
    assert format_date(d, "le jour d mois yyyy")[0] == "le vendredi 24 février 2017"  # a Friday
    with pytest.raises(ValueError, match="unknown date format"):
        format_date(d, "yyyy/dd/mm")


def test_targets_are_real_iso_dates_and_agree_with_the_normaliser():
    data = date_pairs(3000, seed=0, p_context=0.5)
    assert set(data.formats) == set(FORMATS)
    for (source, target), fmt in zip(data, data.formats):
        if fmt in MONTH_FORMATS:
            assert len(target) == 7 and dt.date.fromisoformat(target + "-01")
        else:
            assert len(target) == 10 and dt.date.fromisoformat(target).isoformat() == target
        # the generator and the independent regex normaliser must agree on every pair
        assert normalize_date(source) == target, (source, target, fmt)


def test_context_phrases_probability():
    from neuraltext.data.dates import CLINICAL_TEMPLATES

    prefixes = tuple(t.split("{}")[0] for t in CLINICAL_TEMPLATES)
    bare = date_pairs(300, seed=1, p_context=0.0)
    assert not any(s.startswith(prefixes) for s, _ in bare)
    wrapped = date_pairs(300, seed=1, p_context=1.0)
    assert all(s.startswith(prefixes) and normalize_date(s) == t for s, t in wrapped)
    with pytest.raises(ValueError, match="p_context"):
        date_pairs(3, p_context=1.5)


def test_splits_hold_out_months_and_formats():
    sp = date_splits(5000, 1000, seed=0)
    assert (len(sp.train), len(sp.test), len(sp.held_out)) == (5000, 1000, 1000)
    assert sp.held_out_formats == list(HELD_OUT_FORMATS)
    assert not set(sp.train.formats) & set(HELD_OUT_FORMATS)
    assert not set(sp.test.formats) & set(HELD_OUT_FORMATS)
    assert set(sp.held_out.formats) == set(HELD_OUT_FORMATS)
    train_months = {t[:7] for t in sp.train.targets}
    assert not train_months & {t[:7] for t in sp.test.targets}
    assert not train_months & {t[:7] for t in sp.held_out.targets}
    assert not set(sp.train.sources) & set(sp.test.sources)
    # seeded
    assert date_splits(5000, 1000, seed=0).test.pairs() == sp.test.pairs()
    none_held = date_splits(100, 10, seed=0, held_out_formats=())
    assert len(none_held.held_out) == 0 and none_held.train_formats == list(FORMATS)
    with pytest.raises(ValueError, match="unknown"):
        date_splits(10, 10, held_out_formats=("nope",))


def test_exact_match():
    assert exact_match(["2017-02-24", "2015-11"], ["2017-02-24", "2015-11"]) == 1.0
    assert exact_match(["2017-02-24", "2015-1"], ["2017-02-24", "2015-11"]) == 0.5
    assert exact_match(["2017-02-25"], ["2017-02-24"]) == 0.0
    with pytest.raises(ValueError, match="1 predictions but 2 targets"):
        exact_match(["x"], ["x", "y"])
    by = exact_match_by(["a", "b", "c"], ["a", "x", "c"], ["f1", "f1", "f2"])
    assert by == {"f1": 0.5, "f2": 1.0}


def test_vocabularies_cover_the_generator_and_round_trip():
    src, tgt = source_vocab(), target_vocab()
    data = date_pairs(2000, seed=2)
    for s, t in data:
        assert src.unk_id not in src.encode(s)
        assert src.decode(src.encode(s, eos=True)) == s
        assert tgt.decode(tgt.encode(t, bos=True, eos=True)) == t
    assert len(tgt) == 5 + 11  # the five special tokens of every Vocab, then the 11 characters
    ids, lengths = src.batch(["24/08/18", "le 1er mars 2016"], eos=True)
    assert ids.shape == (2, 17) and lengths.tolist() == [9, 17]
    assert ids[0, 9:].eq(src.pad_id).all() and ids[0, 8] == src.eos_id
    assert ids.dtype == torch.long
    assert src.encode("€") == [src.unk_id]


# --- the reference normaliser: edge cases -------------------------------------------------------

@pytest.mark.parametrize("text, iso", [
    ("le 24 février 2017", "2017-02-24"),
    ("Le Mardi 24 Février 2017", "2017-02-24"),  # upper case, weekday
    ("le 1er mars 2016", "2016-03-01"),
    ("26/11/15", "2015-11-26"),
    ("03/04/95", "1995-04-03"),  # pivot: 95 -> 1995
    ("03/04/49", "2049-04-03"),  # pivot: 49 -> 2049
    ("24.08.2018", "2018-08-24"),
    ("24-08-2018", "2018-08-24"),
    ("1.5.2012", "2012-05-01"),
    ("novembre 2015", "2015-11"),
    ("en février 2017", "2017-02"),
    ("en fevrier 2017", "2017-02"),  # accents dropped, as in hurried notes
    ("24 févr. 2017", "2017-02-24"),
    ("11/2015", "2015-11"),
    ("2017-02-24", "2017-02-24"),
    ("RCP du 05/11/2019 puis chimiothérapie le 12.12.2019.", "2019-11-05"),  # first date
    ("29/02/2016", "2016-02-29"),  # leap year
])
def test_normaliser_reads_dates(text, iso):
    assert normalize_date(text) == iso


@pytest.mark.parametrize("text", [
    "", "   ", "pas de date dans ce texte", "T2N0M0", "3/5 ganglions envahis", "tumeur de 12.5 mm",
    "Ki67 à 20/30 %", "en 2017",  # a year alone is not a date
    "31/02/2017", "29/02/2017", "00/12/2012", "13/13/2015", "32 janvier 2017", "le 0 mars 2016",
    "mars", "février 17h30",
])
def test_normaliser_says_not_a_date(text):
    assert normalize_date(text) is None
    assert find_dates(text) == []


def test_normaliser_spans_and_types():
    text = "Biopsie le 24 février 2017, chirurgie en mars 2017."
    found = find_dates(text)
    assert [iso for *_, iso in found] == ["2017-02-24", "2017-03"]
    assert [text[s:e] for s, e, _ in found] == ["24 février 2017", "mars 2017"]
    with pytest.raises(TypeError, match="expects a str"):
        normalize_date(None)
    with pytest.raises(TypeError, match="expects a str"):
        find_dates(20170224)


def test_normaliser_never_invents_on_random_text():
    rng = random.Random(0)
    alphabet = "abcdefghij0123456789 /.-:"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        for _, _, iso in find_dates(text):
            # whatever it returns must be a real date or month
            dt.date.fromisoformat(iso if len(iso) == 10 else iso + "-01")
