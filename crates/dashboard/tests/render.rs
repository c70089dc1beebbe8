//! The page as a whole: panels, values read back from `data-*` attributes, caps, escaping of
//! hostile data, determinism, and no panic on extreme input.

#[path = "../examples/fixtures/mod.rs"]
mod fixtures;

use std::collections::BTreeMap;

use trailhouse_dashboard::text::clip;
use trailhouse_dashboard::{
    Count, Dashboard, InsightEvent, MAX_BARS, MAX_ROWS, MAX_SERIES, MAX_TOP_USERS, Series, render,
};

const PANELS: [&str; 7] = [
    "insight-types",
    "insights-by-date",
    "call-rate-by-source",
    "error-rate-by-source",
    "top-users",
    "insight-events",
    "activity-overview",
];

/// Every element the page may contain; anything else would come from the data.
const TAGS: [&str; 33] = [
    "!DOCTYPE",
    "html",
    "head",
    "meta",
    "link",
    "title",
    "style",
    "body",
    "main",
    "header",
    "footer",
    "h1",
    "h2",
    "p",
    "strong",
    "dl",
    "dt",
    "dd",
    "div",
    "section",
    "figure",
    "figcaption",
    "ul",
    "li",
    "span",
    "svg",
    "g",
    "rect",
    "circle",
    "line",
    "polyline",
    "text",
    "table",
];
const TABLE_TAGS: [&str; 5] = ["thead", "tbody", "tr", "th", "td"];

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[derive(Debug)]
struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn get(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.0 == name)
            .map(|a| a.1.as_str())
    }
}

/// A small tokenizer for this page's markup (double-quoted attributes, no comments). Panics
/// (fails the test) on anything it does not expect, which is the point.
fn tags(html: &str) -> Vec<Tag> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>').expect("unclosed tag");
        let body = rest[..end].trim_end_matches('/');
        rest = &rest[end + 1..];
        let closing = body.starts_with('/');
        let body = body.trim_start_matches('/');
        let name_end = body.find(|c: char| c.is_whitespace()).unwrap_or(body.len());
        let name = body[..name_end].to_string();
        let mut attrs = Vec::new();
        let mut a = body[name_end..].trim_start();
        while !a.is_empty() {
            let eq = a.find('=').unwrap_or(a.len());
            let sp = a.find(char::is_whitespace).unwrap_or(a.len());
            if sp < eq || eq == a.len() {
                attrs.push((a[..sp].to_string(), String::new()));
                a = a[sp..].trim_start();
                continue;
            }
            let key = a[..eq].to_string();
            assert!(
                a[eq + 1..].starts_with('"'),
                "unquoted attribute {key} in <{name}>"
            );
            let v = &a[eq + 2..];
            let close = v.find('"').expect("unclosed attribute");
            let raw = &v[..close];
            assert!(
                !raw.contains('<') && !raw.contains('>'),
                "raw markup in attribute {key}: {raw}"
            );
            attrs.push((key, unescape(raw)));
            a = v[close + 1..].trim_start();
        }
        if !closing {
            out.push(Tag {
                name: name.clone(),
                attrs,
            });
        }
        if name == "style" && !closing {
            let close = rest.find("</style>").expect("unclosed style");
            rest = &rest[close..];
        }
    }
    out
}

/// The structure of the page admits no markup from the data.
fn assert_safe(html: &str) {
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "a script tag in the page");
    assert!(!lower.contains("javascript:"));
    assert!(!lower.contains("<img"));
    assert!(!lower.contains("<![cdata["));
    assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
    assert!(
        html.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none';")
    );
    for t in tags(html) {
        assert!(
            TAGS.contains(&t.name.as_str()) || TABLE_TAGS.contains(&t.name.as_str()),
            "unexpected element <{}>",
            t.name
        );
        for (k, _) in &t.attrs {
            assert!(
                !k.to_ascii_lowercase().starts_with("on"),
                "event handler attribute {k}"
            );
            assert!(
                k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') || t.name == "!DOCTYPE",
                "odd attribute {k:?}"
            );
        }
    }
}

/// The markup of one chart (`data-chart="…"`), up to the next chart.
fn chart<'a>(html: &'a str, name: &str) -> &'a str {
    let marker = format!("data-chart=\"{name}\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no chart {name}"));
    let after = &html[start + marker.len()..];
    let end = after
        .find("data-chart=\"")
        .map_or(html.len(), |e| start + marker.len() + e);
    // Up to the tag that holds the next chart's marker.
    let end = if end == html.len() {
        end
    } else {
        html[..end].rfind('<').unwrap_or(end)
    };
    &html[start..end]
}

