# Fovea: `make run` serves http://127.0.0.1:8080/dicom-web (SQLite + ./data); `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: install
	$(BIN)/fovea serve

test: install
	$(BIN)/pytest -q -p no:cacheprovider

lint: install
	$(BIN)/ruff check app tests bench migrations
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/bench_stow.py
	$(BIN)/python bench/bench_frames.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
