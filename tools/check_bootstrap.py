"""Run each notebook's Colab bootstrap cell for real, offline, then import what the notebook imports.

    python tools/check_bootstrap.py [--only STEM ...] [--keep] [--work DIR] [--torch-index URL]
    make bootstrap-check

tests/test_bootstrap.py checks on paper, in seconds, that what each cell installs covers what its
notebook imports (requirement closures read from metadata). This script checks it by installing, once
per distinct install spec the cells use (`neuraltext`, `neuraltext[align]`, `neuraltext[llm]`):

1. Online, through this machine's pip configuration (PyPI): build the wheel of companion/
   (`pip wheel --no-deps`) and fill a wheelhouse once (`pip download`, kept under --work and refilled
   only when the wheel's requirements, constraints.txt or the torch pin change) with everything the
   wheel requires under all the extras the cells use, at constraints.txt's versions. torch is pinned
   to constraints.txt's version, as the Makefile does: on the course machines pip's find-links serve
   that version's CPU build. Elsewhere `--torch-index URL` (e.g. PyTorch's CPU wheel index, where it
   is reachable) fetches the CPU build first; an unpinned torch from PyPI would pull a multi-GB CUDA one.
2. Offline, per spec: a fresh venv (`python -m venv`, no system site-packages; its pip upgraded from
   the wheelhouse), in which the bootstrap cell itself, as tools/bootstrap_cell.py renders it, runs with
   two changes only (`offline_cell`): its requirement points at the local wheel (`neuraltext[...] @
   file:///...whl`) and its pip command gets `--no-index --find-links WHEELHOUSE`. pip runs with no
   configuration file and no PIP_* variable (so no index, find-links or constraint of this machine leaks
   in), and inside a network namespace with no interface (`unshare -n`) where the machine allows one:
   nothing can be downloaded. The table's footer says which of the two guards held.
3. In that venv, one process per notebook runs every import statement of the notebook and every
   third-party import statement of the neuraltext modules it uses (function-level ones too: trl and
   outlines are imported lazily), one by one; imports inside `try: ... except ImportError` are optional
   and skipped. Then the notebook's own (unchanged) cell runs again and must not call pip.

One table: notebook, spec, install time, imports ok / failed. Exit status 1 on any failure. The venvs
(~2 GB each) are removed after their spec unless --keep.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import bootstrap_cell  # noqa: E402

PACKAGE = ROOT / "companion" / "src" / "neuraltext"
CONSTRAINTS = ROOT / "constraints.txt"
OPTIONAL = {"ImportError", "ModuleNotFoundError"}


# --- what a notebook imports (ast; shared with tests/test_bootstrap.py) ---------------------------------
def cell_text(cell: dict) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def import_nodes(source: str) -> list[ast.Import | ast.ImportFrom]:
    """The import statements of `source`, one name per `import a, b`, except those inside a
    `try: ... except ImportError` (optional by construction); IPython `%` and `!` lines are dropped."""
    source = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    tree = ast.parse(source)
    optional = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(isinstance(h.type, ast.Name) and h.type.id in OPTIONAL
                                             for h in node.handlers):
            optional |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    found = []
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            found += [ast.Import(names=[alias]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append(node)
    return found


def imported_names(source: str) -> set[str]:
    """Names imported by `source`: `a.b` for `import a.b`, the top-level name for `from a.b import c`
    (the whole module when it is neuraltext's, plus `neuraltext.c` for `from neuraltext import c`)."""
    names = set()
    for node in import_nodes(source):
        if isinstance(node, ast.Import):
            names.add(node.names[0].name)
        elif node.level == 0 and node.module:
            names.add(node.module if node.module.startswith("neuraltext") else node.module.split(".")[0])
            if node.module == "neuraltext":
                names |= {f"neuraltext.{a.name}" for a in node.names}
    return names


def _package_targets(node: ast.Import | ast.ImportFrom, file: Path | None = None) -> list[str]:
    """The neuraltext modules an import statement (in package `file`, for a relative one) may load:
    `from m import x` loads m and, when x is a submodule, m.x."""
    if isinstance(node, ast.Import):
        name = node.names[0].name
        return [name] if name.split(".")[0] == "neuraltext" else []
    if node.level == 0:
        base = node.module or ""
        if base.split(".")[0] != "neuraltext":
            return []
    else:
        package = file.parent
        for _ in range(node.level - 1):
            package = package.parent
        base = ".".join(("neuraltext",) + package.relative_to(PACKAGE).parts + ((node.module,) if node.module else ()))
    return [base] + [f"{base}.{a.name}" for a in node.names if a.name != "*"]


def _module_files(module: str) -> list[Path]:
    """The file that importing `module` runs (with its parent packages' `__init__.py` before it)."""
    parts = module.split(".")[1:]
    files = [PACKAGE.joinpath(*parts[:i], "__init__.py") for i in range(len(parts))]
    path = PACKAGE.joinpath(*parts)
    return files + [path / "__init__.py" if path.is_dir() else path.with_suffix(".py")]


def package_import_nodes(module: str, seen: set[Path]) -> list[ast.Import | ast.ImportFrom]:
    """The non-neuraltext import statements (stdlib included) that importing `neuraltext.<...>` can run,
    following neuraltext's own imports, function-level ones included; `seen` holds the files read."""
    found = []
    for file in _module_files(module):
        if not file.exists() or file in seen:
            continue
        seen.add(file)
        for node in import_nodes(file.read_text(encoding="utf-8")):
            targets = _package_targets(node, file)
            if targets:
                for target in targets:
                    found += package_import_nodes(target, seen)
            elif getattr(node, "level", 0) == 0:
                found.append(node)
    return found


def _top(node: ast.Import | ast.ImportFrom) -> str:
    return (node.names[0].name if isinstance(node, ast.Import) else node.module).split(".")[0]


def package_imports(module: str, seen: set[Path]) -> set[str]:
    """Top-level names that importing `neuraltext.<...>` imports, following neuraltext's own imports."""
    return {_top(node) for node in package_import_nodes(module, seen)}


def notebook_statements(path: Path) -> list[str]:
    """The import statements to run for notebook `path`: its own (the bootstrap cell aside), then the
    third-party ones of the neuraltext modules it uses, each once, in order."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    statements, seen = [], set()
    for cell in [c for c in nb["cells"] if c["cell_type"] == "code"][1:]:
        for node in import_nodes(cell_text(cell)):
            statements.append(ast.unparse(node))
            for target in _package_targets(node):
                statements += [ast.unparse(n) for n in package_import_nodes(target, seen)
                               if _top(n) not in sys.stdlib_module_names]
    return list(dict.fromkeys(statements))


# --- the cell, pointed at this disk -------------------------------------------------------------------
def install_specs(notebooks: list[Path]) -> dict[tuple[str, ...], list[str]]:
    """Notebook stems grouped by the extras their bootstrap cell installs (`()`: the core package)."""
    specs: dict[tuple[str, ...], list[str]] = {}
    for path in notebooks:
        specs.setdefault(tuple(bootstrap_cell.NOTEBOOK_EXTRAS.get(path.stem, ())), []).append(path.stem)
    return specs


def spec_name(extras: tuple[str, ...]) -> str:
    return bootstrap_cell.requirement(extras).split(" @ ")[0]


def offline_cell(source: str, extras: tuple[str, ...], wheel: Path, wheelhouse: Path) -> str:
    """The bootstrap cell `source` with its requirement `bootstrap_cell.requirement(extras)` replaced by
    `neuraltext[extras] @ file:///<wheel>` and `--no-index --find-links <wheelhouse>` put before it in the
    same pip argument list: the same cell, installing the same distributions, from this disk only."""
    remote = bootstrap_cell.requirement(extras)
    tree = ast.parse(source)
    holders = [n for n in ast.walk(tree) if isinstance(n, ast.List)
               and any(isinstance(e, ast.Constant) and e.value == remote for e in n.elts)]
    if len(holders) != 1 or not any(isinstance(e, ast.Constant) and e.value == "install" for e in holders[0].elts):
        raise ValueError(f"source: expected one pip `install` argument list holding {remote!r}, "
                         f"found {len(holders)} list(s) holding it; render the cell with tools/bootstrap_cell.py")
    elts = holders[0].elts
    i = next(k for k, e in enumerate(elts) if isinstance(e, ast.Constant) and e.value == remote)
    local = f"{spec_name(extras)} @ {Path(wheel).resolve().as_uri()}"
    elts[i:i + 1] = [ast.Constant(v) for v in ("--no-index", "--find-links", str(Path(wheelhouse).resolve()), local)]
    return ast.unparse(tree)


def offline_env(venv: Path | None = None) -> dict[str, str]:
    """The environment of every offline step: no PIP_* variable and no pip configuration file (this
    machine's index, find-links and constraints stay out), no PYTHONPATH, the Hugging Face libraries
    offline, the venv's bin first on PATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV", "CONDA"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg", TQDM_DISABLE="1")
    if venv is not None:
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def network_namespace() -> list[str]:
    """A command prefix that runs without any network interface (`unshare -n`, as root, or `unshare -rn`
    in a user namespace), or [] where neither works here (then only pip's --no-index guards)."""
    for prefix in (["unshare", "-n"], ["unshare", "-rn"]):
        try:
            if subprocess.run(prefix + ["true"], capture_output=True, timeout=30).returncode == 0:
                return prefix
        except (OSError, subprocess.TimeoutExpired):
            pass
    return []


# --- online: the wheel and the wheelhouse -----------------------------------------------------------------
def torch_pin(constraints: Path = CONSTRAINTS) -> str:
    match = re.search(r"^torch==(\S+)", constraints.read_text(encoding="utf-8"), re.M)
    if not match:
        raise SystemExit(f"{constraints}: no `torch==VERSION` line; the wheelhouse pins torch to it")
    return match.group(1)


def _run(cmd: list[str], what: str, **kw) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode:
        tail = (proc.stdout + proc.stderr).strip()[-3000:]
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
    return time.perf_counter() - start


def build_wheel(out: Path) -> tuple[Path, float]:
    shutil.rmtree(out, ignore_errors=True)
    seconds = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT / "companion"), "-w", str(out)],
                   "building the companion wheel")
    return next(out.glob("neuraltext-*.whl")), seconds