fn label_values(html: &str, name: &str) -> Vec<(String, u128)> {
    tags(chart(html, name))
        .iter()
        .filter(|t| t.name == "g" || t.name == "li")
        .filter_map(|t| {
            Some((
                t.get("data-label")?.to_string(),
                t.get("data-value")?.parse().ok()?,
            ))
        })
        .collect()
}

fn expected_counts(items: &[Count], cap: usize) -> Vec<(String, u128)> {
    let mut m: BTreeMap<&str, u128> = BTreeMap::new();
    for c in items {
        *m.entry(&c.label).or_default() += u128::from(c.count);
    }
    let mut v: Vec<(String, u128)> = m.into_iter().map(|(l, c)| (clip(l), c)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(cap);
    v
}

/// (series, day) → value of every drawn bar or point with a non-zero value.
fn series_values(html: &str, name: &str) -> BTreeMap<(String, String), u128> {
    tags(chart(html, name))
        .iter()
        .filter(|t| t.name == "rect" || t.name == "circle")
        .filter_map(|t| {
            Some((
                (
                    t.get("data-series")?.to_string(),
                    t.get("data-day")?.to_string(),
                ),
                t.get("data-value")?.parse().ok()?,
            ))
        })
        .filter(|(_, v)| *v > 0)
        .collect()
}

fn expected_series(series: &[Series]) -> BTreeMap<(String, String), u128> {
    let mut m = BTreeMap::new();
    for s in series {
        for (d, v) in &s.points {
            *m.entry((clip(&s.name), clip(d))).or_default() += u128::from(*v);
        }
    }
    m.retain(|_, v| *v > 0);
    m
}

fn panels_in_order(html: &str) -> Vec<String> {
    tags(html)
        .iter()
        .filter(|t| t.name == "section")
        .filter_map(|t| t.get("data-panel").map(str::to_string))
        .collect()
}

#[test]
fn every_panel_once_in_every_fixture() {
    for v in fixtures::VARIANTS {
        let html = render(&fixtures::by_name(v).unwrap());
        assert_eq!(panels_in_order(&html), PANELS, "{v}");
        assert_safe(&html);
    }
}

#[test]
fn values_shown_equal_values_given() {
    let d = fixtures::rich();
    let html = render(&d);
    assert_eq!(
        label_values(&html, "insight-types"),
        expected_counts(&d.insight_types, 100)
    );
    assert_eq!(
        label_values(&html, "call-rate-by-source"),
        expected_counts(&d.call_rate_by_source, MAX_BARS)
    );
    assert_eq!(
        label_values(&html, "error-rate-by-source"),
        expected_counts(&d.error_rate_by_source, MAX_BARS)
    );
    assert_eq!(
        label_values(&html, "top-users"),
        expected_counts(&d.top_users, MAX_TOP_USERS)
    );
    assert_eq!(
        label_values(&html, "top-principals"),
        expected_counts(&d.top_principals, MAX_BARS)
    );
    assert_eq!(
        series_values(&html, "insights-by-date"),
        expected_series(&d.insights_by_date)
    );
    assert_eq!(
        series_values(&html, "events-by-day"),
        expected_series(&d.events_by_day)
    );
    let errors = [Series {
        name: "Errors".into(),
        points: d.errors_by_day.clone(),
    }];
    assert_eq!(
        series_values(&html, "errors-by-day"),
        expected_series(&errors)
    );
    // Every day of the range is on the axes, zero days included, sorted.
    for name in ["insights-by-date", "events-by-day", "errors-by-day"] {
        let days: Vec<String> = tags(chart(&html, name))
            .iter()
            .filter(|t| t.name == "g")
            .filter_map(|t| t.get("data-day").map(str::to_string))
            .collect();
        let want: Vec<String> = (1..=30).map(|d| format!("2026-03-{d:02}")).collect();
        assert_eq!(days, want, "{name}");
    }
    // The table: newest first, every field.
    let rows: Vec<Tag> = tags(chart(&html, "insight-events"))
        .into_iter()
        .filter(|t| t.name == "td")
        .collect();
    assert_eq!(rows.len(), d.insight_events.len() * 13);
    let mut events = d.insight_events.clone();
    events.sort_by(|a, b| b.time.cmp(&a.time));
    for (cells, e) in rows.chunks(13).zip(&events) {
        let f = |name: &str| {
            cells
                .iter()
                .find(|c| c.get("data-field") == Some(name))
                .and_then(|c| c.get("data-value"))
                .map(str::to_string)
        };
        assert_eq!(f("time"), Some(clip(&e.time)));
        assert_eq!(f("state"), Some(clip(&e.state)));
        assert_eq!(f("event_name"), Some(clip(&e.event_name)));
        assert_eq!(f("event_source"), Some(clip(&e.event_source)));
        assert_eq!(
            f("baseline_average").and_then(|v| v.parse::<f64>().ok()),
            Some(e.baseline_average)
        );
        assert_eq!(
            f("insight_average").and_then(|v| v.parse::<f64>().ok()),
            Some(e.insight_average)
        );
        assert_eq!(
            f("duration_minutes").and_then(|v| v.parse::<u64>().ok()),
            e.duration_minutes
        );
        assert_eq!(f("top_user"), e.top_user.as_deref().map(clip));
        assert_eq!(f("top_user_agent"), e.top_user_agent.as_deref().map(clip));
        assert_eq!(f("top_error_code"), e.top_error_code.as_deref().map(clip));
    }
    // Header.
    let t = tags(&html);
    let meta = |m: &str| t.iter().find(|t| t.get("data-meta") == Some(m)).unwrap();
    assert_eq!(meta("lake").get("data-value"), Some(d.lake.as_str()));
    assert_eq!(meta("range").get("data-from"), Some("2026-03-01"));
    assert_eq!(
        meta("generated-at").get("data-value"),
        Some(d.generated_at.as_str())
    );
}

fn hostile() -> Dashboard {
    let evil = [
        fixtures::XSS_SCRIPT,
        fixtures::XSS_SVG,
        fixtures::XSS_ATTR,
        fixtures::CONTROL,
        "<!--",
        "<![CDATA[x]]>",
        "</style><script>x</script>",
        "&lt;already&gt; &amp;",
        "\u{0}",
        "",
        " ",
    ];
    let mut d = Dashboard {
        title: evil.join(" "),
        lake: fixtures::XSS_SVG.into(),
        generated_at: fixtures::XSS_SCRIPT.into(),
        range: Some((fixtures::XSS_ATTR.into(), "</svg>".into())),
        ..Dashboard::default()
    };
    for (i, e) in evil.iter().enumerate() {
        let c = Count::new(*e, i as u64 + 1);
        d.insight_types.push(c.clone());
        d.call_rate_by_source.push(c.clone());
        d.error_rate_by_source.push(c.clone());
        d.top_users.push(c.clone());
        d.top_principals.push(c);
        d.insights_by_date.push(Series {
            name: e.to_string(),
            points: vec![(e.to_string(), 1), ("2026-01-01".into(), 2)],
        });
        d.events_by_day.push(Series {
            name: e.to_string(),
            points: vec![(e.to_string(), 3)],
        });
        d.errors_by_day.push((e.to_string(), 4));
        d.insight_events.push(InsightEvent {
            time: e.to_string(),
            state: e.to_string(),
            insight_type: e.to_string(),
            event_source: e.to_string(),
            event_name: e.to_string(),
            account: e.to_string(),
            region: e.to_string(),
            baseline_average: f64::NAN,
            insight_average: f64::INFINITY,
            duration_minutes: Some(u64::MAX),
            top_user: Some(e.to_string()),
            top_user_agent: Some(e.repeat(500)),
            top_error_code: Some(e.to_string()),
        });
    }
    d
}

#[test]
fn hostile_strings_never_become_markup() {
    let d = hostile();
    let html = render(&d);
    assert_safe(&html);
    assert!(
        !html.contains('\u{0}')
            && !html.contains('\r')
            && !html.contains('\u{1b}')
            && !html.contains('\u{202e}')
    );
    // And they are all there, as text.
    let labels: Vec<String> = label_values(&html, "top-principals")
        .into_iter()
        .map(|l| l.0)
        .collect();
    for e in [
        fixtures::XSS_SCRIPT,
        fixtures::XSS_SVG,
        fixtures::XSS_ATTR,
        "<![CDATA[x]]>",
    ] {
        assert!(labels.contains(&e.to_string()), "{e} not read back");
    }
    assert!(labels.contains(&clip(fixtures::CONTROL)));
    // Odd day strings: no gap filling, but every point is still drawn (of the first
    // MAX_SERIES series by name; the rest are counted).
    let mut first = d.insights_by_date.clone();
    first.sort_by(|a, b| a.name.cmp(&b.name));
    first.truncate(MAX_SERIES);
    assert_eq!(
        series_values(&html, "insights-by-date"),
        expected_series(&first)
    );
    assert!(chart(&html, "insights-by-date").contains(&format!(
        "data-hidden-series=\"{}\"",
        d.insights_by_date.len() - MAX_SERIES
    )));
    let rich = render(&fixtures::rich());
    assert_safe(&rich);
    assert!(rich.contains("&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;"));
}

#[test]
fn empty_panels_say_so() {
    let html = render(&fixtures::empty());
    assert_eq!(html.matches("No insights in this range").count(), 6);
    for m in [
        "No events in this range",
        "No errors in this range",
        "No principals in this range",
    ] {
        assert_eq!(html.matches(m).count(), 1, "{m}");
    }
    assert_eq!(html.matches("data-empty=\"true\"").count(), 9);
    assert!(!html.contains("<svg"), "no chart drawn for no data");
    // Only zeros is no data either, for the donut and the per-day charts.
    let zeros = Dashboard {
        insight_types: vec![Count::new("ApiCallRateInsight", 0)],
        insights_by_date: vec![Series {
            name: "x".into(),
            points: vec![("2026-01-01".into(), 0)],
        }],
        ..Dashboard::default()
    };
    assert_eq!(
        render(&zeros).matches("No insights in this range").count(),
        6
    );
}

#[test]
fn one_item_everywhere() {
    let d = fixtures::one();
    let html = render(&d);
    assert_safe(&html);
    assert_eq!(
        html.matches("data-empty").count(),
        1,
        "only the error-rate panel is empty"
    );
    assert_eq!(
        label_values(&html, "insight-types"),
        vec![("ApiCallRateInsight".to_string(), 1)]
    );
    assert!(chart(&html, "insight-types").contains("data-percent=\"100.0\""));
    assert_eq!(
        label_values(&html, "top-users"),
        expected_counts(&d.top_users, 10)
    );
    assert_eq!(
        series_values(&html, "events-by-day"),
        expected_series(&d.events_by_day)
    );
    assert_eq!(
        chart(&html, "insight-events")
            .matches("<tr data-row")
            .count(),
        1
    );
}

#[test]
fn many_items_are_capped_and_counted() {
    let d = fixtures::many();
    let html = render(&d);
    assert_safe(&html);
    assert_eq!(label_values(&html, "top-users").len(), MAX_TOP_USERS);
    assert!(chart(&html, "top-users").contains("data-hidden=\"990\""));
    assert_eq!(
        label_values(&html, "call-rate-by-source"),
        expected_counts(&d.call_rate_by_source, MAX_BARS)
    );
    assert!(
        chart(&html, "call-rate-by-source")
            .contains(&format!("data-hidden=\"{}\"", 1000 - MAX_BARS))
    );
    assert_eq!(
        chart(&html, "insight-events")
            .matches("<tr data-row")
            .count(),
        MAX_ROWS
    );
    assert!(
        chart(&html, "insight-events").contains(&format!("data-hidden=\"{}\"", 1000 - MAX_ROWS))
    );
    let types = chart(&html, "insight-types");
    assert_eq!(types.matches("<li data-label").count(), 7);
    assert!(types.contains("<li data-other=\"13\""));
    let by_date = chart(&html, "insights-by-date");
    assert!(by_date.contains("data-days=\"366\""));
    assert!(by_date.contains("data-hidden-days=\"634\""));
    assert!(by_date.contains("data-hidden-series=\"12\""));
    assert!(html.len() < 4_000_000, "page of {} bytes", html.len());
}

#[test]
fn deterministic() {
    for v in fixtures::VARIANTS {
        let d = fixtures::by_name(v).unwrap();
        assert_eq!(render(&d), render(&d.clone()), "{v}");
    }
    assert_eq!(render(&hostile()), render(&hostile()));
}

#[test]
fn extreme_input_does_not_panic_and_stays_bounded() {
    let huge = "\u{1F600}<".repeat(500_000);
    let d = Dashboard {
        title: huge.clone(),
        lake: huge.clone(),
        range: Some(("0000-01-01".into(), "9999-12-31".into())),
        insight_types: vec![Count::new(&huge, u64::MAX), Count::new("b", u64::MAX)],
        insights_by_date: vec![Series {
            name: huge.clone(),
            points: vec![
                ("9999-12-31".into(), u64::MAX),
                ("0000-01-01".into(), u64::MAX),
            ],
        }],
        top_users: vec![Count::new(&huge, u64::MAX); 3],
        errors_by_day: vec![("2026-02-29".into(), u64::MAX), ("2024-02-29".into(), 1)],
        insight_events: vec![InsightEvent {
            baseline_average: f64::NEG_INFINITY,
            insight_average: f64::MAX,
            ..InsightEvent::default()
        }],
        ..Dashboard::default()
    };
    let html = render(&d);
    assert_safe(&html);
    assert!(html.len() < 200_000, "page of {} bytes", html.len());
    // Three entries of the same label are one bar with their sum.
    assert_eq!(
        label_values(&html, "top-users"),
        vec![(clip(&huge), 3 * u128::from(u64::MAX))]
    );
    let events = render(&Dashboard {
        events_by_day: vec![Series::default(); 3],
        ..Dashboard::default()
    });
    assert!(events.contains("No events in this range"));
}
