# The two commands of the README: `make demo` and `make test`. Both create .venv on first use.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint fmt bench bench-simulate eval crash fuzz clean

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=23,<27"
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/shiftd demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The suite on 4 pytest-xdist workers (how they are scheduled: tests/conftest.py; the README's
# Development section says why 4). pytest exits 5 when no test ran: never green on nothing.
# The OpenAPI conformance test is one pytest item per operation, all under one node id,
# which xdist's scheduling takes for a single test (it would run one operation of ~20): it
# runs in a pytest of its own, after the parallel run.
CONFORMANCE := tests/process/test_openapi_conformance.py
test: lint
	$(BIN)/pytest -q -n 4 --ignore=$(CONFORMANCE)
	$(BIN)/pytest -q $(CONFORMANCE)

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# How the reply classifier reads the labelled corpus: recall per label and language.
eval: $(STAMP)
	$(BIN)/python -m shiftd.inbound.intent_eval

# The long fuzz runs: >= 100,000 control lines and >= 10,000 HTTP requests against a running
# daemon (tests/process/test_control_fuzz.py, tests/process/test_openapi_conformance.py); prints the counts.
fuzz: $(STAMP)
	SHIFTD_FUZZ=long $(BIN)/pytest -q -s tests/process/test_control_fuzz.py tests/process/test_openapi_conformance.py

bench: $(STAMP)
	$(BIN)/python -m bench

bench-simulate: $(STAMP)
	$(BIN)/python -m bench.simulate

# The long crash run: `make crash KILLS=500 [SEED=n]` (the suite runs a short one).
# `make crash INSTANCES=3 KILLS=200`: a cluster on a fresh PostgreSQL database, its
# instances killed and paused (KILLS counts both).
KILLS ?= 500
crash: $(STAMP)
	$(BIN)/python -m shiftd.testing.crashloop --kills $(KILLS) $(if $(SEED),--seed $(SEED)) \
	    $(if $(INSTANCES),--instances $(INSTANCES))

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# ---- install as a service -------------------------------------------------------------
# `sudo make install` (PREFIX=/opt/shiftd): a venv at PREFIX with shiftd and its pinned
# dependencies, the `shiftd` system user, /var/lib/shiftd, /etc/shiftd/shiftd.yaml (never
# overwritten) and the systemd unit. DESTDIR stages everything under another root (no user,
# no chown, no systemctl): what packagers and tests/process/test_install.py use. PIP_FLAGS go to the
# venv's pip (the test passes --no-index --no-deps: no network).
PREFIX ?= /opt/shiftd
DESTDIR ?=
PIP_FLAGS ?=
UNITDIR ?= /etc/systemd/system
WHEELS := build/wheels

install: install-venv install-files

# The venv has no pip of its own: this checkout's pip installs into it (`make install`
# again upgrades it).
install-venv: $(STAMP)
	rm -rf $(WHEELS)
	$(BIN)/pip wheel --quiet --no-deps --no-build-isolation --wheel-dir $(WHEELS) .
	test -x $(DESTDIR)$(PREFIX)/bin/python || $(PY) -m venv --without-pip $(DESTDIR)$(PREFIX)
	$(BIN)/pip --python $(DESTDIR)$(PREFIX)/bin/python install --quiet --force-reinstall \
	    $(PIP_FLAGS) -c constraints.txt $(WHEELS)/shiftd-*.whl

install-files:
	install -d -m 0755 $(DESTDIR)/etc/shiftd $(DESTDIR)$(UNITDIR) $(DESTDIR)/usr/local/bin
	install -d -m 0750 $(DESTDIR)/var/lib/shiftd
	test -e $(DESTDIR)/etc/shiftd/shiftd.yaml || sed \
	    -e 's|^state_dir: .*|state_dir: /var/lib/shiftd|' \
	    -e 's|^control_socket: .*|control_socket: /run/shiftd/control.sock|' \
	    config/shiftd.yaml > $(DESTDIR)/etc/shiftd/shiftd.yaml
	chmod 0640 $(DESTDIR)/etc/shiftd/shiftd.yaml
	sed -e 's|/opt/shiftd/|$(PREFIX)/|g' systemd/shiftd.service > $(DESTDIR)$(UNITDIR)/shiftd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/shiftd.service
	ln -sfn $(PREFIX)/bin/shiftctl $(DESTDIR)/usr/local/bin/shiftctl
	if [ -z "$(DESTDIR)" ]; then \
	    id -u shiftd >/dev/null 2>&1 || useradd --system --home-dir /var/lib/shiftd \
	        --shell /usr/sbin/nologin shiftd; \
	    chown shiftd:shiftd /var/lib/shiftd; chgrp shiftd /etc/shiftd/shiftd.yaml; \
	    ! command -v systemctl >/dev/null || systemctl daemon-reload; \
	fi