def download_command(wheel: Path, wheelhouse: Path, extras: list[str], torch: str) -> list[str]:
    """`pip download` of the wheel's requirements with `extras`, torch pinned, at constraints.txt's versions
    (and pip itself, to upgrade the venvs' bundled one offline)."""
    name = f"neuraltext[{','.join(extras)}]" if extras else "neuraltext"
    return [sys.executable, "-m", "pip", "download", "-q", "--dest", str(wheelhouse), "--find-links", str(wheelhouse),
            "-c", str(CONSTRAINTS), f"torch=={torch}", f"{name} @ {wheel.resolve().as_uri()}", "pip"]


def fill_wheelhouse(wheelhouse: Path, wheel: Path, extras: list[str], torch_index: str | None) -> dict:
    """Download once what the specs need; `{"seconds": float | None (None: already filled), "bytes", "files"}`."""
    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    key = json.dumps({"requires": sorted(re.findall(r"^Requires-Dist: (.*)$", meta, re.M)), "extras": extras,
                      "torch": torch_pin(), "torch_index": torch_index, "python": sys.version_info[:2],
                      "constraints": hashlib.sha256(CONSTRAINTS.read_bytes()).hexdigest()})
    stamp, seconds = wheelhouse / ".filled", None
    if not (stamp.exists() and stamp.read_text() == key):
        wheelhouse.mkdir(parents=True, exist_ok=True)
        stamp.unlink(missing_ok=True)
        seconds = 0.0
        if torch_index:  # the CPU build's `+cpu` local version sorts above PyPI's plain one
            seconds += _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--index-url", torch_index,
                             "--dest", str(wheelhouse), f"torch=={torch_pin()}"], "downloading torch's CPU build")
        seconds += _run(download_command(wheel, wheelhouse, extras, torch_pin()), "filling the wheelhouse")
        for stale in wheelhouse.glob("neuraltext-*"):  # the cells install the wheel by its file URL
            stale.unlink()
        stamp.write_text(key)
    files = [f for f in wheelhouse.iterdir() if f.name != ".filled"]
    return {"seconds": seconds, "bytes": sum(f.stat().st_size for f in files), "files": len(files)}


