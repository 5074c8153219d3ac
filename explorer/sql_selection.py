"""The SQL page's `selected` view: the rows of `runs` of the sidebar's selection, for a query that
names it (`SELECT ... FROM mi JOIN selected USING (run_id)`).

It is a common table expression put in front of the visitor's statement, the ids as SQL string
literals (quotes doubled), so the statement still goes through the sandbox's checks whole.
"""

from __future__ import annotations

import re

VIEW = "selected"
_NAMES_VIEW = re.compile(rf"(?i)\b{VIEW}\b")
_WITH = re.compile(r"(?is)^\s*with(\s+recursive)?\s")


def names_selected(query: str) -> bool:
    return bool(_NAMES_VIEW.search(query))


def with_selected(query: str, run_ids: list[str]) -> str:
    """`query` with `selected` defined in front of it (joined to its own WITH, if it has one)."""
    ids = ", ".join("'" + run_id.replace("'", "''") + "'" for run_id in run_ids)
    view = f"{VIEW} AS (SELECT * FROM runs WHERE {'run_id IN (' + ids + ')' if ids else 'false'})"
    match = _WITH.match(query)
    if match:
        return f"{match.group(0)}{view}, {query[match.end():]}"
    return f"WITH {view}\n{query}"
