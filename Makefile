# Two commands for a fresh clone: `make demo` (main job on the built-in phantom) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch==2.13.0 first: on machines that hold its CPU wheel this avoids a multi-GB CUDA download.
TORCH ?= torch==2.13.0

.PHONY: venv demo test clean

$(BIN)/aslsr: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[test,cohort]"
	@touch $@

venv: $(BIN)/aslsr

demo: venv
	$(BIN)/aslsr demo demo_out --overwrite

test: venv
	$(BIN)/python -m pytest tests

clean:
	rm -rf $(VENV) demo_out
