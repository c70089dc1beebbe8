"""The Insights dashboard page in a real browser (headless Chromium, tests/python/browser.py).

The page is rendered by the fixture example of crates/dashboard (until `trailhouse dashboard`
exists): `cargo run -p trailhouse-dashboard --example fixture -- OUT.html VARIANT` writes the
page and the data it shows as OUT.json. The tests load the page offline and check: no console
error, no network request (the page's CSP forbids them, and a control test shows the check
would see one), every panel present and visible, and the values read back from the DOM's
data-* attributes equal the data rendered. A full-page screenshot goes to
$TRAILHOUSE_SCREENSHOT_DIR (default: pytest's tmp dir).

Needs /usr/bin/chromium and /usr/bin/chromedriver (.ci/browser-env.sh installs them; test.sh
runs it): without them the tests fail, they do not skip.

Run: $VENV/bin/python -m pytest -p no:cacheprovider -q tests/python/test_dashboard.py
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import pytest

import browser

ROOT = Path(__file__).resolve().parents[2]
PANELS = ["insight-types", "insights-by-date", "call-rate-by-source", "error-rate-by-source",
          "top-users", "insight-events", "activity-overview"]
# The renderer's limits (crates/dashboard/src/lib.rs).
MAX_TEXT_CHARS, MAX_BARS, MAX_TOP_USERS, MAX_SLICES, MAX_SERIES, MAX_ROWS = 1024, 15, 10, 8, 8, 500
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clip(s: str) -> str:
    """What the page carries for a data string (crates/dashboard/src/text.rs)."""
    if len(s) > MAX_TEXT_CHARS:
        s = s[:MAX_TEXT_CHARS - 1] + "…"
    return UNSAFE.sub("\ufffd", s)


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def browser_session():
    gone = browser.missing()
    if gone:
        pytest.fail(f"{', '.join(gone)} not installed: run .ci/browser-env.sh (test.sh does)", pytrace=False)
    b = browser.Browser(width=1280, height=900)
    yield b
    b.close()


@pytest.fixture(scope="session")
def render(tmp_path_factory):
    """render(variant) → (html path, data): the fixture page, rendered once per session."""
    out_dir = tmp_path_factory.mktemp("dashboard")
    done: dict[str, tuple[Path, dict]] = {}

    def run(variant: str) -> tuple[Path, dict]:
        if variant not in done:
            html = out_dir / f"{variant}.html"
            prebuilt = os.environ.get("TRAILHOUSE_DASHBOARD_FIXTURE")
            cmd = ([prebuilt] if prebuilt else
                   ["cargo", "run", "-q", "--locked", "-p", "trailhouse-dashboard", "--example", "fixture", "--"])
            p = subprocess.run(cmd + [str(html), variant], cwd=ROOT, capture_output=True, text=True, timeout=1200)
            if p.returncode != 0:
                pytest.fail(f"rendering the {variant} fixture failed ({p.returncode}):\n{p.stderr[-3000:]}", pytrace=False)
            json_path = Path(p.stdout.strip().splitlines()[-1])
            done[variant] = (html, json.loads(json_path.read_text()))
        return done[variant]

    return run


@pytest.fixture(scope="session")
def shots(tmp_path_factory) -> Path:
    d = os.environ.get("TRAILHOUSE_SCREENSHOT_DIR")
    path = Path(d) if d else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---------------------------------------------------------------- reading the page back

READ_BACK = r"""
const q = (root, sel) => Array.from(root.querySelectorAll(sel));
const chart = name => document.querySelector(`[data-chart="${name}"]`);
const hidden = (c, attr) => { const e = c.querySelector(`[${attr}]`); return e ? e.getAttribute(attr) : null; };
const counts = (name, sel) => {
  const c = chart(name);
  if (!c) return null;
  return {
    items: q(c, sel).map(e => [e.dataset.label, e.dataset.value]),
    other: q(c, 'li[data-other]').map(e => [e.dataset.other, e.dataset.value]),
    hidden: hidden(c, 'data-hidden'),
    empty: q(c, '[data-empty]').map(e => e.textContent),
  };
};
const series = name => {
  const c = chart(name);
  if (!c) return null;
  return {
    points: q(c, 'rect[data-series], circle[data-series]').map(e => [e.dataset.series, e.dataset.day, e.dataset.value]),
    days: q(c, 'g[data-day]').map(e => e.dataset.day),
    hiddenDays: hidden(c, 'data-hidden-days'),
    hiddenSeries: hidden(c, 'data-hidden-series'),
    empty: q(c, '[data-empty]').map(e => e.textContent),
  };
};
const table = chart('insight-events');
const meta = Object.fromEntries(q(document, '[data-meta]').map(e =>
  [e.dataset.meta, {value: e.getAttribute('data-value'), from: e.getAttribute('data-from'), to: e.getAttribute('data-to')}]));
