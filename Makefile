# The README's two commands: `make demo` (set up, then index and search a rendered music set)
# and `make test` (set up, then run the test suite). Both are safe to run again.
.PHONY: setup demo test test-serial test-fast lint bench results

# pytest may cache its assertion-rewritten test modules and Python its bytecode even where the
# environment sets PYTHONDONTWRITEBYTECODE: otherwise every run re-parses ~100 test modules and
# every CLI subprocess recompiles melodex (4 s per worker, measured with --collect-only).
PYTEST = env -u PYTHONDONTWRITEBYTECODE .venv/bin/python -m pytest

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/melodex demo

# Everything but the `slow` tests (CI runs this), on both cores: two pytest-xdist workers, each
# given whole modules (`--dist loadfile`: a module's fixtures, such as a Ray cluster or a trained
# corpus, are built once, not once per worker) and one torch thread. 6:26 on a quiet 2-core
# AMD EPYC (7:00-7:40 before the bytecode cache of PYTEST above); 2:55-2:59 on a quiet 2-core
# Intel Xeon with AVX-512.
test: setup
	$(PYTEST) -q -n 2 --dist loadfile

# The same tests in one process with torch's own thread count (about 14 min on the 2-core AMD
# EPYC, 4:35 on the Xeon): the suite passes at any thread count, and this is the order it ran
# in before `make test` split it.
test-serial: setup
	$(PYTEST) -q

# The fast tier for your own loop: no real model, Ray, Chroma, browser or training, on both
# cores, whole modules per worker (49-52 s on a quiet 2-core AMD EPYC, 54-56 s beside a paused
# training job; ~6 s of it is starting
# the workers and collecting and ~4 s their exit). The schemathesis plugin only serves a heavy
# test, so it is not loaded here.
test-fast: setup
	$(PYTEST) -q -x --fast -n 2 --dist loadfile -p no:schemathesis

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
