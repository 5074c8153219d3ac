"""The SQL page's `selected` view: the rows of `runs` of the sidebar's selection, for a query that
names it (`SELECT ... FROM mi JOIN selected USING (run_id)`).

It is a common table expression put in front of the visitor's statement, the ids in one SQL string
literal (quotes doubled) split on "/", which no run id holds (each is a folder's name), so the
statement still goes through the sandbox's checks whole, and 20,000 selected runs are not 40,000
tokens of literals for the check to parse (ibstore.statement_check.MAX_STATEMENT_TOKENS). It goes
on the statement's first line, after its leading comments, so DuckDB's line numbers stay the
visitor's; for DESCRIBE, SHOW, SUMMARIZE and EXPLAIN, after the keyword (DuckDB refuses a CTE in front
of them), with a bare view name made a query (`DESCRIBE selected`, `SHOW selected`).
"""

from __future__ import annotations

import re

VIEW = "selected"
SEPARATOR = "/"
_NAMES_VIEW = re.compile(rf"(?i)\b{VIEW}\b")
_WITH = re.compile(r"(?is)^\s*with(\s+recursive)?\s")
# leading whitespace and comments, then a keyword that takes a query or a name after it
_LEAD = re.compile(r"(?is)^((?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*)((?:explain(?:\s+analyze)?|describe|show|summarize)\s+)?")
_NAME = re.compile(r"(?s)\s*(\w+)\s*;?\s*")


def names_selected(query: str) -> bool:
    return bool(_NAMES_VIEW.search(query))


def with_selected(query: str, run_ids: list[str]) -> str:
    """`query` with `selected` defined in front of it (joined to its own WITH, if it has one)."""
    ids = "'" + "/".join(run_ids).replace("'", "''") + "'"
    view = (f"{VIEW} AS (SELECT * FROM runs WHERE "
            f"{f'run_id IN (SELECT unnest(string_split({ids}, {SEPARATOR!r})))' if run_ids else 'false'})")
    lead = _LEAD.match(query)
    comments, keyword, body = lead.group(1), lead.group(2) or "", query[lead.end():]
    if keyword and (name := _NAME.fullmatch(body)):
        body = f"SELECT * FROM {name.group(1)}"
    match = _WITH.match(body)
    if match:
        return f"{comments}{keyword}{match.group(0)}{view}, {body[match.end():]}"
    return f"{comments}{keyword}WITH {view} {body}"
