"""SQL identifiers as an operator types them: quoted only when PostgreSQL needs the quotes.

For the commands the kit prints for an operator to run (an undo, a GRANT); the kit's own SQL
uses psycopg's sql.Identifier.
"""

from __future__ import annotations

import re

_SIMPLE_IDENT = re.compile(r"[a-z_][a-z0-9_]*")
# Keywords PostgreSQL does not take unquoted as a database name: pg_get_keywords() with
# catcode <> 'U' on PostgreSQL 15, plus those PostgreSQL 16 and 17 added.
_KEYWORD_LIST = """
all analyse analyze and any array as asc asymmetric authorization between bigint binary bit boolean
both case cast char character check coalesce collate collation column concurrently constraint create
cross current_catalog current_date current_role current_schema current_time current_timestamp
current_user dec decimal default deferrable desc distinct do else end except exists extract false
fetch float for foreign freeze from full grant greatest group grouping having ilike in initially
inner inout int integer intersect interval into is isnull join json json_array json_arrayagg
json_exists json_object json_objectagg json_query json_scalar json_serialize json_table json_value
lateral leading least left like limit localtime localtimestamp merge_action national natural nchar
none normalize not notnull null nullif numeric offset on only or order out outer overlaps overlay
placing position precision primary real references returning right row select session_user setof
similar smallint some substring symmetric system_user table tablesample then time timestamp to
trailing treat trim true union unique user using values varchar variadic verbose when where window
with xmlattributes xmlconcat xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi xmlroot
xmlserialize xmltable
"""
_KEYWORDS = frozenset(_KEYWORD_LIST.split())


def ident(name: str) -> str:
    """`name` as SQL: bare when it is a lower-case identifier that is not a keyword, else quoted."""
    plain = _SIMPLE_IDENT.fullmatch(name) and name not in _KEYWORDS
    return name if plain else '"' + name.replace('"', '""') + '"'
