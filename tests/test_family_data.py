"""Use case 1's data: the study's code format (parser, canonical codes, files) and the synthetic
stand-in's size, label frequencies and determinism."""

from __future__ import annotations

import pytest

from neuraltext.family import (LABELS, STUDY_SIZES, STUDY_TEST_SUPPORT, CodeError, FamilyFileError,
                               labels_to_code, parse_code, parse_line, read_family_file,
                               synthetic_family_sentences, to_matrix, write_family_file)

# The lecture's example lines and the label sets a psychiatrist's code means.
LECTURE_LINES = {
    "jf+,js+ J'ai 2 frères et deux sœurs et je m'entend plutôt bien avec.": {"+", "j", "f", "s"},
    "mp- Ma maman est séparée de mon père.": {"-", "m", "p"},
    "jm+ Je m'entend très bien avec ma mère.": {"+", "j", "m"},
    "si J'ai deux grandes demi-sœur du côté de mon père.": {"i", "s"},
    "mi,pi Ma maman à fait cinq enfants, mon père en n'a fait trois.": {"i", "m", "p"},
    "jm+ Avec ma mère ont aime bien faire les magasins.": {"+", "j", "m"},
}


@pytest.mark.parametrize("line", list(LECTURE_LINES))
def test_lecture_lines_parse_to_their_labels(line):
    labels, sentence = parse_line(line)
    assert labels == LECTURE_LINES[line]
    assert sentence == line.split(" ", 1)[1]


def test_label_matrix_columns_follow_the_study_table():
    assert LABELS == ("+", "-", "0", "i", "j", "f", "s", "p", "m", "a", "t")
    y = to_matrix([parse_code("jf+,js+"), parse_code("si")])
    assert y.tolist() == [[1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0]]


@pytest.mark.parametrize("code, expected", [("jf+,js+", "jfs+"), ("mi,pi", "pmi"), ("si", "si"),
                                            ("jm+,jp-", "jpm+,jpm-"), ("tai", "ati")])
def test_canonical_code_round_trip(code, expected):
    canonical = labels_to_code(parse_code(code))
    assert canonical == expected
    assert parse_code(canonical) == parse_code(code)  # code -> labels -> code keeps the labels
    assert labels_to_code(parse_code(canonical)) == canonical  # and the canonical form is stable


@pytest.mark.parametrize("code, needle", [
    ("jx+", "'x'"),          # not a subject letter
    ("jm", "valence"),       # no valence symbol
    ("+", "too short"),      # a valence without a subject
    ("jm+,,jp-", "too short"),
    ("", "empty"),
])
def test_bad_codes_name_the_group_and_the_valid_letters(code, needle):
    with pytest.raises(CodeError) as err:
        parse_code(code)
    assert needle in str(err.value)
    if code:
        assert "jfspmat" in str(err.value) and "+-0i" in str(err.value)


def test_labels_to_code_rejects_unknown_labels_and_missing_parts():
    with pytest.raises(CodeError, match="unknown labels"):
        labels_to_code({"+", "z"})
    with pytest.raises(CodeError, match="at least one valence and one subject"):
        labels_to_code({"j", "m"})


def test_file_errors_list_every_bad_line(tmp_path):
    path = tmp_path / "codes.txt"
    path.write_text("jm+ Je m'entends bien avec ma mère.\njq+ Une erreur.\n\nmp Une autre.\nsi Ma sœur.\n",
                    encoding="utf-8")
    with pytest.raises(FamilyFileError) as err:
        read_family_file(path)
    message = str(err.value)
    assert "2 bad line(s)" in message
    assert f"{path}:2" in message and "'jq+'" in message
    assert f"{path}:4" in message and "'mp'" in message


def test_file_with_bad_bytes_names_file_and_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("jm+ Je m'entends bien.\nsi Ma sœur a seize ans.\n".encode("latin-1", "replace")
                     .replace(b"?", b"\xe9"))
    with pytest.raises(ValueError, match=r"line 2") as err:
        read_family_file(path)
    assert str(path) in str(err.value) and "latin-1" in str(err.value)
    assert read_family_file(path, encoding="latin-1").sentences[1] == "Ma sœur a seize ans.".replace("œ", "é")


def test_to_matrix_rejects_unknown_labels_and_codes():
    with pytest.raises(CodeError, match=r"label_sets\[1\] has the unknown label 'x': allowed are"):
        to_matrix([{"+", "j"}, {"x", "j"}])
    with pytest.raises(CodeError, match=r"label_sets\[0\] is the string 'jm\+'"):
        to_matrix(["jm+"])


