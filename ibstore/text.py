"""Text from a results root or a query, made safe for a terminal: the one escaping function.

Run folder names, records, lock files, Parquet values and DuckDB's messages quoting them can
hold anything another user wrote. Printed raw, ESC sequences retitle or clear the terminal
(`ESC]0;...BEL`, `ESC[2J`), a carriage return or newline prints fake lines, bidi controls
(U+202A..U+202E, U+2066..U+2069) reorder what is shown, and zero-width and Unicode tag
characters (U+E0000..U+E007F) hide text. Every string that reaches a terminal goes through
`terminal_text`.
"""

from __future__ import annotations

MAX_SHOWN_CHARS = 100   # of one value a link gave (a 10,000-character reference was echoed whole)


def terminal_text(text: str) -> str:
    """`text` with every character Python does not call printable written as its escape
    (e.g. "\\x1b", "\\n", "\\u202e", "\\U000e0041"): C0 and C1 controls, DEL, line and paragraph
    separators, format characters (bidi controls, zero-width characters, tag characters), spaces
    other than " ", lone surrogates and unassigned code points. Printable text is unchanged,
    and the result is printable, so escaping twice changes nothing more."""
    if text.isprintable():
        return text
    # repr writes exactly the characters it does not call printable as escapes
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def cut(text: str, chars: int = MAX_SHOWN_CHARS) -> str:
    """`text` to `chars` characters, saying how long it was.

    >>> cut("abcdef", 3)
    'abc… (6 characters)'
    """
    return text if len(text) <= chars else f"{text[:chars]}… ({len(text):,} characters)"
