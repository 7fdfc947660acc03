# The README's two commands: `make demo` (set up, then index and search a rendered music set)
# and `make test` (set up, then run the test suite). Both are safe to run again.
.PHONY: setup demo test lint bench

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/melodex demo

test: setup
	.venv/bin/python -m pytest -q

lint: setup
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

bench: setup
	.venv/bin/python bench/bench_indexing.py
