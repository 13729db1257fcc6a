"""Text a database cannot store is found wherever it is in a document, keys included."""

from __future__ import annotations

from crm_core.base.storable import is_storable, unstorable_fields


def test_nul_and_unpaired_surrogates_are_unstorable_and_the_rest_is_fine() -> None:
    assert is_storable("Ada Lovelace, Zürich 🚂")
    assert not is_storable("a\x00b")
    assert not is_storable("a\udc00")


def test_each_place_is_named() -> None:
    document = {
        "name": "ok",
        "tags": ["fine", "bad\x00"],
        "attributes": {"deep": {"x": "\ud800"}, "k\x00": 1},
    }
    assert [e.field for e in unstorable_fields(document)] == [
        "tags.1",
        "attributes.deep.x",
        "attributes.k\\x00",
    ]
    assert unstorable_fields({"n": 1, "b": True, "l": [None, 2.5]}) == []