# --- offline: one venv per spec ----------------------------------------------------------------------------
# Runs in the venv: each statement in turn, then the notebook's unchanged cell with pip replaced by a recorder.
RUNNER = r"""
import json, subprocess, sys
statements, cell = json.load(open(sys.argv[1], encoding="utf-8"))
failed = {}
for statement in statements:
    try:
        exec(statement, {})
    except BaseException as exc:
        failed[statement] = f"{type(exc).__name__}: {exc}"[:300]
calls = []
subprocess.run = lambda *a, **k: calls.append(a)
exec(cell, {})
json.dump({"failed": failed, "rerun_calls": len(calls)}, open(sys.argv[2], "w", encoding="utf-8"))
"""


def check_notebook(python: Path, stem: str, netns: list[str], env: dict, work: Path) -> dict:
    statements = notebook_statements(ROOT / "book" / f"{stem}.ipynb")
    todo, done = work / f"{stem}.in.json", work / f"{stem}.out.json"
    todo.write_text(json.dumps([statements, bootstrap_cell.cell_source(stem)]), encoding="utf-8")
    start = time.perf_counter()
    proc = subprocess.run(netns + [str(python), "-c", RUNNER, str(todo), str(done)], capture_output=True,
                          text=True, env=env, cwd=work, timeout=1800)
    seconds = time.perf_counter() - start
    if proc.returncode or not done.exists():
        return {"n": len(statements), "failed": {"(the import run)": (proc.stdout + proc.stderr).strip()[-300:]},
                "rerun_calls": None, "seconds": seconds}
    return {"n": len(statements), "seconds": seconds, **json.loads(done.read_text(encoding="utf-8"))}


