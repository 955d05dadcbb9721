"""The admin's sparkline: the values left to right, the largest at the top, the smallest on the floor."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reindex.admin.sparkline import points, sparkline


def test_the_points_of_a_few_values():
    assert points([0, 5, 10], width=100, height=20) == "0.0,20.0 50.0,10.0 100.0,0.0"


def test_one_value_and_none():
    assert points([3], width=100, height=20) == "0.0,0.0"
    assert points([], width=100, height=20) == ""


@given(st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=48))
def test_every_point_stays_inside_the_box(values):
    pairs = [tuple(map(float, p.split(","))) for p in points(values, width=240, height=36).split()]
    assert len(pairs) == len(values)
    assert all(0 <= x <= 240 and 0 <= y <= 36 for x, y in pairs)
    assert [x for x, _ in pairs] == sorted(x for x, _ in pairs)


def test_the_title_is_escaped():
    assert "<title>a &lt;b&gt;</title>" in sparkline([1, 2], title="a <b>")
