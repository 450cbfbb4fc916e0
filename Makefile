# The two commands of the README: `make demo` and `make test`. Both create .venv on first use.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint fmt bench bench-simulate eval clean

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

test: lint
	$(BIN)/pytest -q

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# How the reply classifier reads the labelled corpus: recall per label and language.
eval: $(STAMP)
	$(BIN)/python -m shiftd.intent_eval

bench: $(STAMP)
	$(BIN)/python -m bench

bench-simulate: $(STAMP)
	$(BIN)/python -m bench.simulate

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
