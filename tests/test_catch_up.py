"""A rebuild that loses no write: what the site writes while the load runs is in the new index when it goes live."""

from __future__ import annotations

import json

import reindex
from reindex.server.watermarks import read_watermark
from tests.helpers import live_index, stored


def test_rows_written_during_the_load_are_right_in_the_new_index(catalog, es_url, es, settings):
    from tests.definitions import MeddledProductIndex

    settings.REINDEX = {**settings.REINDEX, "HOSTS": [es_url]}
    catalog(products=40)
    definition = MeddledProductIndex()

    [result] = reindex.rebuild(definition)

    meddled = definition.meddled
    assert stored(es, "products", meddled["edited"])["name"] == "Edited during the load"  # its batch was read first
    assert stored(es, "products", meddled["withdrawn"]) is None
    assert stored(es, "products", meddled["deleted"]) is None  # deleted outright: the sweep before the swap
    assert stored(es, "products", meddled["added"])["name"] == "Added during the load"
    report = result.as_dict()["caught_up"]
    assert report["deleted"] == 1  # the withdrawn product: a change, which a delta reads
    assert report["swept"] == 1  # the product deleted outright: no change to read, the sweep after the deltas
    assert report["after_swap"]["swept"] == 0
    assert report["rounds"] >= 1 and report["indexed"] >= 2
    assert result.watermark is not None and read_watermark(es, "products").index == result.new_index
    [check] = reindex.verify("products", full=True)
    assert check.agrees, check.as_dict()


def test_a_definition_that_tracks_no_changes_is_rebuilt_as_before(catalog, reindex, es, settings):
    settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.TinyIndex"]}
    catalog(products=5)

    [report] = json.loads(reindex("rebuild", "tiny", "--json").stdout)

    assert (report["caught_up"], report["watermark"]) == (None, None)
    assert read_watermark(es, "tiny") is None
    assert live_index(es, "tiny") == report["new_index"]
