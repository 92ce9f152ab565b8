# DTMF payment masker. `make run` starts the service on embedded defaults,
# `make test` runs the whole test suite (what CI runs).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
N      ?= 200
FUZZ_SECONDS ?= 60
PYTEST_ARGS ?=

.PHONY: setup system-deps run run-edge tls-certs cluster cluster-stop cluster-status cluster-test demo test test-all lint typecheck bench bench-deps bench-calls fuzz clean

setup: system-deps $(STAMP)

system-deps:
	@./scripts/install-system-deps.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

run: setup
	$(BIN)/masker serve

# Development TLS certificates (a private CA + a server certificate) in var/tls.
tls-certs:
	@./scripts/make-tls-certs.sh var/tls

# `masker serve` behind the Kamailio SIP over TLS/TCP edge (deploy/kamailio).
run-edge: setup tls-certs
	./scripts/run-edge.sh

# PostgreSQL, three `masker serve` nodes and the Kamailio dispatcher on loopback
# (scripts/cluster.sh; ports and data under var/cluster); cluster-test: its failure tests.
cluster: setup
	./scripts/cluster.sh start

cluster-stop:
	./scripts/cluster.sh stop

cluster-status:
	./scripts/cluster.sh status

cluster-test: setup
	$(BIN)/python -m pytest -m "cluster and not soak" --durations=10 tests/cluster $(PYTEST_ARGS)

demo: setup
	$(BIN)/python -m masker.demo

# Packages mypy checks (--strict, see [tool.mypy] in pyproject.toml).
MYPY_PACKAGES ?= dsp tokenizer masker

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(MYPY_PACKAGES)
	$(BIN)/python -m pytest -n 2 -m "not soak" --durations=15 $(PYTEST_ARGS)

test-all: setup
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy $(MYPY_PACKAGES)

bench: setup
	$(BIN)/python -m bench.detector
	$(BIN)/python -m bench.scrub

# rtpengine (Debian's rtpengine-daemon, userspace) is the bench's reference, not a
# test dependency: installed here when missing; where that fails the bench says so.
bench-deps:
	@command -v rtpengine >/dev/null || (command -v apt-get >/dev/null && \
		$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -q rtpengine-daemon) || \
		echo "bench-deps: rtpengine not installed; bench-calls will measure ours alone"

bench-calls: setup bench-deps
	$(BIN)/python -m bench.calls --calls $(N)

fuzz: setup
	$(BIN)/python -m fuzz --seconds $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache bench/build test-output
