# Fovea: `make run` serves http://127.0.0.1:8080/dicom-web (SQLite + ./data); `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install dicom-tools run test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# DCMTK and GDCM command-line tools: independent readers the tests check outputs with (tests/dicom_tools.py).
# Installed only when dcmdump or gdcmconv is missing; `apt-get update` only if the first install fails.
DICOM_TOOL_PACKAGES := dcmtk libgdcm-tools
APT_INSTALL := env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends

dicom-tools:
	@if command -v dcmdump >/dev/null 2>&1 && command -v gdcmconv >/dev/null 2>&1; then exit 0; fi; \
	sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	echo "installing $(DICOM_TOOL_PACKAGES)"; \
	$$sudo $(APT_INSTALL) $(DICOM_TOOL_PACKAGES) \
	  || { $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q \
	       && $$sudo $(APT_INSTALL) $(DICOM_TOOL_PACKAGES); }

run: install
	$(BIN)/fovea serve

test: install dicom-tools
	$(BIN)/pytest -q -p no:cacheprovider

lint: install
	$(BIN)/ruff check app tests bench migrations
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/bench_stow.py
	$(BIN)/python bench/bench_frames.py
	$(BIN)/python bench/bench_transcode.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
