"""A range is loaded with the heap before it frozen and fewer young collections; the collector is left as found."""

from __future__ import annotations

import gc

import pytest

from reindex.executors.local import YOUNG_THRESHOLD, frozen_heap


def test_a_range_collects_less_often_and_leaves_the_collector_as_it_found_it():
    before = gc.get_threshold()

    with frozen_heap():
        during, frozen = gc.get_threshold(), gc.get_freeze_count()

    assert during == (max(before[0], YOUNG_THRESHOLD), *before[1:])
    assert frozen > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_the_thresholds_come_back_when_the_range_fails():
    before = gc.get_threshold()

    with pytest.raises(RuntimeError), frozen_heap():
        raise RuntimeError("the range failed")

    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
