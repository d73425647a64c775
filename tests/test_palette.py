"""Generated colours and dashes stay distinct however many series there are."""

import pytest

from costmodel import palette
from costmodel.model import BREAKDOWN, POLICIES


@pytest.mark.parametrize("n", [0, 1, len(POLICIES), len(BREAKDOWN), 11, 40, 200])
def test_colors_are_distinct_and_valid(n):
    got = palette.colors(n)
    assert len(got) == n and len(set(got)) == n
    assert all(len(c) == 7 and c.startswith("#") and int(c[1:], 16) >= 0 for c in got)


def test_the_first_colours_are_the_fixed_set():
    assert palette.colors(len(POLICIES) + 1)[:len(palette.BASE)] == list(palette.BASE[:len(POLICIES) + 1])


@pytest.mark.parametrize("n", [1, len(POLICIES), 9, 30])
def test_dashes_are_distinct(n):
    got = [tuple(d) for d in palette.dashes(n)]
    assert len(set(got)) == n
