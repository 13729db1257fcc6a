"""The Mermaid ER diagram, generated from the mapped tables.

Every table is an entity with all of its columns, marked PK, FK and UK. Every
foreign key is a relationship drawn from the referenced (parent) table to the
referencing (child) table, with crow's-foot cardinality read off the schema:

- parent side: ``||`` exactly one when the key is NOT NULL, ``|o`` zero or one when it is nullable;
- child side: ``o|`` zero or one when the key columns are unique, ``o{`` zero or many otherwise;
- a solid line (``--``) when the child cannot exist without the parent (NOT NULL key),
  a dotted one (``..``) when the link is optional.

Many-to-many relationships appear as their association tables (``order_lines``,
``campaign_members``, ``agreement_opportunities``), each with two relationships.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# Checked in order: Text is a String, so it comes first.
_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (Boolean, "bool"),
    (Integer, "int"),
    (Numeric, "decimal"),
    (DateTime, "datetime"),
    (Date, "date"),
    (Text, "text"),
    (String, "string"),
    (JSON, "json"),
    (LargeBinary, "bytes"),
)


def _type_name(column: Column[Any]) -> str:
    col_type = column.type
    impl = getattr(col_type, "impl", None)
    for candidate in (col_type, impl):
        for sa_type, name in _TYPE_NAMES:
            if isinstance(candidate, sa_type):
                return name
    return "string"


def _is_partial(index: Index) -> bool:
    """A partial unique index (``WHERE ...``) does not make its columns unique."""
    return any(
        index.dialect_options[dialect].get("where") is not None
        for dialect in ("postgresql", "sqlite")
    )


def _unique_sets(table: Table) -> list[frozenset[str]]:
    sets = [
        frozenset(c.name for c in constraint.columns)
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    ]
    sets += [
        frozenset(c.name for c in index.columns)
        for index in table.indexes
        if index.unique and not _is_partial(index)
    ]
    sets += [frozenset(c.name for c in table.columns if c.unique)]
    return [s for s in sets if s]


def _entity(table: Table) -> Iterator[str]:
    unique_sets = _unique_sets(table)
    fk_columns = {c.name for c in table.columns if c.foreign_keys}
    yield f"  {table.name.upper()} {{"
    for column in table.columns:
        marks = []
        if column.primary_key:
            marks.append("PK")
        if column.name in fk_columns:
            marks.append("FK")
        comment = ""
        for unique in unique_sets:
            if column.name in unique:
                marks.append("UK")
                others = sorted(unique - {column.name})
                if others:
                    comment = f' "unique with {", ".join(others)}"'
                break
        mark_text = f" {', '.join(marks)}" if marks else ""
        yield f"    {_type_name(column)} {column.name}{mark_text}{comment}"
    yield "  }"


def _relationship(table: Table, fk: ForeignKeyConstraint) -> str:
    columns = list(fk.columns)
    names = frozenset(c.name for c in columns)
    mandatory = not any(c.nullable for c in columns)
    unique = names in _unique_sets(table) or names == frozenset(c.name for c in table.primary_key)
    parent_card = "||" if mandatory else "|o"
    child_card = "o|" if unique else "o{"
    line = "--" if mandatory else ".."
    label = columns[0].info.get("erd_label", columns[0].name) if len(columns) == 1 else fk.name
    parent = fk.referred_table.name.upper()
    return f'  {parent} {parent_card}{line}{child_card} {table.name.upper()} : "{label}"'


def render_mermaid(metadata: MetaData) -> str:
    """The ``erDiagram`` of ``metadata``, in a stable order (tables, then keys, by name)."""
    tables = sorted(metadata.tables.values(), key=lambda t: t.name)
    lines = ["erDiagram"]
    for table in tables:
        foreign_keys = sorted(
            table.foreign_key_constraints, key=lambda fk: [c.name for c in fk.columns]
        )
        lines.extend(_relationship(table, fk) for fk in foreign_keys)
    for table in tables:
        lines.extend(_entity(table))
    return "\n".join(lines) + "\n"