def check_spec(extras: tuple[str, ...], stems: list[str], wheel: Path, wheelhouse: Path, venv: Path,
               netns: list[str]) -> dict:
    """A fresh venv, the cell of `stems[0]` run in it offline (all `stems` share its install spec), then
    each notebook's imports; `{"install_s", "error", "notebooks": {stem: check_notebook(...)}}`."""
    shutil.rmtree(venv, ignore_errors=True)
    env, python = offline_env(venv), venv / "bin" / "python"
    result = {"install_s": None, "error": None, "notebooks": {}}
    try:
        setup = _run(netns + [sys.executable, "-m", "venv", str(venv)], "creating the venv", env=env)
        setup += _run(netns + [str(python), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheelhouse),
                               "--upgrade", "pip"], "upgrading the venv's pip from the wheelhouse", env=env)
        print(f"  venv and its pip: {setup:.1f} s; running the cell", file=sys.stderr, flush=True)
        cell = venv / "bootstrap_cell.py"
        cell.write_text(offline_cell(bootstrap_cell.cell_source(stems[0]), extras, wheel, wheelhouse), encoding="utf-8")
        result["install_s"] = _run(netns + [str(python), str(cell)], "the bootstrap cell", env=env, cwd=venv,
                                   timeout=3600)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        result["error"] = str(exc)
        return result
    for stem in stems:
        print(f"  importing what {stem} imports", file=sys.stderr, flush=True)
        result["notebooks"][stem] = check_notebook(python, stem, netns, env, venv)
    return result


def _venv_size(venv: Path) -> int:
    return sum(f.stat().st_size for f in venv.rglob("*") if f.is_file() and not f.is_symlink())


