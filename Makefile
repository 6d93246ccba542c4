# Sergeant — every target installs what it needs by itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
BENCH_INSTALLED := $(VENV)/.installed-bench

.PHONY: run test coverage reliability-figures bench soak lint tools images install clean docs docs-serve

$(INSTALLED): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[dev]'
	touch $@

# the benchmarks also draw plots (matplotlib); remade whenever $(INSTALLED) is
$(BENCH_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[dev,bench]'
	touch $@

install: $(INSTALLED)

run: install
	$(BIN)/python examples/demo.py

tools:
	bash scripts/build-tools.sh

# sergeant-worker and sergeant-operator with podman (installed if missing); see scripts/images.sh
images:
	bash scripts/images.sh

# the suite measures branch coverage across every Python process it starts ([tool.coverage] in
# pyproject.toml) and fails below this floor: the level measured when it was introduced, rounded down
COVERAGE_FLOOR ?= 94
test: install tools lint
	bash scripts/ensure-redis.sh
	bash scripts/ensure-prometheus.sh
	rm -f .coverage .coverage.*
	$(BIN)/pytest --durations=15 --cov --cov-report=term:skip-covered --cov-fail-under=$(COVERAGE_FLOOR)

# the same measure as `make test` for a list of suites only (make coverage SUITES=tests/worker), without the floor
SUITES ?= tests/worker tests/supervisor tests/connector tests/metrics
coverage: install tools
	bash scripts/ensure-redis.sh
	rm -f .coverage .coverage.*
	$(BIN)/pytest --cov --cov-report=term:skip-covered $(SUITES)

# the fault suite (about 7 minutes), then the figures each test recorded as a Markdown table:
# pytest's report goes to stderr, the table to stdout (make -s reliability-figures > figures.md);
# exits with pytest's status, after the table
reliability-figures: install
	bash scripts/build-tools.sh >&2
	bash scripts/ensure-redis.sh >&2
	@junit=$$(mktemp -t reliability-XXXXXX) || exit; trap 'rm -f "$$junit"' EXIT; \
	$(BIN)/pytest tests/reliability --junitxml="$$junit" -o junit_family=xunit1 >&2; status=$$?; \
	$(BIN)/python -m tests.reliability.figures "$$junit"; exit $$status

bench: $(BENCH_INSTALLED)
	bash scripts/ensure-redis.sh
	$(BIN)/python benchmark/run.py

soak: $(BENCH_INSTALLED)
	bash scripts/ensure-redis.sh
	$(BIN)/python benchmark/soak.py

# style, types, the layers (pyproject's [tool.importlinter]) and dead code (scripts/vulture_whitelist.py
# lists the public API only users call)
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/vulture sergeant operator/sergeant_operator scripts/vulture_whitelist.py --min-confidence 60

# the documentation site (mkdocs.yml): --strict makes a broken link or reference an error; the CLI,
# metrics, CRD and Helm values pages are generated from the code at build time (docs/hooks.py).
# `make test` builds it too (tests/docs/test_site.py).
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

docs-serve: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict

clean:
	rm -rf site $(VENV) .tools .cache .pytest_cache .mypy_cache .ruff_cache
