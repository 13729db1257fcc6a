"""The ER diagram covers the seed and the data-model page shows the current one."""

from __future__ import annotations

import re
from pathlib import Path

from crm_core.erd import render_mermaid
from crm_core.models import metadata

DATA_MODEL_PAGE = Path(__file__).resolve().parents[2] / "docs" / "data-model.md"
SEED_ENTITIES = (
    "CUSTOMERS",
    "CONTACTS",
    "OPPORTUNITIES",
    "AGREEMENTS",
    "ORDERS",
    "ORDER_LINES",
    "PRODUCTS",
    "ACTIVITIES",
    "SUPPORT_CASES",
    "MARKETING_CAMPAIGNS",
    "CAMPAIGN_MEMBERS",
)
# The seed's relationships, with the cardinality the schema gives them.
SEED_RELATIONSHIPS = (
    'CUSTOMERS ||--o{ CONTACTS : "has"',
    'CUSTOMERS ||--o{ OPPORTUNITIES : "belongs_to"',
    'CUSTOMERS ||--o{ AGREEMENTS : "opens"',
    'OPPORTUNITIES |o..o| AGREEMENTS : "signed_as"',
    'AGREEMENTS ||--o{ AGREEMENT_OPPORTUNITIES : "covers"',
    'OPPORTUNITIES ||--o{ AGREEMENT_OPPORTUNITIES : "results_in"',
    'ORDERS ||--o{ ORDER_LINES : "lists"',
    'PRODUCTS ||--o{ ORDER_LINES : "ordered_in"',
    'CUSTOMERS ||--o{ ORDERS : "places"',
    'MARKETING_CAMPAIGNS ||--o{ CAMPAIGN_MEMBERS : "targets"',
    'CUSTOMERS ||--o{ CAMPAIGN_MEMBERS : "targeted_by"',
    'CUSTOMERS |o..o{ ACTIVITIES : "timeline"',
    'SUPPORT_CASES |o..o{ ACTIVITIES : "thread"',
    'CUSTOMERS ||--o{ SUPPORT_CASES : "reports"',
)


def test_every_seed_entity_is_drawn_with_its_keys() -> None:
    diagram = render_mermaid(metadata)
    for entity in SEED_ENTITIES:
        assert re.search(rf"^  {entity} {{$", diagram, re.MULTILINE), entity
    assert "    int customer_id FK\n" in diagram
    assert "    string email_normalized UK\n" in diagram
    assert '    string external_id UK "unique with source_id"\n' in diagram
    assert "    int campaign_id PK, FK\n" in diagram


def test_every_seed_relationship_has_its_cardinality() -> None:
    lines = set(render_mermaid(metadata).splitlines())
    for relationship in SEED_RELATIONSHIPS:
        assert f"  {relationship}" in lines, relationship


def test_every_foreign_key_is_a_relationship() -> None:
    diagram = render_mermaid(metadata)
    relationships = [line for line in diagram.splitlines() if " : " in line]
    foreign_keys = sum(len(t.foreign_key_constraints) for t in metadata.tables.values())
    assert len(relationships) == foreign_keys


def test_the_diagram_is_stable() -> None:
    assert render_mermaid(metadata) == render_mermaid(metadata)


def test_the_data_model_page_shows_the_current_diagram() -> None:
    text = DATA_MODEL_PAGE.read_text(encoding="utf-8")
    match = re.search(r"<!-- erd:start -->\n```mermaid\n(.*?)```\n<!-- erd:end -->", text, re.S)
    assert match, "docs/data-model.md has no <!-- erd:start --> mermaid block"
    assert match.group(1) == render_mermaid(metadata), (
        "docs/data-model.md's ER diagram is stale: run `make docs-erd`"
    )