def test_write_then_read_round_trips(tmp_path):
    data = synthetic_family_sentences(n=50, seed=3)
    back = read_family_file(write_family_file(data, tmp_path / "out.txt"))
    assert back.sentences == data.sentences
    assert back.labels == data.labels


def test_synthetic_data_has_the_study_size_and_split():
    data = synthetic_family_sentences()
    assert len(data) == STUDY_SIZES["total"] == 1648
    train, test = data.split()
    assert (len(train), len(test)) == (1318, 330)
    assert sorted(train.sentences + test.sentences) == sorted(data.sentences)  # a partition


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synthetic_label_frequencies_are_close_to_the_study(seed):
    """Each label's share of the 1,648 sentences within 0.06 of its share in the study's test set,
    and the valences in the study's order of frequency (i > + > - > 0)."""
    data = synthetic_family_sentences(seed=seed)
    support = data.support()
    for label in LABELS:
        share, study = support[label] / len(data), STUDY_TEST_SUPPORT[label] / 330
        assert abs(share - study) < 0.06, (label, round(share, 3), round(study, 3))
    assert support["i"] > support["+"] > support["-"] > support["0"], support


def test_synthetic_label_frequencies_average_within_12_percent_of_the_study():
    """Over three seeds, every label's mean support is within 12% of the study's (- and 0 included:
    they were swapped once)."""
    supports = [synthetic_family_sentences(seed=seed).support() for seed in range(3)]
    for label in LABELS:
        mean = sum(s[label] for s in supports) / 3 * 330 / STUDY_SIZES["total"]
        assert abs(mean - STUDY_TEST_SUPPORT[label]) <= 0.12 * STUDY_TEST_SUPPORT[label], (label, mean)


def test_neutral_labels_come_mostly_from_neutral_sentences():
    """Without coder noise there are still at least 2/3 as many neutral labels as with it: the 0 label
    is mostly the content of the sentence, not injected by the noise."""
    clean = sum(synthetic_family_sentences(seed=s, label_noise=0.0).support()["0"] for s in range(3))
    noisy = sum(synthetic_family_sentences(seed=s).support()["0"] for s in range(3))
    assert clean >= 2 / 3 * noisy, (clean, noisy)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_split_is_stratified_on_the_labels(seed):
    """The test part's supports follow the whole set's (within 10%, or 3 sentences); the plain random
    split stays available."""
    data = synthetic_family_sentences(seed=seed)
    train, test = data.split(seed=seed)
    assert (len(train), len(test)) == (1318, 330)
    whole = data.support()
    for label, got in zip(LABELS, test.y.sum(axis=0).tolist()):
        expected = whole[label] * 330 / len(data)
        assert abs(got - expected) <= max(3, 0.1 * expected), (label, got, round(expected))
    plain_train, plain_test = data.split(seed=seed, stratify=False)
    assert len(plain_test) == 330 and plain_test.sentences != test.sentences


def test_synthetic_data_is_seeded():
    a, b, c = (synthetic_family_sentences(n=200, seed=s) for s in (7, 7, 8))
    assert a.sentences == b.sentences and a.labels == b.labels
    assert a.sentences != c.sentences


def test_synthetic_data_varies_like_teenagers_write():
    text = " ".join(synthetic_family_sentences().sentences).lower()
    for form in ("maman", "ma mère", "ma mére", "demi-sœur", "beau-père", " ne ", " elle ", "m'entend "):
        assert form in text, form
    # several people per sentence and several valences per sentence both occur
    y = synthetic_family_sentences().y
    assert (y[:, 5:].sum(axis=1) >= 2).mean() > 0.1
    assert (y[:, :4].sum(axis=1) >= 2).mean() > 0.02


def test_synthetic_task_is_neither_trivial_nor_hopeless():
    """A TF-IDF + logistic-regression baseline is far above chance and far from perfect."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.multiclass import OneVsRestClassifier

    train, test = synthetic_family_sentences().split()
    vec = TfidfVectorizer()
    clf = OneVsRestClassifier(LogisticRegression(C=10, max_iter=2000))
    clf.fit(vec.fit_transform(train.sentences), train.y)
    pred = clf.predict(vec.transform(test.sentences))
    micro = f1_score(test.y, pred, average="micro")
    assert 0.7 < micro < 0.97, micro
    assert f1_score(test.y[:, 2], pred[:, 2]) < 0.8  # the neutral class stays hard, as in the study


def test_bad_generator_arguments():
    with pytest.raises(ValueError, match="n must be"):
        synthetic_family_sentences(n=0)
    with pytest.raises(ValueError, match="label_noise"):
        synthetic_family_sentences(label_noise=1.5)
    with pytest.raises(ValueError, match="n_test"):
        synthetic_family_sentences(n=10).split(n_test=10)
