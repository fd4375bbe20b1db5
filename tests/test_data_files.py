import pytest

from neuraltext.data import TextFileError, iter_corpus_files, read_lines, read_text, synthetic_corpus


def test_read_lines_skips_blanks(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("ma mère est contente\n\n  mon père aussi  \n", encoding="utf-8")
    assert read_lines(f) == ["ma mère est contente", "mon père aussi"]


def test_bad_encoding_names_file_and_line(tmp_path):
    f = tmp_path / "latin.txt"
    f.write_bytes("ligne un\nma s\u0153ur\nma m\xe8re\n".encode("utf-8").replace(b"m\xc3\xa8re", b"m\xe8re"))
    with pytest.raises(TextFileError, match=r"latin\.txt, line 3, column 5"):
        read_text(f)
    assert read_text(f, encoding="latin-1").splitlines()[2] == "ma m\xe8re"


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such"):
        read_text(tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match="No files matching"):
        list(iter_corpus_files(tmp_path))


def test_folder_is_read_in_sorted_order(tmp_path):
    (tmp_path / "b.txt").write_text("deux\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("un\n", encoding="utf-8")
    assert list(iter_corpus_files(tmp_path)) == ["un", "deux"]


def test_synthetic_corpus_is_seeded_and_sized():
    a = synthetic_corpus(20_000, seed=3)
    b = synthetic_corpus(20_000, seed=3)
    c = synthetic_corpus(20_000, seed=4)
    assert a.sentences == b.sentences
    assert a.sentences != c.sentences
    assert 20_000 <= a.n_tokens < 20_100
    with pytest.raises(ValueError):
        synthetic_corpus(0)


def test_planted_analogies_use_corpus_words():
    corpus = synthetic_corpus(200_000, seed=0)
    vocab = set(corpus.vocabulary())
    for section, quads in corpus.analogies.items():
        assert quads, section
        for quad in quads:
            assert set(quad) <= vocab, (section, quad)
    assert corpus.analogy_file().startswith(": ")
