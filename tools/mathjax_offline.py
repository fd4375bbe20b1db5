"""Sphinx extension: serve MathJax from the built book itself, so equations render offline.

Sphinx's default `mathjax_path` is a CDN URL: on a network without internet (a hospital, a train)
every equation of the book would show as raw TeX. This extension

1. finds MathJax 3's `es5` folder: `$NEURALTEXT_MATHJAX_DIR` if set, else `.cache/mathjax/es5` at the
   repository root; if that is missing it fetches the package once with `npm pack mathjax@3.2.2`
   (the npm registry; `.cache/` is git-ignored);
2. adds it to `html_static_path`, so Sphinx copies it to `_build/html/_static/mathjax/`;
3. sets `mathjax_path = "mathjax/tex-mml-chtml.js"`, a path relative to `_static/`.

It is loaded from `_config.yml` (`sphinx.local_extensions`). tests/test_book.py builds a one-page
book with it and checks that the HTML references no external script.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

MATHJAX_VERSION = "3.2.2"
ROOT = Path(__file__).resolve().parents[1]
ENTRY = "tex-mml-chtml.js"


def _fetch(target: Path) -> None:
    """Download MathJax's es5 folder from the npm registry into ``target`` (``.../es5``)."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            f"MathJax is not at {target} and `npm` is not installed to fetch it. Install Node.js, or "
            f"unpack the npm package mathjax@{MATHJAX_VERSION} there (its `es5` folder), or set "
            "NEURALTEXT_MATHJAX_DIR to a folder holding tex-mml-chtml.js.")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([npm, "pack", "--silent", f"mathjax@{MATHJAX_VERSION}"], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)
        with tarfile.open(Path(tmp) / f"mathjax-{MATHJAX_VERSION}.tgz") as tar:
            members = [m for m in tar.getmembers() if m.name.startswith("package/es5/")]
            tar.extractall(tmp, members=members, filter="data")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(Path(tmp) / "package" / "es5"), str(target))


def mathjax_dir() -> Path:
    """The folder that holds ``tex-mml-chtml.js`` (fetched on first use)."""
    if os.environ.get("NEURALTEXT_MATHJAX_DIR"):
        folder = Path(os.environ["NEURALTEXT_MATHJAX_DIR"])
    else:
        folder = ROOT / ".cache" / "mathjax" / "es5"
        if not (folder / ENTRY).exists():
            _fetch(folder)
    if not (folder / ENTRY).exists():
        raise RuntimeError(f"{folder} has no {ENTRY}: expected the `es5` folder of mathjax@3")
    return folder


def _configure(app, config) -> None:
    # html_static_path copies the *contents* of each folder into _static/, hence the parent folder
    # holding a `mathjax` directory: a staging folder with a symlink keeps the copy to one place.
    stage = Path(app.outdir).parent / ".mathjax_static"
    link = stage / "mathjax"
    stage.mkdir(parents=True, exist_ok=True)
    source = mathjax_dir().resolve()
    if link.is_symlink() or link.exists():
        if link.resolve() != source:
            link.unlink() if link.is_symlink() else shutil.rmtree(link)
    if not link.exists():
        link.symlink_to(source, target_is_directory=True)
    config.html_static_path = [*config.html_static_path, str(stage)]
    config.mathjax_path = f"mathjax/{ENTRY}"


def setup(app):
    app.connect("config-inited", _configure, priority=900)
    return {"version": MATHJAX_VERSION, "parallel_read_safe": True, "parallel_write_safe": True}
