"""Headless Chromium for page tests, through Selenium and Debian's `chromium` and
`chromium-driver` (installed by .ci/browser-env.sh). Offline: the driver and browser paths are
given, so Selenium Manager never downloads anything, and Chromium runs with its background
networking off and a fresh profile.

    with Browser() as b:
        page = b.open("page.html")          # waits for the load; returns console + network
        assert page.severe == [] and page.network == []
        b.screenshot_full("page.png")

`open()` reports what the page did: console messages (CSP violations are SEVERE console
errors), and every URL the browser tried to fetch other than the page itself, `data:` URLs and
the browser's own `chrome://` pages (from Chrome's performance log: Network.requestWillBeSent,
and loads that were blocked)."""
from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = os.environ.get("TRAILHOUSE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("TRAILHOUSE_CHROMEDRIVER", "/usr/bin/chromedriver")

# Known to work here: as root, on a closed network.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


# Not network: inline data, and the browser's own pages (its start page loads chrome:// files).
INTERNAL = ("data:", "about:", "chrome:", "chrome-untrusted:", "devtools:")


def missing() -> list[str]:
    """The browser binaries that are not installed (empty when the browser tests can run)."""
    return [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]


@dataclass
class PageLoad:
    url: str
    console: list[dict] = field(default_factory=list)   # every console entry (level, message)
    network: list[str] = field(default_factory=list)    # URLs fetched or attempted, not the page's own

    @property
    def severe(self) -> list[dict]:
        return [e for e in self.console if e.get("level") == "SEVERE"]


class Browser:
    def __init__(self, width: int = 1280, height: int = 900):
        os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager reach out
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.width = width
        self.profile = tempfile.mkdtemp(prefix="trailhouse-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for f in FLAGS:
            opts.add_argument(f)
        opts.add_argument(f"--user-data-dir={self.profile}")
        opts.add_argument(f"--window-size={width},{height}")
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        self.driver_log = Path(self.profile) / "chromedriver.log"
        service = Service(executable_path=CHROMEDRIVER, log_output=str(self.driver_log))
        try:
            self.driver = webdriver.Chrome(options=opts, service=service)
        except Exception:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise
        self.driver.set_page_load_timeout(60)
        self.driver.set_script_timeout(60)
        self.driver.get("about:blank")  # leave the start page, whose own loads would be counted

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def open(self, path: str | Path) -> PageLoad:
        """Loads a local file and waits until it is complete; returns what it logged and fetched."""
        url = Path(path).resolve().as_uri()
        self._drain()
        self.driver.get(url)
        self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "if (document.readyState === 'complete') done(); else addEventListener('load', () => done());")
        page = PageLoad(url=url, console=self.driver.get_log("browser"))
        page.network = self._requests(exclude=url)
        return page

    def _drain(self) -> None:
        self.driver.get_log("browser")
        self.driver.get_log("performance")

    def _requests(self, exclude: str) -> list[str]:
        urls: list[str] = []
        for entry in self.driver.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            method, params = msg.get("method", ""), msg.get("params", {})
            url = None
            if method == "Network.requestWillBeSent":
                url = params.get("request", {}).get("url")
            elif method == "Network.loadingFailed" and params.get("blockedReason"):
                url = f"blocked:{params.get('blockedReason')}:{params.get('requestId')}"
            elif method == "Network.webSocketCreated":
                url = params.get("url")
            if url and url != exclude and not url.startswith(INTERNAL):
                urls.append(url)
        return urls

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def screenshot_full(self, path: str | Path) -> Path:
        """The whole page (not only the window) as a PNG at the window's width."""
        m = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = m.get("cssContentSize") or m["contentSize"]
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": max(size["width"], self.width), "height": size["height"], "scale": 1},
        })
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path