return {
  panels: q(document, 'section[data-panel]').map(s => s.dataset.panel),
  scripts: document.scripts.length,
  handlers: q(document, '*').flatMap(e => Array.from(e.attributes).map(a => a.name)).filter(n => n.startsWith('on')),
  csp: (document.querySelector('meta[http-equiv="Content-Security-Policy"]') || {}).content || null,
  scrollWidth: document.documentElement.scrollWidth,
  meta,
  insightTypes: counts('insight-types', 'li[data-label]'),
  callRate: counts('call-rate-by-source', 'g[data-label]'),
  errorRate: counts('error-rate-by-source', 'g[data-label]'),
  topUsers: counts('top-users', 'g[data-label]'),
  topPrincipals: counts('top-principals', 'g[data-label]'),
  byDate: series('insights-by-date'),
  eventsByDay: series('events-by-day'),
  errorsByDay: series('errors-by-day'),
  rows: table ? q(table, 'tr[data-row]').map(tr => Object.fromEntries(q(tr, 'td[data-field]').map(td =>
    [td.dataset.field, td.hasAttribute('data-value') ? td.getAttribute('data-value') : null]))) : null,
  hiddenRows: table ? hidden(table, 'data-hidden') : null,
  emptyTable: table ? q(table, '[data-empty]').map(e => e.textContent) : null,
};
"""


def expected_counts(items: list[dict], cap: int) -> list[list[str]]:
    sums: dict[str, int] = defaultdict(int)
    for c in items:
        sums[c["label"]] += c["count"]
    ordered = sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))[:cap]
    return [[clip(label), str(n)] for label, n in ordered]


def expected_series(series: list[dict]) -> dict[tuple[str, str], int]:
    merged: dict[str, dict[str, int]] = {}
    for s in series:
        m = merged.setdefault(s["name"], defaultdict(int))
        for day, v in s["points"]:
            m[day] += v
    out = {}
    for name in sorted(merged)[:MAX_SERIES]:
        for day, v in merged[name].items():
            if v > 0:
                out[(clip(name), clip(day))] = v
    return out


def shown_series(read: dict) -> dict[tuple[str, str], int]:
    return {(s, d): int(v) for s, d, v in read["points"] if int(v) > 0}


def days(first: str, last: str) -> list[str]:
    a, b = date.fromisoformat(first), date.fromisoformat(last)
    return [(a + timedelta(n)).isoformat() for n in range((b - a).days + 1)]


# ---------------------------------------------------------------- tests

def test_page_loads_offline_without_errors(browser_session, render):
    html, _ = render("rich")
    page = browser_session.open(html)
    assert page.severe == [], f"console errors: {page.severe}"
    assert page.network == [], f"network requests attempted: {page.network}"
    r = browser_session.js(READ_BACK)
    assert r["scripts"] == 0 and r["handlers"] == []
    assert r["csp"] and "default-src 'none'" in r["csp"]


def test_network_check_sees_a_blocked_load(browser_session, render, tmp_path):
    """Control: the same page with an image and a stylesheet from elsewhere. The CSP must block
    them, and the checks above must notice, or their silence above would mean nothing."""
    html, _ = render("rich")
    bad = tmp_path / "bad.html"
    bad.write_text(html.read_text().replace(
        "</body>", '<img src="http://127.0.0.1:9/x.png"><link rel="stylesheet" href="http://127.0.0.1:9/x.css"></body>'))
    page = browser_session.open(bad)
    refused = [e for e in page.severe if "Content Security Policy" in e["message"]]
    assert refused, f"no CSP violation reported: console {page.console}"
    assert any(u.startswith("http://127.0.0.1:9/") for u in page.network), page.network


@pytest.mark.parametrize("variant", ["rich", "one", "empty", "many"])
def test_every_panel_present_and_visible(browser_session, render, variant):
    from selenium.webdriver.common.by import By

    html, _ = render(variant)
    page = browser_session.open(html)
    assert page.severe == [] and page.network == [], (page.severe, page.network)
    sections = browser_session.driver.find_elements(By.CSS_SELECTOR, "section[data-panel]")
    assert [s.get_attribute("data-panel") for s in sections] == PANELS
    for s in sections:
        assert s.is_displayed(), s.get_attribute("data-panel")
        assert s.size["width"] > 300 and s.size["height"] > 80, (s.get_attribute("data-panel"), s.size)
    for e in browser_session.driver.find_elements(By.CSS_SELECTOR, "[data-empty]"):
        assert e.is_displayed() and e.text.strip()
    # Readable at 1280 px: nothing sticks out sideways.
    assert browser_session.js(READ_BACK)["scrollWidth"] <= 1280


def test_values_read_back_equal_the_data(browser_session, render):
    html, d = render("rich")
    browser_session.open(html)
    r = browser_session.js(READ_BACK)

    assert r["panels"] == PANELS
    assert r["meta"]["lake"]["value"] == clip(d["lake"])
    assert r["meta"]["generated-at"]["value"] == clip(d["generated_at"])
    assert [r["meta"]["range"]["from"], r["meta"]["range"]["to"]] == d["range"]

    assert r["insightTypes"]["items"] == expected_counts(d["insight_types"], MAX_SLICES)
    assert r["callRate"]["items"] == expected_counts(d["call_rate_by_source"], MAX_BARS)
    assert r["errorRate"]["items"] == expected_counts(d["error_rate_by_source"], MAX_BARS)
    assert r["topUsers"]["items"] == expected_counts(d["top_users"], MAX_TOP_USERS)
    assert r["topPrincipals"]["items"] == expected_counts(d["top_principals"], MAX_BARS)
    # Capped lists say how many were left out.
    for key, data, cap in [("callRate", "call_rate_by_source", MAX_BARS), ("topPrincipals", "top_principals", MAX_BARS)]:
        n = len({c["label"] for c in d[data]})
        assert n > cap, "the fixture should exceed the cap"
        assert r[key]["hidden"] == str(n - cap)

    assert shown_series(r["byDate"]) == expected_series(d["insights_by_date"])
    assert shown_series(r["eventsByDay"]) == expected_series(d["events_by_day"])
    assert shown_series(r["errorsByDay"]) == expected_series([{"name": "Errors", "points": d["errors_by_day"]}])
    every_day = days(*d["range"])
    for key in ["byDate", "eventsByDay", "errorsByDay"]:
        assert r[key]["days"] == every_day, key   # sorted, days without data included
        assert r[key]["hiddenDays"] is None and r[key]["hiddenSeries"] is None
    # Days without data are there, at zero.
    assert any(p[1] == "2026-03-03" for p in r["errorsByDay"]["points"])
    assert not any(p[1] == "2026-03-03" and int(p[2]) > 0 for p in r["eventsByDay"]["points"])

    events = sorted(d["insight_events"], key=lambda e: e["time"], reverse=True)
    assert len(r["rows"]) == len(events) and r["hiddenRows"] is None
    for row, e in zip(r["rows"], events):
        for f in ["time", "state", "insight_type", "event_source", "event_name", "account", "region"]:
            assert row[f] == clip(e[f]), f
        for f in ["top_user", "top_user_agent", "top_error_code"]:
            assert row[f] == (None if e[f] is None else clip(e[f])), f
        assert float(row["baseline_average"]) == e["baseline_average"]
        assert float(row["insight_average"]) == e["insight_average"]
        assert (None if row["duration_minutes"] is None else int(row["duration_minutes"])) == e["duration_minutes"]


def test_hostile_strings_are_text(browser_session, render):
    html, d = render("rich")
    browser_session.open(html)
    text = browser_session.js("return document.body.textContent")
    assert "<script>alert('xss')</script>" in text
    assert browser_session.js("return document.querySelectorAll('script, img, iframe, object, embed').length") == 0
    # Exactly the SVGs the renderer draws: the hostile `</svg><svg onload=…>` made none.
    assert browser_session.js("return document.querySelectorAll('svg').length") == 8


def test_empty_dashboard_says_so(browser_session, render):
    html, _ = render("empty")
    browser_session.open(html)
    r = browser_session.js(READ_BACK)
    for key in ["insightTypes", "callRate", "errorRate", "topUsers"]:
        assert r[key]["items"] == [] and r[key]["empty"] == ["No insights in this range"], key
    assert r["byDate"]["empty"] == ["No insights in this range"]
    assert r["emptyTable"] == ["No insights in this range"]
    assert r["eventsByDay"]["empty"] == ["No events in this range"]
    assert r["errorsByDay"]["empty"] == ["No errors in this range"]
    assert r["topPrincipals"]["empty"] == ["No principals in this range"]


def test_many_items_are_capped(browser_session, render):
    html, d = render("many")
    browser_session.open(html)
    r = browser_session.js(READ_BACK)
    assert r["topUsers"]["items"] == expected_counts(d["top_users"], MAX_TOP_USERS)
    assert r["topUsers"]["hidden"] == str(len(d["top_users"]) - MAX_TOP_USERS)
    assert len(r["insightTypes"]["items"]) == MAX_SLICES - 1 and r["insightTypes"]["other"]
    assert len(r["rows"]) == MAX_ROWS and r["hiddenRows"] == str(len(d["insight_events"]) - MAX_ROWS)
    assert len(r["byDate"]["days"]) == 366 and r["byDate"]["hiddenDays"] == "634"
    assert r["byDate"]["hiddenSeries"] == str(len(d["insights_by_date"]) - MAX_SERIES)


@pytest.mark.parametrize("variant", ["rich", "empty"])
def test_screenshot(browser_session, render, shots, variant):
    from PIL import Image

    html, _ = render(variant)
    browser_session.open(html)
    png = browser_session.screenshot_full(shots / f"dashboard-{variant}.png")
    print(f"screenshot: {png}")
    assert png.stat().st_size > 20_000
    with Image.open(png) as im:
        assert im.width == 1280 and im.height > 1000, im.size
        rgb = im.convert("RGB")
        colors = rgb.getcolors(maxcolors=1 << 24) or []
        # Not blank: many distinct colours, and no single colour covers almost everything.
        assert len(colors) > (50 if variant == "rich" else 8), len(colors)
        assert max(n for n, _ in colors) < 0.9 * im.width * im.height


# ---- `trailhouse dashboard` on a real lake: generated trail with known bursts → replay →
# insights → dashboard. Expectations come from the generator's manifest, not from the page.

@pytest.fixture(scope="module")
def demo_dashboard(tmp_path_factory):
    bin_ = os.environ.get("TRAILHOUSE_BIN")
    assert bin_, "TRAILHOUSE_BIN must point at the trailhouse binary (./test.sh sets it)"
    root = tmp_path_factory.mktemp("demo-dashboard")
    env = {**os.environ, "TRAILHOUSE_LOG": "error"}

    def run(*args: str) -> None:
        p = subprocess.run([bin_, *args], capture_output=True, text=True, env=env, timeout=600)
        assert p.returncode == 0, p.stderr[-3000:]

    run("generate", "--insights-demo", "--out", str(root / "trail"), "--start", "2024-03-04", "--days", "9",
        "--seed", "3", "--manifest", str(root / "manifest.json"))
    run("replay", str(root / "trail"), "--lake", str(root / "lake"))
    run("insights", "--lake", str(root / "lake"))
    run("dashboard", "--lake", str(root / "lake"), "--out", str(root / "insights.html"))
    return root / "insights.html", json.loads((root / "manifest.json").read_text())


def test_dashboard_of_a_generated_lake_shows_its_insights(browser_session, demo_dashboard, shots):
    html, manifest = demo_dashboard
    load = browser_session.open(html)
    assert not load.severe, load.severe
    r = browser_session.js(READ_BACK)
    assert r["panels"] == PANELS
    bursts = manifest["bursts"]

    def tally(key: str, pick) -> list[list[str]]:
        c = defaultdict(int)
        for b in bursts:
            k = pick(b)
            if k is not None:
                c[k] += 1
        return [[k, str(n)] for k, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))]

    assert r["insightTypes"]["items"] == tally("type", lambda b: b["insightType"])
    assert r["callRate"]["items"] == tally("src", lambda b: b["eventSource"] if b["insightType"] == "ApiCallRateInsight" else None)
    assert r["errorRate"]["items"] == tally("src", lambda b: b["eventSource"] if b["insightType"] == "ApiErrorRateInsight" else None)
    assert r["topUsers"]["items"] == tally("user", lambda b: b["userIdentityArn"])
    by_date = defaultdict(int)
    for b in bursts:
        by_date[(b["insightType"], b["start"][:10])] += 1
    assert {k: v for k, v in shown_series(r["byDate"]).items() if v} == dict(by_date)
    # One row per Start and End, with the record's own figures and attributions.
    assert len(r["rows"]) == 2 * len(bursts)
    for b in bursts:
        start = [x for x in r["rows"] if x["state"] == "Start" and x["event_name"] == b["eventName"]]
        end = [x for x in r["rows"] if x["state"] == "End" and x["event_name"] == b["eventName"]]
        assert len(start) == 1 and len(end) == 1
        assert start[0]["time"] == b["start"] and end[0]["time"] == b["end"]
        assert end[0]["top_user"] == b["userIdentityArn"] and end[0]["top_user_agent"] == b["userAgent"]
        assert end[0]["top_error_code"] == (b["errorCode"] or "null")
        minutes = (int(b["end"][11:13]) * 60 + int(b["end"][14:16])) - (int(b["start"][11:13]) * 60 + int(b["start"][14:16]))
        assert int(end[0]["duration_minutes"]) == minutes
        assert float(end[0]["insight_average"]) >= b["extraPerMinute"]
    # Activity overview: the trail's nine days, every class present, events counted.
    shown = shown_series(r["eventsByDay"])
    assert sum(shown.values()) == manifest["records"]
    assert {k[0] for k, v in shown.items() if v} == {"API Activity", "Authentication", "Account Change"}
    assert len(r["eventsByDay"]["days"]) == 9
    top = r["topPrincipals"]["items"]
    assert top and all(int(n) > 0 for _, n in top)
    browser_session.screenshot_full(shots / "dashboard-generated-lake.png")
