# gengate: `make run` starts the gateway with a demo job; `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install run test bench lint clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

## start gengate on SQLite + the local provider, create a demo user, show a job end to end
run: install
	GENGATE_LOCAL_DELAY=$${GENGATE_LOCAL_DELAY:-4} $(BIN)/gengate serve --demo

## the whole test suite (PostgreSQL/Redis tests skip loudly when absent, fail under CI=true);
## the browser test needs Debian's chromium, installed here when missing (as root)
test: install
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && { apt-get update -q >/dev/null; apt-get install -y -q chromium >/dev/null; }; } \
	  || echo "chromium is missing (apt-get install chromium): the browser test will skip"
	$(BIN)/python -m pytest -q

## throughput benchmarks against anchors measured in the same run (a bare ASGI app; the fake
## LLM upstream answered directly; LiteLLM, installed into .bench-venv-litellm)
bench: install
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && { apt-get update -q >/dev/null; apt-get install -y -q wrk >/dev/null; }; } \
	  || { echo "wrk is needed: apt-get install wrk"; exit 1; }
	$(BIN)/python bench/run.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/llm.py
	$(BIN)/python bench/video.py

## ruff, then mypy (strict, pydantic plugin; files and settings in pyproject.toml)
lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache
