"""The README's usage example and the modules' docstring examples run as doctests."""

import doctest
from pathlib import Path

import pytest

import moe_zoo.streams
import moe_zoo.streams.metrics
import moe_zoo.streams.model

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_usage_example_runs():
    result = doctest.testfile(str(README), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5 and result.failed == 0


@pytest.mark.parametrize("module", [moe_zoo.streams, moe_zoo.streams.metrics, moe_zoo.streams.model],
                         ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    result = doctest.testmod(module)
    assert result.attempted >= 1 and result.failed == 0
