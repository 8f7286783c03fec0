# Fovea: `make run` serves http://127.0.0.1:8080/dicom-web (SQLite + ./data); `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Two stamps: `make run` installs what serving needs; the test, lint and benchmark targets add the rest.
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed

.PHONY: install install-run dicom-tools load-balancer lock run test lint bench clean e2e browser ohif crash-test oidc-provider

install: $(STAMP)
install-run: $(RUN_STAMP)

$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml $(RUN_STAMP)
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

# nginx, the load balancer of the scale-out test (tests/integration/test_scale_out.py): three Fovea
# processes behind it, round robin. Installed only when missing, as the DICOM tools are.
LOAD_BALANCER_PACKAGES := nginx-light

load-balancer:
	@if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then exit 0; fi; \
	sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	echo "installing $(LOAD_BALANCER_PACKAGES)"; \
	$$sudo $(APT_INSTALL) $(LOAD_BALANCER_PACKAGES) \
	  || { $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q \
	       && $$sudo $(APT_INSTALL) $(LOAD_BALANCER_PACKAGES); }

# Browser tests (e2e/): the OHIF Viewer, in Debian's Chromium driven by Playwright, against a live Fovea.
# Screenshots and logs go to test-artifacts/e2e/.
E2E_STAMP := $(VENV)/.installed-e2e
E2E_CACHE := .e2e-cache
OHIF_VERSION := 3.13.2
OHIF_TARBALL := $(E2E_CACHE)/ohif-app-$(OHIF_VERSION).tgz
OHIF_DIR := $(E2E_CACHE)/ohif-app-$(OHIF_VERSION)

$(E2E_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,e2e]'
	touch $(E2E_STAMP)

# Chromium from Debian, installed only when missing: Playwright drives it but downloads no browser.
browser:
	@if [ -x /usr/bin/chromium ]; then exit 0; fi; \
	sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	echo "installing chromium"; \
	$$sudo $(APT_INSTALL) chromium \
	  || { $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q \
	       && $$sudo $(APT_INSTALL) chromium; }

# The OHIF Viewer's production build (dist/ of the npm package), fetched once and unpacked.
ohif: $(OHIF_DIR)/dist/index.html

$(OHIF_TARBALL):
	mkdir -p $(E2E_CACHE)
	npm pack --silent --pack-destination $(E2E_CACHE) @ohif/app@$(OHIF_VERSION)

$(OHIF_DIR)/dist/index.html: $(OHIF_TARBALL)
	rm -rf $(OHIF_DIR) && mkdir -p $(OHIF_DIR)
	tar -xzf $(OHIF_TARBALL) -C $(OHIF_DIR) --strip-components=1
	touch $@

e2e: $(E2E_STAMP) browser ohif
	FOVEA_E2E_OHIF_DIST=$(OHIF_DIR)/dist $(BIN)/pytest -q -p no:cacheprovider e2e

# The Docker image installs exactly these versions, checked by hash: requirements.lock (the runtime
# dependencies of pyproject.toml) and build-requirements.lock (the build backend). Regenerate both after a
# change of dependencies with `make lock`: uv's resolver, for every platform, Python 3.11 (the image's).
UV_VERSION := 0.13.9
UV := .lock-tools/bin/uv
UV_COMPILE := $(UV) pip compile --universal --python-version 3.11 --generate-hashes --quiet --custom-compile-command "make lock"

$(UV):
	$(PYTHON) -m venv .lock-tools
	.lock-tools/bin/pip install --quiet uv==$(UV_VERSION)

lock: $(UV)
	$(UV_COMPILE) pyproject.toml -o requirements.lock
	printf 'hatchling>=1.25\n' | $(UV_COMPILE) - -o build-requirements.lock

run: install-run
	$(BIN)/fovea serve

# The OpenID provider the OIDC tests run (npm oidc-provider on Node.js, tests/oidc/provider.mjs),
# installed once into the cache; the tests install it themselves too, and fail clearly without Node.js.
OIDC_PROVIDER_VERSION := 9.13.3
OIDC_PROVIDER_DIR := $(E2E_CACHE)/oidc-provider

oidc-provider: $(OIDC_PROVIDER_DIR)/node_modules/oidc-provider/package.json

