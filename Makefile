# Proofdesk: `make run` serves the demo, `make test` runs the whole suite.
VENV := .venv
PY := $(VENV)/bin/python
VENDOR := static/vendor
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: install run test demo lint clean

install: $(VENV)/.installed $(VENDOR)/.installed

# Re-installs only when the pins change (requirements.lock pins every transitive package).
$(VENV)/.installed: pyproject.toml requirements.lock
	@test -x $(PY) || $$(tools/find-python) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[test]'
	@touch $@

# htmx, its ws extension and KaTeX come from npm (pinned in package.json) and are
# served by Django from static/vendor: never from a CDN.
$(VENDOR)/.installed: package.json package-lock.json .npmrc
	npm ci --no-audit --no-fund --loglevel=error
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/katex
	cp node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/
	cp node_modules/htmx-ext-ws/dist/ws.min.js $(VENDOR)/htmx-ext-ws.min.js
	cp node_modules/katex/dist/katex.min.js node_modules/katex/dist/katex.min.css $(VENDOR)/katex/
	cp node_modules/katex/dist/contrib/auto-render.min.js $(VENDOR)/katex/
	cp -r node_modules/katex/dist/fonts $(VENDOR)/katex/
	cp node_modules/katex/LICENSE $(VENDOR)/katex/LICENSE
	@touch $@

# A random key kept out of git (var/ is ignored), unless SECRET_KEY(_FILE) is given.
WITH_KEY = if [ -z "$${SECRET_KEY:-}" ]; then export SECRET_KEY_FILE=$${SECRET_KEY_FILE:-var/secret_key}; fi;

var/secret_key:
	@mkdir -p var && umask 077 && $(PY) -c 'import secrets; print(secrets.token_urlsafe(50))' > $@

demo: install var/secret_key
	@$(WITH_KEY) export DEBUG=$${DEBUG:-true}; \
	$(PY) manage.py migrate --noinput && $(PY) manage.py load_demo

run: demo
	@$(WITH_KEY) export DEBUG=$${DEBUG:-true}; \
	echo "Serving Proofdesk on http://$(HOST):$(PORT)/"; \
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) proofdesk.asgi:application

# mypy checks the files listed in pyproject.toml ([tool.mypy]); its plugin loads the settings.
test: install var/secret_key
	$(VENV)/bin/ruff check .
	@$(WITH_KEY) $(VENV)/bin/mypy
	@$(WITH_KEY) $(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) node_modules $(VENDOR) var
