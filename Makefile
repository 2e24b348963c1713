# Two commands matter (see README.md):
#   make run    set up, then ingest the sample advisories, build feeds, queue and deliver
#               digests on the embedded default (SQLite, Maildir) under ./var
#   make test   set up, then run the whole test suite and the linters
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test lint lock clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11 or newer is needed (found $$($(PYTHON) --version))"; exit 2; }
	@# A bare Debian lacks python3-venv: install it when making the venv fails, then retry.
	$(PYTHON) -m venv $(VENV) >/dev/null 2>&1 || { rm -rf $(VENV); scripts/install-system-packages python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install --quiet --upgrade pip
	@# The versions the suite passed with (make lock renews the file), then the project itself.
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

run: setup
	$(BIN)/alerts run --once

test: setup
	$(BIN)/ruff check alerts tests benchmarks
	$(BIN)/ruff format --check alerts tests benchmarks
	$(BIN)/mypy --strict alerts
	$(BIN)/mypy tests benchmarks
	@# postfix: tests/delivery/test_bounces_postfix.py runs a private instance of it (never the system one);
	@# dovecot-imapd: tests/delivery/test_bounces_imap.py runs a private IMAPS server (never the system one);
	@# nginx and systemd: tests/deploy runs nginx on loopback and checks the units.
	scripts/install-system-packages chromium nginx systemd postfix dovecot-imapd
	scripts/install-axe-core
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Re-resolve requirements.lock (from PyPI) after changing pyproject.toml's dependencies:
# the pins still allowed stay; UPGRADE=--upgrade takes the newest of everything.
lock: setup
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile --quiet $(UPGRADE) pyproject.toml --extra test --universal --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
