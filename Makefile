# Referral CRM. `make run` sets everything up and runs the app; `make test` runs the tests.
# Needs only Python 3.11+ and make; DATABASE_URL / REDIS_URL switch to Postgres / Redis.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test install browser lint bench lock clean

run: $(STAMP)
	@bin/run

test: $(STAMP) browser
	$(PY) -m pytest $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --requirement requirements.lock
	rm -f $(VENV)/.installed-* && touch $@

# Browser tests drive Debian's chromium (Playwright cannot download its own browser here).
browser:
	@test -x $(CHROMIUM) || bin/install-chromium

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/djlint templates --lint
	$(VENV)/bin/djlint core/jinja2 intake/jinja2 partners/jinja2 referrals/jinja2 --lint --profile=jinja
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m bench

lock: $(STAMP)
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) var
