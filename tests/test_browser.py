"""End to end: serve the explorer on 127.0.0.1 and open every page in headless Debian chromium.

On a 10-run cohort shaped like the seed notebook's (8000 epochs, 300 logged, one run diverged and
named with hostile Markdown): every page at 1280 and 1920 px has no horizontal overflow and every
chart inside the page (measured in the DOM), nothing loads from a run name, and the Compare grid
downloads as PNG. Screenshots of every page go to tests/artifacts/; the time each page takes to
draw and the PNG export time go to tests/artifacts/timings.json (reported, not asserted).
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench.make_results import write_run
from ibstore import layout

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tests" / "artifacts"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
EVIL = "![x](http://evil.invalid/x.png) <img src=http://evil.invalid/y.png> **bold** :red[red] :smile: $x^2$"
# page (its URL path), the charts it draws for the 10 selected runs
PAGES = {"runs": 0, "compare": 1, "config": 0, "training": 1, "gradients": 10, "activations": 3, "movie": 1,
         "sql": 0}
WIDTHS = (1280, 1920)

pytestmark = pytest.mark.slow
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def notebook_root(tmp_path_factory) -> Path:
    """relu, initial_bias in 5 values x 2 seeds (the -1 runs dead), 8000 epochs with 300 logged;
    one run diverged, its name and activation_fn hostile Markdown/HTML."""
    root = tmp_path_factory.mktemp("notebook")
    ids = [write_run(root, "relu-bias", {"activation_fn": "relu", "initial_bias": bias, "epochs": 8000},
                     seed=seed, cohort="initial_bias", logged=300, status="diverged" if bias == 1.0 and seed else "completed")
           for bias in (-1.0, 0.0, 0.2, 0.5, 1.0) for seed in (0, 1)]
    path = layout.run_json_path(root, ids[-1])
    record = json.loads(path.read_text())
    record["config"]["activation_fn"] = EVIL       # a varying key: in every title of this run
    path.write_text(json.dumps({**record, "name": EVIL}))
    return root


@pytest.fixture(scope="module")
def served_app(notebook_root):
    port = free_port()
    env = {**os.environ, "IB_RESULTS": str(notebook_root)}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "explorer" / "app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
            break
        except OSError:
            if server.poll() is not None:
                pytest.fail(f"streamlit exited: {server.stdout.read().decode()}")
            time.sleep(0.5)
    else:
        pytest.fail("streamlit did not start within 60 s")
    yield url
    server.terminate()
    server.wait(timeout=10)


# the page's horizontal extent, and every chart's drawing (canvas or svg) against the viewport
# and against the main column it sits in
MEASURE = """() => {
    const main = document.querySelector('[data-testid="stMain"]').getBoundingClientRect();
    const charts = [...document.querySelectorAll('[data-testid="stVegaLiteChart"] canvas, '
                                             + '[data-testid="stVegaLiteChart"] svg.marks')];
    return {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
            mainRight: main.right,
            charts: charts.map(c => { const r = c.getBoundingClientRect(); return {left: r.left, right: r.right}; })};
}"""


def wait_until_drawn(page, charts: int) -> None:
    """Until the script run is over and `charts` charts have drawn."""
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=120_000)   # a loaded 2-core machine
    if charts:
        page.wait_for_function(
            """n => document.querySelectorAll('[data-testid="stVegaLiteChart"] canvas, '
                                               + '[data-testid="stVegaLiteChart"] svg.marks').length >= n""",
            arg=charts, timeout=60_000)
    page.wait_for_function("""() => !document.querySelector('[data-testid="stStatusWidget"]')""", timeout=60_000)


def screenshot(page, path: Path) -> None:
    """The whole page at 1280 px: the main column scrolls inside the window, so the window is made
    as tall as the column for the picture."""
    height = page.evaluate("""() => document.querySelector('[data-testid="stMainBlockContainer"]').scrollHeight""")
    page.set_viewport_size({"width": WIDTHS[0], "height": min(max(int(height) + 150, 1000), 8000)})
    page.wait_for_timeout(200)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": WIDTHS[0], "height": 1000})


def test_every_page_fits_1280_and_1920_and_the_grid_exports_as_png(served_app):
    ARTIFACTS.mkdir(exist_ok=True)
    timings: dict[str, float] = {}
    external = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": WIDTHS[0], "height": 1000})
        page.on("request", lambda request: external.append(request.url)
                if not request.url.startswith(served_app) and not request.url.startswith("data:") else None)
        page.goto(served_app, wait_until="networkidle")
        wait_until_drawn(page, 0)
        for name, charts in PAGES.items():
            page.set_viewport_size({"width": WIDTHS[0], "height": 1000})
            started = time.perf_counter()
            page.get_by_role("link", name={"runs": "Runs", "compare": "Compare", "config": "Config",
                                           "training": "Training curves", "gradients": "Gradients",
                                           "activations": "Activations", "movie": "Information plane over time",
                                           "sql": "SQL"}[name], exact=True).click()
            if name != "runs":
                page.wait_for_url(f"**/{name}**")
            wait_until_drawn(page, charts)
            timings[f"page {name} [s]"] = round(time.perf_counter() - started, 2)
            page.wait_for_timeout(300)   # vega's last frame
            screenshot(page, ARTIFACTS / f"{name}.png")
            assert page.locator('[data-testid="stException"]').count() == 0, name
            assert page.locator('[data-testid="stVegaLiteChart"]').count() == charts, name
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 1000})
                page.wait_for_timeout(200)
                box = page.evaluate(MEASURE)
                assert box["scrollWidth"] <= box["innerWidth"], (name, width, box["scrollWidth"])
                for chart in box["charts"]:
                    assert chart["right"] <= min(box["innerWidth"], box["mainRight"]), (name, width, chart)
                    assert chart["left"] >= 0, (name, width, chart)
            assert page.locator('img[src*="evil"]').count() == 0, name   # a run name is text
            # ... not even a link (a header's own "#..." anchor is the page's)
            assert page.locator('a[href*="evil"]:not([href^="#"])').count() == 0, name
            if name == "gradients":   # the title of the diverged run, as typed (zero-width spaces aside)
                titles = [t.replace("\u200b", "") for t in page.locator("h3").all_inner_texts()]
                assert sum(t.startswith(f"activation_fn={EVIL}") for t in titles) == 1, titles

        page.get_by_role("link", name="Compare", exact=True).click()
        wait_until_drawn(page, 1)
        started = time.perf_counter()
        with page.expect_download(timeout=60_000) as download:
            page.get_by_role("button", name="PNG", exact=True).click()
        png = Path(download.value.path()).read_bytes()
        timings["PNG export, 10-panel grid [s]"] = round(time.perf_counter() - started, 2)
        assert png.startswith(b"\x89PNG") and len(png) > 10_000
        assert download.value.suggested_filename == "infoplane_train.png"
        # the sidebar's selection: removing a run there removes it from the URL and from every page
        page.get_by_role("link", name="Gradients", exact=True).click()
        wait_until_drawn(page, PAGES["gradients"])
        removed = page.locator('[data-testid="stSidebar"] [data-tag-index="0"]').get_attribute("aria-label")
        page.get_by_role("button", name=f"Remove {removed}", exact=True).click()
        page.wait_for_function("""n => document.querySelectorAll('[data-testid="stVegaLiteChart"]').length == n""",
                               arg=PAGES["gradients"] - 1, timeout=60_000)
        assert removed not in page.url and page.url.count("runs=") == PAGES["gradients"] - 1
        page.get_by_role("link", name="Training curves", exact=True).click()
        wait_until_drawn(page, 1)
        assert removed not in page.url and page.url.count("runs=") == PAGES["gradients"] - 1
        browser.close()
    assert not [u for u in external if "evil" in u]   # nothing loaded from a run's text
    (ARTIFACTS / "timings.json").write_text(json.dumps(timings, indent=1))
    print(json.dumps(timings, indent=1))
