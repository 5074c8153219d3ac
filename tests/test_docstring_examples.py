"""Every docstring example in the product runs, and says what it shows (doctest)."""

import doctest
import importlib

import pytest

# the modules whose docstrings carry `>>>` examples
MODULES = ["explorer.charts", "explorer.charts_training", "explorer.cohort_tables", "explorer.configdiff",
           "explorer.report", "explorer.run_filter", "explorer.run_rows", "explorer.seed_bands", "explorer.ui",
           "ibstore.configdiff", "ibstore.flatten", "ibstore.index_pending", "ibstore.statement_check", "ibstore.stats",
           "ibstore.temporal_text", "ibstore.text", "ibstore.trend", "ibstore.views", "trainer.config.raw",
           "trainer.split_facts"]


@pytest.mark.parametrize("name", MODULES)
def test_the_docstring_examples_hold(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0


def test_every_module_with_an_example_is_listed():
    from pathlib import Path

    root = Path(__file__).parents[1]
    with_examples = {".".join(path.relative_to(root).with_suffix("").parts)
                     for package in ("trainer", "ibstore", "explorer") for path in (root / package).rglob("*.py")
                     if ">>> " in path.read_text()}
    assert with_examples == set(MODULES)
