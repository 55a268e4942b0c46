# Two entry points for a fresh machine (see README "Quick start"):
#   make check   installs dlverify into .venv and checks this machine against hwspec.yaml
#   make test    installs the test toolchain and runs every test: ruff, mypy, pytest, yamllint/ansible-lint, Molecule
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
SPEC ?= hwspec.yaml
# torch/torchvision for the benchmark's CPU tests; these exact releases are on this platform's local disk
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
# pytest workers (pytest-xdist; whole files per worker, so a file's module fixtures are built once)
PYTEST_JOBS ?= auto
# Molecule scenarios side by side (test hosts mostly wait on dpkg and apt; 2 fit a 2-core CI machine)
ROLES_JOBS ?= 2
BIN := $(VENV)/bin
# editable installs map `dlverify` by plain paths to this checkout (a link tree in build/), never by a finder
# that follows whichever clone installed last; a new module needs `make test-venv` again (tests/conftest.py says so)
EDITABLE := --config-settings editable_mode=strict -e

.PHONY: check venv test-venv host-tools test lint pytest roles release clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

venv: $(BIN)/python
	$(BIN)/pip install -q $(EDITABLE) .

check: venv
	$(BIN)/dlverify spec lint $(SPEC)
	$(BIN)/dlverify check $(SPEC)

test-venv: $(BIN)/python
	$(BIN)/pip install -q $(TORCH_PINS) $(EDITABLE) '.[test,harness]'

lint: test-venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/typecheck.py
	PATH="$(abspath $(BIN)):$$PATH" tools/harness/lint.sh

# dmidecode is the independent witness of the SMBIOS (DIMM) decoder's test, chromium draws the fleet HTML report;
# installed where apt and root allow. promtool (Debian's prometheus package, only the binary: no daemon is
# installed) checks and unit-tests the alert rules and the textfiles: extracted into the venv's bin.
host-tools:
	@command -v dmidecode >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dmidecode; } >/dev/null; } \
	  || echo "make: dmidecode is not installed (apt-get install dmidecode): its witness test will be skipped"
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null; } \
	  || echo "make: chromium is not installed (apt-get install chromium): the HTML report's browser test will be skipped"
	@command -v promtool >/dev/null || [ -x $(BIN)/promtool ] || { d=$$(mktemp -d); \
	  (cd $$d && apt-get download -qq prometheus) >/dev/null 2>&1 && dpkg-deb -x $$d/prometheus_*.deb $$d/x \
	  && mkdir -p $(BIN) && install -m 0755 $$d/x/usr/bin/promtool $(BIN)/promtool; ok=$$?; rm -rf $$d; [ $$ok = 0 ]; } \
	  || echo "make: promtool (Debian's prometheus package) is not available: the alert rules' tests will be skipped"

pytest: test-venv host-tools
	$(BIN)/python -m pytest -q --durations=15 -n $(PYTEST_JOBS) --dist loadfile

roles: test-venv
	PATH="$(abspath $(BIN)):$$PATH" tools/harness/molecule-run.sh -j $(ROLES_JOBS)

test: lint pytest roles

# One release command: the Python sdist + wheel and the Ansible collection tarball, all into dist/, then checked
# (twine check --strict; the collection installed offline into a scratch path and its roles listed by FQCN).
# The version is verify/__init__.py's __version__; galaxy.yml must carry the same (tests/test_release_*.py).
release: $(BIN)/python
	$(BIN)/pip install -q $(EDITABLE) '.[release]'
	rm -rf dist && mkdir -p dist
	$(BIN)/python -m build --sdist --wheel --outdir dist .
	$(BIN)/twine check --strict dist/*.whl dist/*.tar.gz
	@v=$$($(BIN)/python -c 'import dlverify; print(dlverify.__version__)'); \
	  grep -qx "version: $$v" galaxy.yml || { echo "make: galaxy.yml's version is not $$v (verify/__init__.py)" >&2; exit 1; }
	$(BIN)/ansible-galaxy collection build --force --output-path dist .
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  $(BIN)/ansible-galaxy collection install --offline -p "$$tmp" dist/dlverify-gpu_server-*.tar.gz && \
	  ANSIBLE_COLLECTIONS_PATH="$$tmp" $(BIN)/ansible-doc -t role -l dlverify.gpu_server
	@ls -l dist

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
