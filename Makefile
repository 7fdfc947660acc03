# The README's two commands: `make demo` (set up, then index and search a rendered music set)
# and `make test` (set up, then run the test suite). Both are safe to run again.
.PHONY: setup demo test test-fast lint bench results

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/melodex demo

# Everything but the `slow` tests (CI runs this): about 14 min on 2 cores (one process: its order
# is the one CI has always run; under `-n 2` it took as long).
test: setup
	.venv/bin/python -m pytest -q

# The fast tier for your own loop: no real model, Ray, Chroma, browser or training, on both
# cores (70-95 s on 2 cores, of which ~20 s is importing torch, LanceDB and the rest).
test-fast: setup
	.venv/bin/python -m pytest -q -x --fast -n 2

lint: setup
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/lint-imports

bench: setup
	.venv/bin/python bench/bench_indexing.py
	.venv/bin/python bench/bench_search.py --dim 92
	.venv/bin/python bench/bench_ray.py
	.venv/bin/python bench/bench_training.py
	.venv/bin/python bench/bench_serve.py --tracks 10000 --concurrency 1 --seconds 15

# Every number in docs/results.md: demo corpus, the seeds' ablations, baselines, evaluation.
results: setup
	.venv/bin/python scripts/run_ablations.py
