# The two quick-start commands: `make run` (ingest the sample corpus, serve the chat) and `make test`.
# Each creates the virtual environment on first use; torch is installed first, pinned to the CPU
# wheel, because a bare `torch` (or unstructured[pdf] resolving one) pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
KB ?= zhiku-kb
PORT ?= 8501
export HF_HUB_OFFLINE = 1
export TRANSFORMERS_OFFLINE = 1

.PHONY: install run test corpus bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]' torch==2.13.0
	$(PY) -m pip uninstall -q -y torchvision  # pulled by unstructured[pdf]; breaks transformers beside this torch
	touch $@

install: $(VENV)/.installed

examples/corpus/.generated: $(VENV)/.installed examples/make_corpus.py
	$(PY) examples/make_corpus.py examples/corpus
	touch $@

corpus: examples/corpus/.generated

run: corpus
	$(VENV)/bin/zhiku ingest examples/corpus --kb $(KB)
	$(VENV)/bin/zhiku ui --kb $(KB) --port $(PORT)

test: install
	bash tests/ui/install_browser.sh
	$(PY) -m pytest -q

bench: install
	$(PY) bench/run.py --quick

clean:
	rm -rf $(KB) examples/corpus
