"""The book's structure: every chapter is in the table of contents, has saved outputs, stays small."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def toc_files() -> list[str]:
    return re.findall(r"^\s*-?\s*file:\s*(\S+)", (ROOT / "_toc.yml").read_text(encoding="utf-8"), re.M)


def test_every_toc_entry_exists():
    for entry in toc_files():
        candidates = [ROOT / f"{entry}{ext}" for ext in (".md", ".ipynb")]
        assert any(c.exists() for c in candidates), f"_toc.yml lists {entry}, which does not exist"


def test_every_notebook_is_in_the_toc():
    listed = set(toc_files())
    for nb in NOTEBOOKS:
        assert f"book/{nb.stem}" in listed, f"{nb.name} is not in _toc.yml"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_saved_outputs_and_stays_small(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert any(c.get("outputs") for c in code), f"{path.name} has no saved outputs"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name} has saved error outputs"
    assert path.stat().st_size < 3_000_000, f"{path.name} is {path.stat().st_size / 1e6:.1f} MB"


# --- offline reading: MathJax is served from the built book, no external script -----------------

EXTERNAL_SCRIPT = re.compile(r"<script[^>]*\bsrc=[\"'](?:https?:)?//", re.I)
EXTERNAL_STYLE = re.compile(r"<link[^>]*\bhref=[\"'](?:https?:)?//[^\"']*[\"'][^>]*stylesheet|"
                            r"<link[^>]*stylesheet[^>]*\bhref=[\"'](?:https?:)?//", re.I)


def external_references(html: str) -> list[str]:
    """Scripts and stylesheets of a page that a browser would fetch from another host."""
    return [m.group(0) for pattern in (EXTERNAL_SCRIPT, EXTERNAL_STYLE) for m in pattern.finditer(html)]


def test_external_reference_detector_can_fail():
    assert external_references('<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js">')
    assert external_references('<link rel="stylesheet" href="//fonts.example.org/a.css">')
    assert not external_references('<script src="_static/mathjax/tex-mml-chtml.js"></script>')
    assert not external_references('<a href="https://github.com/neuraltext/neuraltext">repo</a>')


def test_config_serves_mathjax_locally():
    config = (ROOT / "_config.yml").read_text(encoding="utf-8")
    assert "mathjax_offline" in config, "_config.yml does not load tools/mathjax_offline.py"
    assert not re.search(r"mathjax_path:\s*https?://", config), "_config.yml loads MathJax from a CDN"


def test_one_page_book_references_no_external_script(tmp_path, monkeypatch):
    """A one-page book with an equation, built with the book's theme and the MathJax extension
    (a stand-in MathJax file: nothing is downloaded), references no script from another host."""
    sphinx = pytest.importorskip("sphinx.application")
    pytest.importorskip("sphinx_book_theme")
    pytest.importorskip("myst_nb")
    fake = tmp_path / "mathjax"
    fake.mkdir()
    (fake / "tex-mml-chtml.js").write_text("/* stand-in for MathJax */\n")
    monkeypatch.setenv("NEURALTEXT_MATHJAX_DIR", str(fake))
    monkeypatch.syspath_prepend(str(ROOT / "tools"))
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        "extensions = ['myst_nb', 'sphinx_book_theme', 'mathjax_offline']\n"
        "myst_enable_extensions = ['dollarmath', 'amsmath']\n"
        "html_theme = 'sphinx_book_theme'\n"
        "nb_execution_mode = 'off'\n")
    (src / "index.md").write_text("# Page\n\nAn equation:\n\n$$\n\\mathrm{softmax}(x)_i = e^{x_i} / \\sum_j e^{x_j}\n$$\n")
    out = tmp_path / "html"
    app = sphinx.Sphinx(str(src), str(src), str(out), str(tmp_path / "doctrees"), "html",
                        status=None, warning=None, freshenv=True)
    app.build()
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "_static/mathjax/tex-mml-chtml.js" in page, "the page does not load the local MathJax"
    assert (out / "_static" / "mathjax" / "tex-mml-chtml.js").exists(), "MathJax was not copied"
    assert external_references(page) == []


def test_built_book_references_no_external_script():
    """The real build, when there is one (`make book` writes _build/html; it takes minutes, so the
    test only reads it)."""
    html_dir = ROOT / "_build" / "html"
    pages = sorted(html_dir.glob("*.html")) + sorted(html_dir.glob("book/*.html"))
    if not pages:
        pytest.skip("no built book in _build/html: run `make book` first")
    if not (html_dir / "_static" / "mathjax").exists():
        pytest.skip("_build/html predates the offline MathJax (no _static/mathjax): run `make book` again")
    found = {p.relative_to(html_dir).as_posix(): refs for p in pages
             if (refs := external_references(p.read_text(encoding="utf-8")))}
    assert not found, f"external scripts or stylesheets in the built book: {found}"


# --- diagrams drawn by code (neuraltext.diagrams) ---------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("unrolled_rnn", ["$h_{1}$", "$W_{hh}$"]),
    ("lstm_cell", ["$C_{t-1}$", "$h_t$"]),
    ("gru_cell", ["$h_{t-1}$", "$1 - z_t$"]),
    ("encoder_decoder_attention", ["$c_t = \\sum_j \\alpha_{tj} \\bar h_j$"]),
    ("transformer_block", ["LayerNorm", "residual"]),
])
def test_diagram_draws_its_labels(name, expected):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuraltext import diagrams

    fig = getattr(diagrams, name)()
    try:
        texts = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
        for label in expected:
            assert any(label in t for t in texts), f"{name}() has no label {label!r}"
        assert min(t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text()) >= 8
    finally:
        plt.close(fig)


# Widget state in a notebook (tqdm's notebook bars, ipywidgets) makes MyST-NB load require.js and the
# widget manager from a CDN, so the page needs the internet. No chapter carries any (tools/nb.py
# strips them; the Makefile sets TQDM_DISABLE=1 for executions).
OFFLINE_NOTEBOOKS = NOTEBOOKS


@pytest.mark.parametrize("path", OFFLINE_NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_no_widget_state(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    views = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert "widgets" not in nb.get("metadata", {}) and not views, (
        f"{path.name} stores widget state (progress bars?): its page would load scripts from a CDN")
