"""End to end: serve the explorer on 127.0.0.1 and open the Compare page in headless Debian chromium."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tests" / "artifacts"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.slow
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served_app(cohort_root):
    port = free_port()
    env = {**os.environ, "IB_RESULTS": str(cohort_root)}
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


def test_compare_page_draws_the_infoplane_grid(served_app):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1400})
        page.goto(served_app, wait_until="networkidle")
        page.get_by_role("link", name="Compare").click()
        page.wait_for_url("**/compare**")
        chart = page.locator('[data-testid="stVegaLiteChart"]').first
        chart.locator("canvas, svg").first.wait_for(state="attached", timeout=30_000)
        page.wait_for_timeout(1500)  # let vega finish drawing
        page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)
        assert page.locator('[data-testid="stVegaLiteChart"]').count() == 1
        assert chart.locator("canvas, svg.marks").count() >= 1
        assert page.locator('[data-testid="stException"]').count() == 0
        errors = page.locator('[data-testid="stAlert"]').filter(has=page.locator('[data-testid="stAlertContentError"]'))
        assert errors.count() == 0
        assert "initial_bias=0.2, seed=0" in page.content()
        with page.expect_download(timeout=60_000) as download:
            page.get_by_role("button", name="PNG", exact=True).click()
        png = Path(download.value.path()).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000
        assert download.value.suggested_filename == "infoplane_train.png"
        browser.close()
