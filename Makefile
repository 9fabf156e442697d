# Two commands for a fresh clone: `make demo` (main job on the built-in phantom) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch==2.13.0 first: on machines that hold its CPU wheel this avoids a multi-GB CUDA download.
TORCH ?= torch==2.13.0

.PHONY: venv demo test lint clean bids-validator

$(BIN)/aslsr: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[test,cohort]"
	@touch $@

venv: $(BIN)/aslsr

demo: venv
	$(BIN)/aslsr demo demo_out --overwrite

# bids-validator 1.15 (Node.js) for tests/test_bids.py, in the git-ignored .tools/. Optional: without npm,
# or when the install fails, that one test says it skipped and the rest run.
VALIDATOR := .tools/bids-validator/node_modules/.bin/bids-validator
bids-validator:
	@if [ -x $(VALIDATOR) ]; then :; \
	elif command -v npm >/dev/null 2>&1; then \
		npm install --prefix .tools/bids-validator --no-audit --no-fund --loglevel=error bids-validator@1.15 \
		|| echo "bids-validator: npm install failed; its test will be skipped"; \
	else echo "bids-validator: npm not found; its test will be skipped"; fi

# ruff: lint rules and formatting (configured in pyproject.toml).
lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

test: venv bids-validator
	$(BIN)/python -m pytest tests

clean:
	rm -rf $(VENV) demo_out .tools
