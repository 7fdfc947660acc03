"""Shared fixtures: the real default model (loaded once), and a tiny toy model for the tests
that need vectors but do not test a model (library, store, server, faults).

Tiers: ``make test`` runs everything but ``slow``; ``make test-fast`` (``pytest --fast``)
leaves out the ``heavy`` tests too, does not even import the modules that hold nothing else
(:data:`HEAVY_MODULES`), and runs the property-based tests with fewer examples, to finish in
under a minute. A test is heavy when it loads a real model (the ``base_model`` fixture marks
it), starts Ray, a Chroma server or a browser, trains, renders, or runs CLI subprocesses; such
modules say ``pytestmark = pytest.mark.heavy``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _share_cores_between_workers() -> None:
    """Under pytest-xdist, give each worker its share of the cores (unless the caller chose).

    Two workers that each run torch on every core fight over them and are slower together than
    one; the suite must pass at any thread count anyway (docs/faults.md).
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        share = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(share)
        os.environ.setdefault("MKL_NUM_THREADS", str(share))


_share_cores_between_workers()

#: Fixtures that make a test heavy: a real model, a Chroma server, a Ray cluster, a browser.
HEAVY_FIXTURES = {
    "base_model",
    "chroma_server",
    "cluster",
    "browser",
    "server",
    "reference_st",
    "frozen_st",
}


#: Modules whose every test is heavy: ``--fast`` skips importing them (lightning, ray, ...).
HEAVY_MODULES = {
    "test_train.py",
    "test_train_descriptors.py",
    "test_ddp.py",
    "test_report.py",
    "test_fit_baseline.py",
    "test_demo.py",
    "test_mining.py",
    "test_ray_indexing.py",
    "test_ray_address.py",
    "test_serve_browser.py",
    "test_page_curate.py",
    "test_bench_million.py",
    "test_descriptor_search.py",
    # the pretrained families' parity tests import transformers (seconds) and run whole towers
    "test_clap_hf_parity.py",
    "test_clap_hf_library.py",
    "test_laion_clap_parity.py",
    "test_ttmr_pp_parity.py",
    "test_ttmr_parity.py",
    "test_muq_mulan_parity.py",
    "test_ms_clap_parity.py",
    "test_distill.py",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help="The fast tier: no heavy or slow tests (make test-fast).",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--fast"):
        config.option.markexpr = "not slow and not heavy"
        os.environ["MELODEX_TEST_TIER"] = "fast"  # property-based tests draw fewer examples


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if config.getoption("--fast") and collection_path.name in HEAVY_MODULES:
        return True
    return None


def examples(full: int) -> int:
    """How many examples a property-based test draws: ``full``, or a sixth in the fast tier."""
    return max(10, full // 6) if os.environ.get("MELODEX_TEST_TIER") == "fast" else full


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that uses a heavy fixture is heavy, whatever its module says."""
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.heavy)


@pytest.fixture(scope="session")
def base_model():
    """The built-in default model (real taggers, real text encoder)."""
    from melodex.models import load_model

    return load_model()


@pytest.fixture(scope="session")
def toy_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toy model folder (see melodex.models.toy), for `--model` in CLI subprocesses."""
    from melodex.models.toy import build_toy_model

    return build_toy_model().save(tmp_path_factory.mktemp("models") / "toy")


@pytest.fixture(scope="session")
def toy_model(toy_model_dir: Path):
    """The toy model, loaded from its folder (so it has a source, like a user's model)."""
    from melodex.models import load_model

    return load_model(toy_model_dir)


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory, toy_model):
    """A small tagged library (tests/library_fixtures.py) indexed with the toy model."""
    from tests.library_fixtures import tagged_library

    return tagged_library(tmp_path_factory, toy_model)
