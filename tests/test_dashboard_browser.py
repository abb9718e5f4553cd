"""Every dashboard page rendered by a real headless Chromium against `streamlit run` on the fixture lake:
key texts present, no Streamlit exception box, a screenshot per page under test-artifacts/dashboard/.

How the pages are rendered: the app is warmed with ``chromium --headless --dump-dom`` (a cold app renders
blank the first time); then each page is loaded in one headless Chromium driven over the DevTools
protocol, which waits until the page's texts and charts are actually on screen before reading the DOM and
taking the screenshot. (``--dump-dom`` with ``--virtual-time-budget`` alone is racy for any URL but ``/``:
the frontend first probes ``/<page>/_stcore/health`` for a base path, and virtual time runs out while the
websocket waits for the server in real time, so the dump is the loading skeleton.)
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from dashboard_fixtures import (
    CHAMPION_VERSION,
    build_lake,
    build_registry,
    write_manifest,
    write_promotions,
    write_validation,
)

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "dashboard"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
WIDTH, HEIGHT = 1280, 900

# page url path -> texts that must be on screen, plotly charts expected at least
PAGES = {
    "overview": (["Overview", "Anomaly episodes", "Active wells", "Rows per minute", "Consumer lag",
                  f"version {CHAMPION_VERSION}"], 1),
    "live": (["Live anomalies", "Episodes shown", "Refreshes every", "WELL-00001"], 1),
    "well_history": (["Well history", "WELL-00001", "points per series", "Alarm episodes in this range"], 1),
    "status_map": (["Well status map", "Alarm", "Stale", "WELL-00003"], 1),
    "model": (["Model performance", "Registered versions", "champion", "Promotion history", "Refused",
               "Live performance against the 3W labels", "Input drift"], 4),
    "quality": (["Data quality", "raw_3w_instance", "Quarantined records", "non-finite number NaN"], 1),
    "executive": (["Executive", "Monthly trend", "Yearly trend", "PETROSTREAM_POWERBI_REPORT_URL"], 2),
}


# ------------------------------------------------------------------ a minimal DevTools client


class Browser:
    """One headless Chromium (the flags above) driven over the DevTools protocol."""

    def __init__(self, user_data_dir: Path):
        from websockets.sync.client import connect

        self.proc = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", "--remote-debugging-port=0",
             f"--window-size={WIDTH},{HEIGHT}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        found: list[str] = []
        ready = threading.Event()

        def read() -> None:
            for line in self.proc.stderr:  # keep draining, or Chromium blocks on a full pipe
                m = re.search(r"DevTools listening on (ws://\S+)", line)
                if m and not found:
                    found.append(m.group(1))
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(30):
            self.close()
            raise RuntimeError("chromium did not open its DevTools port")
        port = re.search(r":(\d+)/", found[0]).group(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            target = next(t for t in json.load(r) if t.get("type") == "page")
        self.ws = connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        self._id = 0
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})

    def call(self, method: str, params: dict | None = None, timeout: float = 30) -> dict:
        self._id += 1
        me = self._id
        self.ws.send(json.dumps({"id": me, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            if msg.get("id") == me:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})["result"].get("value")

    def render(self, url: str, texts: list[str], charts: int, timeout: float = 60) -> tuple[str, str, bytes]:
        """Load ``url`` and wait until every text and ``charts`` Plotly charts are on screen and the script
        has finished. Returns (visible text, DOM html, PNG screenshot)."""
        self.call("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            time.sleep(0.5)
            text = self.evaluate("document.body ? document.body.innerText : ''") or ""
            drawn = self.evaluate("document.querySelectorAll('.js-plotly-plot .main-svg').length") or 0
            running = self.evaluate("!!document.querySelector('[data-testid=\"stStatusWidget\"] "
                                    "[data-testid=\"stStatusWidgetRunningIcon\"]')")
            if all(t in text for t in texts) and drawn >= charts and not running:
                break
        time.sleep(1.0)  # let the last chart finish its transition before the screenshot
        text = self.evaluate("document.body.innerText") or ""
        dom = self.evaluate("document.documentElement.outerHTML") or ""
        png = base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"])
        return text, dom, png

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass
        try:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass


# ------------------------------------------------------------------ the app under test


def _wait_health(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"streamlit did not answer on {url} within {timeout:.0f} s")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("chromium is not on PATH (install it with `make browser`, or apt-get install chromium)")
    from dashboard.cli import streamlit_command
    from petrostream.local import free_port

    root = tmp_path_factory.mktemp("dash-browser")
    lake = build_lake(root)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    runs = build_registry(uri, root / "artifacts")
    write_manifest(lake.lake_dir, runs[CHAMPION_VERSION])
    write_promotions(lake.lake_dir)
    write_validation(lake.reports_dir)
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    env.update(lake.env)
    env.update({"PETROSTREAM_MLFLOW_TRACKING_URI": uri, "PETROSTREAM_POWERBI_REPORT_URL": "",
                "PETROSTREAM_INFERENCE_URL": f"http://127.0.0.1:{free_port()}", "MLFLOW_DISABLE_TELEMETRY": "true"})
    port = free_port()
    log = root / "streamlit.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(streamlit_command(port, "127.0.0.1"), cwd=root, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_health(url, proc, log)
        # warm the cold app (its first render is blank), as CI does
        subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={root / 'warm'}", "--virtual-time-budget=15000",
                        "--dump-dom", f"{url}/"], capture_output=True, timeout=120)
        yield url
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)


@pytest.fixture(scope="module")
def browser(app_url, tmp_path_factory):
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


@pytest.mark.parametrize("page", list(PAGES))
def test_page_renders_in_chromium(page, app_url, browser):
    texts, charts = PAGES[page]
    url = f"{app_url}/" if page == "overview" else f"{app_url}/{page}"  # the default page lives at /
    if page == "well_history":
        url += "?well=WELL-00001&start=2024-05-01T10:00:00&end=2024-05-01T10:10:00"
    text, dom, png = browser.render(url, texts, charts)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{page}.png").write_bytes(png)
    (ARTIFACTS / f"{page}.html").write_text(dom)
    missing = [t for t in texts if t not in text]
    assert not missing, f"{page}: not on screen: {missing}"
    assert 'data-testid="stException"' not in dom, f"{page}: Streamlit shows an exception"
    assert "Traceback" not in text and "Page not found" not in text
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a real, non-blank screenshot