$(OIDC_PROVIDER_DIR)/node_modules/oidc-provider/package.json:
	@command -v node >/dev/null 2>&1 || { echo "Node.js (v20 or later) is required for the OIDC tests"; exit 1; }
	mkdir -p $(OIDC_PROVIDER_DIR)
	npm install --no-audit --no-fund --silent --prefix $(OIDC_PROVIDER_DIR) oidc-provider@$(OIDC_PROVIDER_VERSION)

test: install dicom-tools load-balancer oidc-provider
	$(BIN)/pytest -q -p no:cacheprovider

# SIGKILL during concurrent STOW-RS, many times, on SQLite + folder and PostgreSQL + S3 (moto); the normal
# test run does it ten times on SQLite + folder (tests/integration/test_crash_consistency.py).
CRASH_KILLS ?= 50
crash-test: install
	FOVEA_CRASH_KILLS=$(CRASH_KILLS) FOVEA_CRASH_BACKENDS=sqlite-file,postgres-s3 \
	  $(BIN)/pytest -q -p no:cacheprovider tests/integration/test_crash_consistency.py

# The long fuzzing run (tests/fuzz, README "Fuzzing"): FUZZ_EXAMPLES examples per test instead of the
# few `make test` runs, with a random seed that is printed first, so a failure can be replayed with
# `make fuzz FUZZ_SEED=<seed>`. FUZZ_BACKEND=postgres-s3 runs them on PostgreSQL and S3 (moto).
.PHONY: fuzz
FUZZ_EXAMPLES ?= 500
FUZZ_SEED ?= $(shell date +%s)
# Evaluated once: the seed printed is the seed used.
FUZZ_SEED := $(FUZZ_SEED)
FUZZ_BACKEND ?= sqlite-file

fuzz: install
	@echo "fuzz: $(FUZZ_EXAMPLES) examples per test on $(FUZZ_BACKEND), seed $(FUZZ_SEED) (replay: make fuzz FUZZ_SEED=$(FUZZ_SEED))"
	FOVEA_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FOVEA_FUZZ_BACKEND=$(FUZZ_BACKEND) $(BIN)/pytest -q -p no:cacheprovider --timeout=7200 \
	  --hypothesis-seed=$(FUZZ_SEED) --hypothesis-show-statistics tests/fuzz

# mypy checks the packages pyproject.toml's [tool.mypy] names: app and tests, both strict.
# bench/ holds scripts that import their sibling `common` (and `app` from the checkout): checked from there.
lint: install
	$(BIN)/ruff check app tests bench migrations e2e
	$(BIN)/mypy
	cd bench && MYPYPATH=.. $(abspath $(BIN))/mypy --config-file ../pyproject.toml --explicit-package-bases *.py

bench: install
	$(BIN)/python bench/bench_stow.py
	$(BIN)/python bench/bench_import.py
	$(BIN)/python bench/bench_frames.py
	$(BIN)/python bench/bench_transcode.py
	$(BIN)/python bench/bench_instance_stream.py
	$(BIN)/python bench/bench_qido.py
	$(BIN)/python bench/bench_query_tags.py
	$(BIN)/python bench/bench_rendered.py
	$(BIN)/python bench/bench_auth.py
	$(BIN)/python bench/bench_audit.py
	$(BIN)/python bench/bench_shared_cache.py
	$(BIN)/python bench/bench_idle_memory.py
	$(BIN)/python bench/bench_request_overhead.py

# Side by side with Orthanc, alternating runs (bench/README.md, "Against Orthanc"): needs root, and the
# workplace's comparison harness beside this checkout; writes bench/results/vs-orthanc/cmp.md (committed).
PEER_HARNESS ?= ../shared/peers/orthanc/compare.sh
.PHONY: bench-vs-orthanc
bench-vs-orthanc: install
	@test -x $(PEER_HARNESS) || { echo "no comparison harness at $(PEER_HARNESS) (set PEER_HARNESS=...)"; exit 2; }
	$(PEER_HARNESS) .

# The same with `fovea serve --workers 2`; writes bench/results/vs-orthanc/cmp-workers-2.md (committed).
.PHONY: bench-vs-orthanc-workers-2
bench-vs-orthanc-workers-2: install
	@test -x $(PEER_HARNESS) || { echo "no comparison harness at $(PEER_HARNESS) (set PEER_HARNESS=...)"; exit 2; }
	FOVEA_ARGS="--workers 2" $(PEER_HARNESS) . bench/results/vs-orthanc/workers-2
	cp bench/results/vs-orthanc/workers-2/cmp.md bench/results/vs-orthanc/cmp-workers-2.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(E2E_CACHE) .lock-tools
