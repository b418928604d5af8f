# Two commands for a newcomer: `make run` and `make test`. Both create .venv on first use and are quick after.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8501

.PHONY: run test test-fast bench browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# A stamp per requirements set: reinstall only when the pinned file changes.
$(VENV)/.run: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.test: requirements.txt requirements-test.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-test.txt
	touch $@

$(VENV)/.bench: requirements.txt requirements-bench.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-bench.txt
	touch $@

# One BLAS thread: numpy's stacked QR for the Lyapunov spectrum is several times slower with OpenBLAS's default
# threads (gradlab/lyapunov.py's docstring). Training is not faster with one: 13.2 s vs 12.4 s with two
# (benchmarks/results/train.md).
run: $(VENV)/.run
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/python -m streamlit run dashboard.py --server.port $(PORT)

# The browser tests and static export need a Chromium: Debian's package, installed when we are root and it is
# missing. Elsewhere the tests that need it skip and say why.
browser:
	@if command -v chromium >/dev/null 2>&1 || [ -n "$$BROWSER_PATH" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser tests..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-open-sans >/dev/null; \
	else echo "no chromium and no root: browser tests will be skipped (apt-get install chromium)"; fi

test: $(VENV)/.test browser
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q

# The edit loop: everything but the tests marked slow (training over seeds, the browser).
test-fast: $(VENV)/.test
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -m "not slow"

bench: $(VENV)/.bench
	$(BIN)/python benchmarks/bench_engine.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