def report(results: dict, wheelhouse: dict, wheel_s: float, netns: list[str]) -> bool:
    """Print the table (one row per notebook) and the failures; True when everything passed."""
    ok, lines = True, []
    print(f"{'notebook':24} {'spec':20} {'install':>9} {'venv':>7} {'imports':>9} {'failed':>6} {'took':>7} "
          f"{'re-run':>7}")
    for extras, res in results.items():
        install = f"{res['install_s']:.1f} s" if res["install_s"] is not None else "FAILED"
        if res["error"]:
            ok = False
            lines.append(f"{spec_name(extras)}: {res['error']}")
        for stem in res["stems"]:
            nb = res["notebooks"].get(stem)
            if nb is None:
                print(f"{stem:24} {spec_name(extras):20} {install:>9} {'-':>7} {'-':>9} {'-':>6} {'-':>7} {'-':>7}")
                continue
            rerun = "no-op" if nb["rerun_calls"] == 0 else "PIP" if nb["rerun_calls"] else "?"
            ok &= not nb["failed"] and nb["rerun_calls"] == 0
            print(f"{stem:24} {spec_name(extras):20} {install:>9} {res['venv_gb']:>5.1f}GB "
                  f"{nb['n'] - len(nb['failed']):>4}/{nb['n']:<4} {len(nb['failed']):>6} {nb['seconds']:>5.1f} s "
                  f"{rerun:>7}")
            lines += [f"{stem}: `{s}` -> {err}" for s, err in nb["failed"].items()]
    filled = "already filled" if wheelhouse["seconds"] is None else f"filled in {wheelhouse['seconds']:.0f} s"
    print(f"\nwheel built in {wheel_s:.1f} s; wheelhouse: {wheelhouse['files']} files, "
          f"{wheelhouse['bytes'] / 2**20:.0f} MiB, {filled}")
    print("offline: pip --no-index, no pip configuration or PIP_* variable"
          + (f", and no network interface ({' '.join(netns)})" if netns else " (no network namespace here)"))
    for line in lines:
        print("FAILED", line)
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "_build" / "bootstrap-check",
                        help="wheel, wheelhouse and venvs (default: %(default)s)")
    parser.add_argument("--only", nargs="+", metavar="STEM", help="these notebooks only (e.g. 09_alignment)")
    parser.add_argument("--keep", action="store_true", help="keep the venvs")
    parser.add_argument("--torch-index", metavar="URL", help="download torch's CPU build from this index first")
    args = parser.parse_args(argv)
    notebooks = sorted((ROOT / "book").glob("*.ipynb"))
    unknown = set(args.only or ()) - {p.stem for p in notebooks}
    if unknown:
        parser.error(f"--only: no notebook {sorted(unknown)} in book/; allowed: {[p.stem for p in notebooks]}")
    work = args.work.resolve()
    every_extra = sorted({e for extras in install_specs(notebooks) for e in extras})
    print("building the wheel and filling the wheelhouse (online)", file=sys.stderr, flush=True)
    wheel, wheel_s = build_wheel(work / "wheel")
    wheelhouse = fill_wheelhouse(work / "wheelhouse", wheel, every_extra, args.torch_index)
    netns = network_namespace()
    results = {}
    for extras, stems in install_specs([p for p in notebooks if not args.only or p.stem in args.only]).items():
        print(f"{spec_name(extras)}: fresh venv, bootstrap cell offline ({', '.join(stems)})", file=sys.stderr, flush=True)
        venv = work / f"venv-{'-'.join(extras) or 'core'}"
        results[extras] = check_spec(extras, stems, wheel, work / "wheelhouse", venv, netns)
        results[extras].update(stems=stems, venv_gb=_venv_size(venv) / 2**30 if venv.exists() else 0.0)
        if not args.keep:
            shutil.rmtree(venv, ignore_errors=True)
    return 0 if report(results, wheelhouse, wheel_s, netns) else 1


if __name__ == "__main__":
    sys.exit(main())
