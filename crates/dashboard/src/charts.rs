//! The page and its charts (inline SVG written here; no chart library, no script).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::days;
use crate::text::{clip, esc, group, num, short};
use crate::{
    Count, Dashboard, InsightEvent, MAX_BARS, MAX_ROWS, MAX_SERIES, MAX_SLICES, MAX_TOP_USERS,
    Series,
};

macro_rules! w {
    ($($t:tt)*) => {{ let _ = write!($($t)*); }};
}

/// No network load of any kind; inline styles only; the only image is the empty `data:` icon.
pub(crate) const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

const CSS: &str = r#"
:root{color-scheme:light;--fg:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f3f4f6;--card:#fff}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif}
main{max-width:1280px;margin:0 auto;padding:16px}
header{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px}
h1{font-size:22px;margin:0 0 6px;overflow-wrap:anywhere}
.meta{display:flex;flex-wrap:wrap;gap:4px 28px;margin:0;color:var(--muted);font-size:13px}
.meta div{display:flex;gap:6px;min-width:0}
.meta dt{font-weight:600}
.meta dd{margin:0;color:var(--fg);overflow-wrap:anywhere}
.summary{margin:8px 0 0;font-size:13px}
.panels{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:16px;margin-top:16px}
.panel{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px;min-width:0}
.panel.wide{grid-column:1/-1}
h2{font-size:16px;margin:0 0 2px}
.sub{margin:0 0 10px;color:var(--muted);font-size:12.5px}
figure{margin:0;min-width:0}
figcaption{font-weight:600;font-size:13px;margin:10px 0 4px}
svg{display:block;width:100%;height:auto}
svg text{fill:var(--fg);font-size:11px}
svg .tick{fill:var(--muted);font-size:10.5px}
svg .axis-title{fill:var(--muted);font-size:11px}
svg .center{font-size:22px;font-weight:600}
svg .center-sub{fill:var(--muted);font-size:11px}
.grid{stroke:var(--line);stroke-width:1}
.axis{stroke:#9ca3af;stroke-width:1}
.s0{--c:#4e79a7}.s1{--c:#f28e2b}.s2{--c:#59a14f}.s3{--c:#e15759}
.s4{--c:#76b7b2}.s5{--c:#edc948}.s6{--c:#b07aa1}.s7{--c:#9c755f}.other{--c:#bab0ac}
rect.bar{fill:var(--c)}
.arc{fill:none;stroke:var(--c)}
.line{fill:none;stroke:var(--c);stroke-width:2}
.pt{fill:var(--c)}
.sw{display:inline-block;width:11px;height:11px;border-radius:2px;flex:none;background:var(--c)}
.legend{list-style:none;margin:6px 0 0;padding:0;display:flex;flex-wrap:wrap;gap:4px 18px;font-size:12.5px}
.legend li{display:flex;align-items:center;gap:6px;min-width:0}
.legend .val{color:var(--muted)}
.donut-wrap{display:flex;align-items:center;gap:24px}
.donut-wrap svg{width:220px;flex:none}
.donut-wrap .legend{flex-direction:column;gap:6px}
.empty{display:flex;align-items:center;justify-content:center;min-height:120px;margin:0;color:var(--muted);background:#f9fafb;border:1px dashed #d1d5db;border-radius:6px;font-style:italic}
.note{color:var(--muted);font-size:12px;margin:6px 0 0}
.table-wrap{overflow:auto;max-height:560px;border:1px solid var(--line);border-radius:6px}
table{border-collapse:collapse;width:100%;font-size:12.5px}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap;vertical-align:top}
th{position:sticky;top:0;background:#f9fafb;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tbody tr:nth-child(even){background:#fafafa}
.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:11.5px;background:#e5e7eb}
.badge.start{background:#fde2e1;color:#9b1c1c}
.badge.end{background:#dcfce7;color:#166534}
.two{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:24px}
footer{max-width:1280px;margin:0 auto;padding:0 16px 16px;color:var(--muted);font-size:12px}
@media (max-width:900px){.panels,.two{grid-template-columns:1fr}}
"#;

const NO_INSIGHTS: &str = "No insights in this range";

pub(crate) fn page(d: &Dashboard) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let title = if d.title.trim().is_empty() {
        "trailhouse — CloudTrail Insights"
    } else {
        &d.title
    };
    let title = clip(title);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    w!(
        h,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"
    );
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    h.push_str(
        "<meta name=\"referrer\" content=\"no-referrer\">\n<link rel=\"icon\" href=\"data:,\">\n",
    );
    w!(
        h,
        "<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        esc(&short(&title, 200))
    );

    header(&mut h, d, &title);
    h.push_str("<div class=\"panels\">\n");

    section(
        &mut h,
        "insight-types",
        "Insight types",
        "Share of insight events by insight type",
        false,
        |h| donut(h, "insight-types", &d.insight_types),
    );
    section(
        &mut h,
        "insights-by-date",
        "Insights by date",
        "Insight events per day, by insight type",
        false,
        |h| {
            day_chart(
                h,
                &DayChart {
                    chart: "insights-by-date",
                    width: 600.0,
                    height: 260.0,
                    y_title: "Insight events",
                    empty: NO_INSIGHTS,
                    line: false,
                },
                &d.insights_by_date,
                d.range.as_ref(),
            )
        },
    );
    let bars = |chart, color, label_chars, cap, width, axis_title, empty| Bars {
        chart,
        color,
        label_chars,
        cap,
        width,
        axis_title,
        empty,
    };
    section(
        &mut h,
        "call-rate-by-source",
        "API call rate insights by event source",
        "ApiCallRateInsight events per eventSource",
        false,
        |h| {
            hbars(
                h,
                &bars(
                    "call-rate-by-source",
                    0,
                    34,
                    MAX_BARS,
                    600.0,
                    "Insight events",
                    NO_INSIGHTS,
                ),
                &d.call_rate_by_source,
            )
        },
    );
    section(
        &mut h,
        "error-rate-by-source",
        "API error rate insights by event source",
        "ApiErrorRateInsight events per eventSource",
        false,
        |h| {
            hbars(
                h,
                &bars(
                    "error-rate-by-source",
                    3,
                    34,
                    MAX_BARS,
                    600.0,
                    "Insight events",
                    NO_INSIGHTS,
                ),
                &d.error_rate_by_source,
            )
        },
    );
    section(
        &mut h,
        "top-users",
        "Insights by top users",
        "Insight events per user (top 10)",
        true,
        |h| {
            hbars(
                h,
                &bars(
                    "top-users",
                    6,
                    80,
                    MAX_TOP_USERS,
                    1220.0,
                    "Insight events",
                    NO_INSIGHTS,
                ),
                &d.top_users,
            )
        },
    );
    section(
        &mut h,
        "insight-events",
        "Insight events",
        "Newest first",
        true,
        |h| events_table(h, &d.insight_events),
    );
    section(
        &mut h,
        "activity-overview",
        "Activity overview",
        "All events of the lake, by OCSF class",
        true,
        |h| {
            h.push_str("<figure><figcaption>Events per day by OCSF class</figcaption>\n");
            day_chart(
                h,
                &DayChart {
                    chart: "events-by-day",
                    width: 1220.0,
                    height: 280.0,
                    y_title: "Events",
                    empty: "No events in this range",
                    line: false,
                },
                &d.events_by_day,
                d.range.as_ref(),
            );
            h.push_str(
                "</figure>\n<div class=\"two\">\n<figure><figcaption>Errors per day</figcaption>\n",
            );
            let errors = [Series {
                name: "Errors".into(),
                points: d.errors_by_day.clone(),
            }];
            day_chart(
                h,
                &DayChart {
                    chart: "errors-by-day",
                    width: 600.0,
                    height: 240.0,
                    y_title: "Events with an error",
                    empty: "No errors in this range",
                    line: true,
                },
                &errors,
                d.range.as_ref(),
            );
            h.push_str("</figure>\n<figure><figcaption>Top principals</figcaption>\n");
            hbars(
                h,
                &bars(
                    "top-principals",
                    2,
                    34,
                    MAX_BARS,
                    600.0,
                    "Events",
                    "No principals in this range",
                ),
                &d.top_principals,
            );
            h.push_str("</figure>\n</div>\n");
        },
    );

    h.push_str("</div>\n</main>\n<footer>Generated by trailhouse. This page is self-contained: it loads nothing from the network and runs no script.</footer>\n</body>\n</html>\n");
    h
}

fn header(h: &mut String, d: &Dashboard, title: &str) {
    w!(
        h,
        "<header>\n<h1 data-meta=\"title\" data-value=\"{}\" title=\"{0}\">{}</h1>\n<dl class=\"meta\">\n",
        esc(title),
        esc(&short(title, 120))
    );
    let lake = clip(&d.lake);
    w!(
        h,
        "<div><dt>Lake</dt><dd data-meta=\"lake\" data-value=\"{}\" title=\"{0}\">{}</dd></div>\n",
        esc(&lake),
        esc(&short(&lake, 100))
    );
    match &d.range {
        Some((a, b)) => {
            let (a, b) = (clip(a), clip(b));
            w!(
                h,
                "<div><dt>Days</dt><dd data-meta=\"range\" data-from=\"{}\" data-to=\"{}\">{} – {}</dd></div>\n",
                esc(&a),
                esc(&b),
                esc(&short(&a, 40)),
                esc(&short(&b, 40))
            );
        }
        None => h.push_str("<div><dt>Days</dt><dd data-meta=\"range\">all</dd></div>\n"),
    }
    let gen_at = clip(&d.generated_at);
    w!(
        h,
        "<div><dt>Generated</dt><dd data-meta=\"generated-at\" data-value=\"{}\">{}</dd></div>\n</dl>\n",
        esc(&gen_at),
        esc(&short(&gen_at, 60))
    );
    let starts = d
        .insight_events
        .iter()
        .filter(|e| e.state == "Start")
        .count();
    let events: u128 = d
        .events_by_day
        .iter()
        .flat_map(|s| &s.points)
        .map(|p| u128::from(p.1))
        .sum();
    w!(
        h,
        "<p class=\"summary\"><strong>{}</strong> insight events ({} started) · <strong>{}</strong> events in the lake</p>\n</header>\n",
        group(d.insight_events.len() as u128),
        group(starts as u128),
        group(events)
    );
}

fn section(
    h: &mut String,
    panel: &str,
    title: &str,
    sub: &str,
    wide: bool,
    body: impl FnOnce(&mut String),
) {
    let class = if wide { "panel wide" } else { "panel" };
    w!(
        h,
        "<section class=\"{class}\" data-panel=\"{panel}\" aria-labelledby=\"h-{panel}\">\n<h2 id=\"h-{panel}\">{title}</h2>\n<p class=\"sub\">{sub}</p>\n"
    );
    body(h);
    h.push_str("</section>\n");
}

fn empty(h: &mut String, msg: &str) {
    w!(h, "<p class=\"empty\" data-empty=\"true\">{msg}</p>\n");
}

/// Entries with the same label added up, largest first (then by label).
fn merge_counts(items: &[Count]) -> Vec<(&str, u128)> {
    let mut m: BTreeMap<&str, u128> = BTreeMap::new();
    for c in items {
        *m.entry(&c.label).or_default() += u128::from(c.count);
    }
    let mut v: Vec<(&str, u128)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v
}

/// Axis ticks for values up to `max`: (top of the axis, step), about five steps.
fn ticks(max: u128) -> (u128, u128) {
    if max == 0 {
        return (1, 1);
    }
    let raw = max as f64 / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let m = raw / mag;
    let f = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    let mut step = ((f * mag) as u128).max(1);
    if max / step > 20 {
        step = max.div_ceil(5).max(1);
    }
    (max.div_ceil(step) * step, step)
}

fn pct(v: u128, total: u128) -> String {
    if total == 0 {
        return "0.0".into();
    }
    format!("{:.1}", v as f64 * 100.0 / total as f64)
}

fn donut(h: &mut String, items: &str, data: &[Count]) {
    let chart = items;
    let merged = merge_counts(data);
    let total: u128 = merged.iter().map(|e| e.1).sum();
    w!(h, "<div class=\"chart\" data-chart=\"{chart}\">\n");
    if total == 0 {
        empty(h, NO_INSIGHTS);
        h.push_str("</div>\n");
        return;
    }
    // Colour by the label's rank in alphabetical order, so a type keeps its colour on the page.
    let mut names: Vec<&str> = merged.iter().map(|e| e.0).collect();
    names.sort_unstable();
    let color = |label: &str| names.binary_search(&label).unwrap_or(0) % 8;
    let (shown, rest) = if merged.len() > MAX_SLICES {
        merged.split_at(MAX_SLICES - 1)
    } else {
        (&merged[..], &[][..])
    };
    let other: u128 = rest.iter().map(|e| e.1).sum();

    let (c, r, sw) = (110.0, 80.0, 34.0);
    let circ = 2.0 * std::f64::consts::PI * r;
    w!(
        h,
        "<div class=\"donut-wrap\">\n<svg viewBox=\"0 0 220 220\" role=\"img\" aria-label=\"Share of insight events by type\">\n"
    );
    w!(
        h,
        "<circle cx=\"{c}\" cy=\"{c}\" r=\"{r}\" fill=\"none\" stroke=\"#f3f4f6\" stroke-width=\"{sw}\"/>\n"
    );
    let mut cum = 0u128;
    let mut arc = |h: &mut String, class: String, attrs: String, tip: String, v: u128| {
        if v > 0 {
            let start = cum as f64 / total as f64 * circ;
            let len = v as f64 / total as f64 * circ;
            w!(
                h,
                "<circle class=\"arc {class}\" {attrs} cx=\"{c}\" cy=\"{c}\" r=\"{r}\" stroke-width=\"{sw}\" stroke-dasharray=\"{} {}\" stroke-dashoffset=\"{}\" transform=\"rotate(-90 {c} {c})\"><title>{tip}</title></circle>\n",
                num(len),
                num(circ),
                num(-start)
            );
        }
        cum += v;
    };
    let mut legend = String::new();
    for &(label, v) in shown {
        let full = clip(label);
        let p = pct(v, total);
        let attrs = format!(
            "data-label=\"{}\" data-value=\"{v}\" data-percent=\"{p}\"",
            esc(&full)
        );
        let tip = esc(&format!("{full}: {} ({p}%)", group(v)));
        arc(h, format!("s{}", color(label)), attrs.clone(), tip, v);
        w!(
            legend,
            "<li {attrs}><span class=\"sw s{}\"></span><span title=\"{}\">{}</span><span class=\"val\">{} ({p}%)</span></li>\n",
            color(label),
            esc(&full),
            esc(&short(&full, 34)),
            group(v)
        );
    }
    if !rest.is_empty() {
        let p = pct(other, total);
        let n = rest.len();
        let attrs = format!("data-other=\"{n}\" data-value=\"{other}\" data-percent=\"{p}\"");
        arc(
            h,
            "other".into(),
            attrs.clone(),
            format!("{n} other types: {} ({p}%)", group(other)),
            other,
        );
        w!(
            legend,
            "<li {attrs}><span class=\"sw other\"></span><span>{n} other types</span><span class=\"val\">{} ({p}%)</span></li>\n",
            group(other)
        );
    }
    w!(
        h,
        "<text class=\"center\" x=\"{c}\" y=\"{}\" text-anchor=\"middle\">{}</text><text class=\"center-sub\" x=\"{c}\" y=\"{}\" text-anchor=\"middle\">insight events</text>\n</svg>\n",
        c + 4.0,
        group(total),
        c + 22.0
    );
    w!(h, "<ul class=\"legend\">\n{legend}</ul>\n</div>\n</div>\n");
}

struct Bars<'a> {
    chart: &'a str,
    color: usize,
    label_chars: usize,
    cap: usize,
    width: f64,
    axis_title: &'a str,
    empty: &'a str,
}

/// Horizontal bars, largest first, at most `cap` (the rest are counted in a note).
fn hbars(h: &mut String, b: &Bars, data: &[Count]) {
    let merged = merge_counts(data);
    w!(h, "<div class=\"chart\" data-chart=\"{}\">\n", b.chart);
    if merged.is_empty() {
        empty(h, b.empty);
        h.push_str("</div>\n");
        return;
    }
    let (shown, rest) = merged.split_at(merged.len().min(b.cap));
    let max = shown.first().map_or(0, |e| e.1);
    let (top_v, step) = ticks(max);
    let label_w = b.label_chars as f64 * 7.0 + 12.0;
    let value_w = 90.0;
    let plot_w = (b.width - label_w - value_w).max(50.0);
    let (row_h, top) = (24.0, 6.0);
    let plot_h = row_h * shown.len() as f64;
    let height = top + plot_h + 40.0;
    let x_of = |v: u128| label_w + v as f64 / top_v as f64 * plot_w;
    w!(
        h,
        "<svg viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\">\n",
        num(b.width),
        num(height),
        b.axis_title
    );
    let mut t = 0u128;
    while t <= top_v {
        let x = num(x_of(t));
        w!(
            h,
            "<line class=\"grid\" x1=\"{x}\" x2=\"{x}\" y1=\"{top}\" y2=\"{}\"/><text class=\"tick\" x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            num(top + plot_h),
            num(top + plot_h + 14.0),
            group(t)
        );
        t += step;
    }
    w!(
        h,
        "<line class=\"axis\" x1=\"{}\" x2=\"{0}\" y1=\"{top}\" y2=\"{}\"/>\n<text class=\"axis-title\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
        num(label_w),
        num(top + plot_h),
        num(label_w + plot_w / 2.0),
        num(top + plot_h + 32.0),
        b.axis_title
    );
    for (i, &(label, v)) in shown.iter().enumerate() {
        let full = clip(label);
        let y = top + i as f64 * row_h;
        let bw = x_of(v) - label_w;
        w!(
            h,
            "<g data-label=\"{}\" data-value=\"{v}\"><title>{}</title><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect class=\"bar s{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"16\" rx=\"2\"/><text x=\"{}\" y=\"{}\">{}</text></g>\n",
            esc(&full),
            esc(&format!("{full}: {}", group(v))),
            num(label_w - 8.0),
            num(y + 16.0),
            esc(&short(&full, b.label_chars)),
            b.color,
            num(label_w),
            num(y + 4.0),
            num(bw),
            num(label_w + bw + 6.0),
            num(y + 16.0),
            group(v)
        );
    }
    h.push_str("</svg>\n");
    if !rest.is_empty() {
        let sum: u128 = rest.iter().map(|e| e.1).sum();
        w!(
            h,
            "<p class=\"note\" data-hidden=\"{}\" data-hidden-value=\"{sum}\">{} more not shown ({} in total)</p>\n",
            rest.len(),
            group(rest.len() as u128),
            group(sum)
        );
    }
    h.push_str("</div>\n");
}

struct DayChart<'a> {
    chart: &'a str,
    width: f64,
    height: f64,
    y_title: &'a str,
    empty: &'a str,
    /// A line with one point per day instead of stacked bars.
    line: bool,
}

/// Stacked bars (or a line) per day; series sorted by name, at most [`MAX_SERIES`].
fn day_chart(h: &mut String, c: &DayChart, series: &[Series], range: Option<&(String, String)>) {
    w!(h, "<div class=\"chart\" data-chart=\"{}\">\n", c.chart);
    day_chart_body(h, c, series, range);
    h.push_str("</div>\n");
}

fn day_chart_body(
    h: &mut String,
    c: &DayChart,
    series: &[Series],
    range: Option<&(String, String)>,
) {
    let mut merged: BTreeMap<&str, BTreeMap<&str, u128>> = BTreeMap::new();
    for s in series {
        let m = merged.entry(&s.name).or_default();
        for (day, v) in &s.points {
            *m.entry(day).or_default() += u128::from(*v);
        }
    }
    let hidden_series = merged.len().saturating_sub(MAX_SERIES);
    let merged: Vec<(&str, BTreeMap<&str, u128>)> = merged.into_iter().take(MAX_SERIES).collect();
    if !merged.iter().any(|(_, m)| m.values().any(|&v| v > 0)) {
        empty(h, c.empty);
        return;
    }
    let (axis, hidden_days) = days::axis(merged.iter().flat_map(|(_, m)| m.keys().copied()), range);
    if axis.is_empty() {
        empty(h, c.empty);
        return;
    }
    let value = |si: usize, day: &str| merged[si].1.get(day).copied().unwrap_or(0);
    let totals: Vec<u128> = axis
        .iter()
        .map(|d| (0..merged.len()).map(|si| value(si, d)).sum())
        .collect();
    let max = if c.line {
        axis.iter()
            .flat_map(|d| (0..merged.len()).map(move |si| value(si, d)))
            .max()
            .unwrap_or(0)
    } else {
        totals.iter().copied().max().unwrap_or(0)
    };
    let (top_v, step) = ticks(max);
    let (left, right, top, bottom) = (64.0, 14.0, 10.0, 46.0);
    let plot_w = c.width - left - right;
    let plot_h = c.height - top - bottom;
    let n = axis.len();
    let slot = plot_w / n as f64;
    let bar_w = if slot < 2.0 {
        slot
    } else {
        (slot * 0.78).min(48.0)
    };
    let y_of = |v: u128| top + plot_h - v as f64 / top_v as f64 * plot_h;
    let x_mid = |i: usize| left + (i as f64 + 0.5) * slot;

    w!(
        h,
        "<svg viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\" data-days=\"{n}\">\n",
        num(c.width),
        num(c.height),
        c.y_title
    );
    let mut t = 0u128;
    while t <= top_v {
        let y = num(y_of(t));
        w!(
            h,
            "<line class=\"grid\" x1=\"{left}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\"/><text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
            num(left + plot_w),
            num(left - 6.0),
            num(y_of(t) + 4.0),
            group(t)
        );
        t += step;
    }
    let base = num(top + plot_h);
    w!(
        h,
        "<line class=\"axis\" x1=\"{left}\" x2=\"{}\" y1=\"{base}\" y2=\"{base}\"/>\n",
        num(left + plot_w)
    );
    // Day labels: as many as fit (about 80 px each), always including the first.
    let every = n.div_ceil(((plot_w / 80.0) as usize).max(1)).max(1);
    for (i, day) in axis.iter().enumerate().step_by(every) {
        let label = clip(day);
        w!(
            h,
            "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}<title>{}</title></text>\n",
            num(x_mid(i)),
            num(top + plot_h + 15.0),
            esc(&short(&label, 12)),
            esc(&label)
        );
    }
    w!(
        h,
        "<text class=\"axis-title\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">Day (UTC)</text>\n<text class=\"axis-title\" transform=\"rotate(-90)\" x=\"{}\" y=\"14\" text-anchor=\"middle\">{}</text>\n",
        num(left + plot_w / 2.0),
        num(c.height - 6.0),
        num(-(top + plot_h / 2.0)),
        c.y_title
    );
    let names: Vec<String> = merged.iter().map(|(name, _)| clip(name)).collect();
    if c.line {
        for (si, name) in names.iter().enumerate() {
            let pts: Vec<String> = (0..n)
                .map(|i| format!("{},{}", num(x_mid(i)), num(y_of(value(si, &axis[i])))))
                .collect();
            w!(
                h,
                "<polyline class=\"line s{}\" points=\"{}\"><title>{}</title></polyline>\n",
                color_of(si, c),
                pts.join(" "),
                esc(name)
            );
        }
    }
    let r = if slot >= 8.0 { 3.0 } else { 1.5 };
    for (i, day) in axis.iter().enumerate() {
        let dayc = esc(&clip(day));
        w!(h, "<g data-day=\"{dayc}\" data-total=\"{}\">", totals[i]);
        let mut cum = 0u128;
        for (si, name) in names.iter().enumerate() {
            let v = value(si, day);
            let attrs = format!(
                "data-series=\"{}\" data-day=\"{dayc}\" data-value=\"{v}\"",
                esc(name)
            );
            let tip = format!("{dayc} · {}: {}", esc(name), group(v));
            if c.line {
                w!(
                    h,
                    "<circle class=\"pt s{}\" {attrs} cx=\"{}\" cy=\"{}\" r=\"{r}\"><title>{tip}</title></circle>",
                    color_of(si, c),
                    num(x_mid(i)),
                    num(y_of(v))
                );
            } else if v > 0 {
                let y1 = y_of(cum + v);
                let y0 = y_of(cum);
                w!(
                    h,
                    "<rect class=\"bar s{}\" {attrs} x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{tip}</title></rect>",
                    color_of(si, c),
                    num(x_mid(i) - bar_w / 2.0),
                    num(y1),
                    num(bar_w),
                    num((y0 - y1).max(0.5))
                );
            }
            cum += v;
        }
        h.push_str("</g>\n");
    }
    h.push_str("</svg>\n<ul class=\"legend\">\n");
    for (si, name) in names.iter().enumerate() {
        let total: u128 = merged[si].1.values().sum();
        w!(
            h,
            "<li data-series=\"{}\" data-total=\"{total}\"><span class=\"sw s{}\"></span><span title=\"{0}\">{}</span><span class=\"val\">{}</span></li>\n",
            esc(name),
            color_of(si, c),
            esc(&short(name, 40)),
            group(total)
        );
    }
    h.push_str("</ul>\n");
    if hidden_days > 0 {
        w!(
            h,
            "<p class=\"note\" data-hidden-days=\"{hidden_days}\">{} earlier days not shown</p>\n",
            group(hidden_days as u128)
        );
    }
    if hidden_series > 0 {
        w!(
            h,
            "<p class=\"note\" data-hidden-series=\"{hidden_series}\">{} more series not shown</p>\n",
            group(hidden_series as u128)
        );
    }
}

fn color_of(si: usize, c: &DayChart) -> usize {
    if c.line { 3 } else { si % 8 }
}

/// The events table: newest first (by `time` as text), at most [`MAX_ROWS`] rows.
fn events_table(h: &mut String, events: &[InsightEvent]) {
    h.push_str("<div class=\"chart\" data-chart=\"insight-events\">\n");
    if events.is_empty() {
        empty(h, NO_INSIGHTS);
        h.push_str("</div>\n");
        return;
    }
    let mut order: Vec<&InsightEvent> = events.iter().collect();
    order.sort_by(|a, b| b.time.cmp(&a.time));
    let shown = &order[..order.len().min(MAX_ROWS)];
    h.push_str("<div class=\"table-wrap\"><table>\n<thead><tr><th>Time</th><th>State</th><th>Insight type</th><th>Event source</th><th>Event name</th><th>Account</th><th>Region</th><th class=\"num\">Baseline avg</th><th class=\"num\">Insight avg</th><th class=\"num\">Duration (min)</th><th>Top user</th><th>Top user agent</th><th>Top error code</th></tr></thead>\n<tbody>\n");
    for (i, e) in shown.iter().enumerate() {
        w!(h, "<tr data-row=\"{i}\">");
        text_cell(h, "time", &e.time, 25);
        let state = clip(&e.state);
        let badge = match e.state.as_str() {
            "Start" => " start",
            "End" => " end",
            _ => "",
        };
        w!(
            h,
            "<td data-field=\"state\" data-value=\"{}\"><span class=\"badge{badge}\">{}</span></td>",
            esc(&state),
            esc(&short(&state, 12))
        );
        text_cell(h, "insight_type", &e.insight_type, 22);
        text_cell(h, "event_source", &e.event_source, 30);
        text_cell(h, "event_name", &e.event_name, 30);
        text_cell(h, "account", &e.account, 14);
        text_cell(h, "region", &e.region, 16);
        float_cell(h, "baseline_average", e.baseline_average);
        float_cell(h, "insight_average", e.insight_average);
        match e.duration_minutes {
            Some(m) => w!(
                h,
                "<td class=\"num\" data-field=\"duration_minutes\" data-value=\"{m}\">{}</td>",
                group(u128::from(m))
            ),
            None => h.push_str("<td class=\"num\" data-field=\"duration_minutes\">—</td>"),
        }
        opt_cell(h, "top_user", e.top_user.as_deref(), 40);
        opt_cell(h, "top_user_agent", e.top_user_agent.as_deref(), 32);
        opt_cell(h, "top_error_code", e.top_error_code.as_deref(), 24);
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table></div>\n");
    let hidden = order.len() - shown.len();
    if hidden > 0 {
        w!(
            h,
            "<p class=\"note\" data-hidden=\"{hidden}\">{} older events not shown (showing the newest {})</p>\n",
            group(hidden as u128),
            group(shown.len() as u128)
        );
    }
    h.push_str("</div>\n");
}

fn text_cell(h: &mut String, field: &str, v: &str, max: usize) {
    let full = clip(v);
    let shown = short(&full, max);
    if shown == full {
        w!(
            h,
            "<td data-field=\"{field}\" data-value=\"{}\">{}</td>",
            esc(&full),
            esc(&shown)
        );
    } else {
        w!(
            h,
            "<td data-field=\"{field}\" data-value=\"{}\" title=\"{0}\">{}</td>",
            esc(&full),
            esc(&shown)
        );
    }
}

fn opt_cell(h: &mut String, field: &str, v: Option<&str>, max: usize) {
    match v {
        Some(v) => text_cell(h, field, v, max),
        None => w!(h, "<td data-field=\"{field}\">—</td>"),
    }
}

/// A float: `data-value` is Rust's shortest round-trip form (`NaN`, `inf` and `-inf` included),
/// the text two decimals (a dash when not finite).
fn float_cell(h: &mut String, field: &str, v: f64) {
    let shown = if v.is_finite() {
        format!("{v:.2}")
    } else {
        "—".into()
    };
    w!(
        h,
        "<td class=\"num\" data-field=\"{field}\" data-value=\"{v}\">{shown}</td>"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(ticks(0), (1, 1));
        assert_eq!(ticks(1), (1, 1));
        assert_eq!(ticks(7), (8, 2));
        assert_eq!(ticks(100), (100, 20));
        assert_eq!(ticks(101), (150, 50));
        let (top, step) = ticks(u128::from(u64::MAX) * 1000);
        assert!(top >= u128::from(u64::MAX) * 1000 && top / step <= 20);
    }
}
