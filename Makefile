# vae-lightning: make install, make train, make test
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: help install train lint test test-all bench figures clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install:  ## venv in .venv with the package (editable) and test tools; Fashion-MNIST from Debian when possible
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ ! -d /usr/share/datasets/fashion-mnist ]; then \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) \
		|| echo "note: could not install Debian's dataset-fashion-mnist; Fashion-MNIST needs its IDX files in data/FashionMNIST/raw"; \
	fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@$(PY) -c "import torch, lightning, hydra; print('installed: torch', torch.__version__, '| lightning', lightning.__version__, '| hydra', hydra.__version__)"

train:  ## the default run (MNIST, Bernoulli, 784-400-20 MLP); ARGS='likelihood=gaussian ...' for overrides
	$(PY) -m vae_lightning.train $(ARGS)

lint:  ## ruff: lint and import order (configured in pyproject.toml)
	$(PY) -m ruff check .

test: lint  ## lint, then the default test suite (11 minutes on 2 CPU cores, 2026-12-02)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: lint  ## lint, then every test, slow ones included (CI)
	$(PY) -m pytest $(PYTEST_ARGS)

bench:  ## speed and memory vs a plain loop, torchvision, a single-file script; per-step and per-sweep overhead (benchmarks/README.md)
	$(PY) benchmarks/bench.py
	$(PY) benchmarks/step_overhead.py
	$(PY) benchmarks/sweep_overhead.py

figures:  ## regenerate the README's pictures in docs/figures from two fresh runs
	$(PY) docs/make_figures.py

clean:  ## remove caches (never outputs/ or data/)
	rm -rf .pytest_cache .cache
	find . -name __pycache__ -prune -exec rm -rf {} +
