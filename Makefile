# The two commands: `make run` (the tracker, with the demo) and `make test` (every test).
# Both create .venv and install what they need on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PORT   ?= 8000

.PHONY: run test bench smoke schema install browser audit-deps clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; set PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing dependencies into $(VENV) (first run only)..."
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/restoration serve --demo --port $(PORT)

test: $(STAMP) browser
	$(BIN)/python -m pytest

# The browser tests drive Debian's chromium (never a downloaded browser). Install it when it is
# missing and this machine lets us (root with apt-get); otherwise those tests skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's chromium for the browser tests..."; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
	      || echo "Could not install chromium; the browser tests will be skipped."; \
	  else \
	    echo "chromium is not installed and cannot be installed here (needs root and apt-get);" \
	      "the browser tests will be skipped."; \
	  fi; }

# Every benchmark, then BENCHMARKS.md from the figures they recorded in BENCH_RESULTS.
bench: export BENCH_RESULTS := $(CURDIR)/bench/results/results.jsonl
bench: $(STAMP)
	@mkdir -p $(dir $(BENCH_RESULTS)) && rm -f $(BENCH_RESULTS)
	$(BIN)/python bench/write.py
	$(BIN)/python bench/projections.py
	$(BIN)/python bench/audit.py
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/statuspage.py
	$(BIN)/python bench/graphql.py
	$(BIN)/python bench/soak.py
	$(BIN)/python bench/report.py

# Start the tracker on the embedded default, check /healthz answers, stop it (used by CI).
smoke: $(STAMP)
	env -u DATABASE_URL $(BIN)/python -m api.smoke

# Regenerate api/schema.graphql after changing the GraphQL schema (a test fails until you do).
schema: $(STAMP)
	$(BIN)/python -m api.graphql.schema

clean:
	rm -rf $(VENV) .venv-audit .restoration .pytest_cache

# Known vulnerabilities in exactly what the tracker installs: its virtualenv frozen to a lock file,
# checked by pip-audit (kept in a virtualenv of its own, so it is not audited with us) against the
# OSV database. Needs https://api.osv.dev, which the build machines cannot reach yet, so CI does
# not run it.
audit-deps: $(STAMP)
	@test -x .venv-audit/bin/pip-audit || { $(PYTHON) -m venv .venv-audit && \
	  .venv-audit/bin/python -m pip install --quiet --disable-pip-version-check 'pip-audit>=2.7'; }
	$(BIN)/python -m pip freeze --exclude-editable > $(VENV)/requirements.lock
	.venv-audit/bin/pip-audit --requirement $(VENV)/requirements.lock --no-deps --disable-pip \
	  --vulnerability-service osv
