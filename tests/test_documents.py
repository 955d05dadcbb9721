"""Values JSON does not know are serialised the way Elasticsearch expects."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid

import pytest
from django.utils.translation import gettext_lazy
from hypothesis import given
from hypothesis import strategies as st

from reindex.definitions.documents import dumps


@pytest.mark.parametrize(
    "value, expected",
    [
        (decimal.Decimal("12.34"), 12.34),
        (datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc), "2026-01-02T03:04:05+00:00"),
        (
            datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
            "2026-01-02T03:04:05+02:00",
        ),
        (datetime.date(2026, 1, 2), "2026-01-02"),
        (uuid.UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
        (gettext_lazy("Products"), "Products"),
        ({"b", "a"}, ["a", "b"]),
        ([decimal.Decimal("1.5"), None], [1.5, None]),
    ],
)
def test_values_json_does_not_know(value, expected):
    assert json.loads(dumps({"v": value})) == {"v": expected}


@pytest.mark.parametrize("value", [object(), decimal.Decimal("NaN"), b"bytes"])
def test_values_that_cannot_be_serialised_raise_type_error(value):
    with pytest.raises(TypeError):
        dumps({"v": value})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_plain_documents_round_trip(document):
    assert json.loads(dumps(document)) == document
