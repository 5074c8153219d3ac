"""The width of the app's main column in pixels, as the browser lays it out.

Streamlit tells a script nothing about the window, so a small `st.components.v2` component
(no HTML, a few lines of JavaScript) measures the element it is mounted in with a
ResizeObserver and reports the width as its state; a change of more than `STEP` pixels reruns
the page. Until the browser has reported (the first run of a session, AppTest), the width is
`charts.PAGE_WIDTH`, the main column at 1280 px with the sidebar open.
"""

from __future__ import annotations

import streamlit as st

from explorer import charts

STEP = 40   # px: smaller changes (a scroll bar appearing) do not redraw the page
KEY = "main_width"

_JS = f"""
export default function(component) {{
    const {{ setStateValue, parentElement }} = component;
    const host = parentElement.host ?? parentElement;   // the shadow root's element
    let reported = 0;
    const report = () => {{
        const width = Math.round(host.getBoundingClientRect().width);
        if (width > 0 && Math.abs(width - reported) >= {STEP}) {{
            reported = width;
            setStateValue("width", width);
        }}
    }};
    const observer = new ResizeObserver(report);
    observer.observe(host);
    report();
    return () => observer.disconnect();
}}
"""

_measure = st.components.v2.component("ib_lab_main_width", js=_JS)


def main_width() -> int:
    """The main column's width (px), measured by the browser; PAGE_WIDTH until it has reported."""
    result = _measure(key=KEY, default={"width": None}, on_width_change=lambda: None, height=1)
    width = getattr(result, "width", None)
    return int(width) if isinstance(width, (int, float)) and width > 0 else charts.PAGE_WIDTH
