# gengate: `make run` starts the gateway with a demo job; `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install run test fuzz bench lint clean claude-cli

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

## the Claude Code CLI for its end-to-end test, into .node/ (Node and npm from apt where
## missing and this runs as root); the test skips loudly without it, fails under CI=true
claude-cli:
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && { apt-get update -q >/dev/null; apt-get install -y -q nodejs npm >/dev/null; }; } || true
	@test -x .node/node_modules/.bin/claude || { command -v npm >/dev/null \
	  && npm install --prefix .node --no-audit --no-fund --silent @anthropic-ai/claude-code; } \
	  || echo "Claude Code CLI not installed: its test will skip"

## the whole test suite (PostgreSQL/Redis tests skip loudly when absent, fail under CI=true);
## the browser test needs Debian's chromium, installed here when missing (as root)
test: install claude-cli
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && { apt-get update -q >/dev/null; apt-get install -y -q chromium >/dev/null; }; } \
	  || echo "chromium is missing (apt-get install chromium): the browser test will skip"
	$(BIN)/python -m pytest -q --durations=15

## a longer property-based run of every operation in /openapi.json (schemathesis) against a
## real server: no 5xx, no answer the document does not allow (make test runs a short one)
FUZZ_EXAMPLES ?= 100
fuzz: install
	GENGATE_TEST_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:timeout \
	  tests/acceptance/test_fuzz.py

## throughput benchmarks against anchors measured in the same run (a bare ASGI app; the fake
## LLM upstream answered directly; LiteLLM, installed into .bench-venv-litellm; local disk
## for result copies to the object store); the cost of the largest accepted inputs (/healthz
## latency, peak memory) against the idle server; the hot paths with 10k, 100k and 1M jobs
## stored (FILLED_JOBS sets the largest size); 10,000 jobs in flight on one worker
## (INFLIGHT_JOBS); a video's render time, and Sora's submit and fetch next to the bare app
## while the same process renders two videos
bench: install
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && { apt-get update -q >/dev/null; apt-get install -y -q wrk >/dev/null; }; } \
	  || { echo "wrk is needed: apt-get install wrk"; exit 1; }
	$(BIN)/python bench/run.py
	$(BIN)/python bench/keys.py --seconds 5 --rounds 4
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/llm.py
	$(BIN)/python bench/storage.py
	$(BIN)/python bench/hostile.py
	$(BIN)/python bench/sync.py
	$(BIN)/python bench/wal.py --seconds $${WAL_SECONDS:-600}
	$(BIN)/python bench/video.py
	$(BIN)/python bench/filled.py --jobs $${FILLED_JOBS:-1000000}
	$(BIN)/python bench/inflight.py --jobs $${INFLIGHT_JOBS:-10000}

## ruff, then mypy (strict, pydantic plugin; files and settings in pyproject.toml)
lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache
