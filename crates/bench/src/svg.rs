//! Plain SVG bar charts, written by hand so the bench needs no plotting dependency.

use std::fmt::Write as _;

/// One series of a chart (e.g. Paddock, ZooKeeper).
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// Fill colour (any SVG colour).
    pub color: String,
}

/// One horizontal grouped-bar panel: a title, a unit, and per row one value per series
/// (`None` where there is no figure).
#[derive(Debug, Clone)]
pub struct Panel {
    /// Title above the panel.
    pub title: String,
    /// Unit appended to the value labels.
    pub unit: String,
    /// (row label, one value per series).
    pub rows: Vec<(String, Vec<Option<f64>>)>,
}

/// The two systems every comparison charts, in their colours.
pub fn paddock_and_zookeeper() -> [Series; 2] {
    [
        Series {
            name: "Paddock".into(),
            color: "#2a7ab9".into(),
        },
        Series {
            name: "ZooKeeper".into(),
            color: "#e8872b".into(),
        },
    ]
}

const WIDTH: f64 = 900.0;
const LABEL_W: f64 = 130.0;
const BAR_AREA: f64 = 620.0;
const BAR_H: f64 = 11.0;
const ROW_GAP: f64 = 9.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Formats a value for a bar label: thousands for big numbers, 2-3 significant digits for small.
pub fn fmt_value(v: f64) -> String {
    if v >= 1000.0 {
        crate::report::thousands(v)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Renders panels one under another, with a legend on top. Lines of `title` after the first
/// are printed smaller, as a subtitle.
pub fn chart(title: &str, series: &[Series], panels: &[Panel]) -> String {
    let mut body = String::new();
    let mut lines = title.lines();
    let head = esc(lines.next().unwrap_or(""));
    let mut extra = 0.0;
    for l in lines {
        extra += 16.0;
        let _ = write!(
            body,
            r#"<text x="10" y="{}" class="l">{}</text>"#,
            22.0 + extra,
            esc(l)
        );
    }
    let mut y = 56.0 + extra;
    // Legend.
    let mut x = LABEL_W;
    for s in series {
        let _ = write!(
            body,
            r#"<rect x="{x}" y="{}" width="12" height="12" fill="{}"/><text x="{}" y="{}" class="l">{}</text>"#,
            34.0 + extra,
            esc(&s.color),
            x + 16.0,
            44.0 + extra,
            esc(&s.name)
        );
        x += 24.0 + 8.0 * s.name.len() as f64;
    }
    for p in panels {
        y += 18.0;
        let _ = write!(
            body,
            r#"<text x="10" y="{y}" class="h">{}</text>"#,
            esc(&p.title)
        );
        y += 10.0;
        let max = p
            .rows
            .iter()
            .flat_map(|(_, v)| v.iter().flatten().copied())
            .fold(0.0f64, f64::max);
        let scale = if max > 0.0 { BAR_AREA / max } else { 0.0 };
        for (label, vals) in &p.rows {
            let group_h = BAR_H * series.len() as f64;
            let _ = write!(
                body,
                r#"<text x="{}" y="{}" class="r">{}</text>"#,
                LABEL_W - 8.0,
                y + group_h / 2.0 + 4.0,
                esc(label)
            );
            for (i, s) in series.iter().enumerate() {
                let by = y + BAR_H * i as f64;
                match vals.get(i).copied().flatten() {
                    Some(v) => {
                        let w = (v * scale).max(0.5);
                        let _ = write!(
                            body,
                            r#"<rect x="{LABEL_W}" y="{by}" width="{w:.1}" height="{}" fill="{}"><title>{}: {} {}</title></rect><text x="{:.1}" y="{}" class="v">{} {}</text>"#,
                            BAR_H - 1.0,
                            esc(&s.color),
                            esc(&s.name),
                            fmt_value(v),
                            esc(&p.unit),
                            LABEL_W + w + 4.0,
                            by + BAR_H - 2.0,
                            fmt_value(v),
                            esc(&p.unit)
                        );
                    }
                    None => {
                        let _ = write!(
                            body,
                            r#"<text x="{}" y="{}" class="v">{}: no figure</text>"#,
                            LABEL_W + 4.0,
                            by + BAR_H - 2.0,
                            esc(&s.name)
                        );
                    }
                }
            }
            y += group_h + ROW_GAP;
        }
    }
    let height = y + 16.0;
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">
<style>.t{{font-size:16px;font-weight:bold}}.h{{font-size:14px;font-weight:bold}}.l{{font-size:12px}}.r{{font-size:11px;text-anchor:end}}.v{{font-size:10px;fill:#333}}</style>
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" class="t">{head}</text>
{body}
</svg>
"#
    )
}

/// One panel of a line chart: a figure against size, both axes on a log scale.
#[derive(Debug, Clone)]
pub struct LinePanel {
    /// Title above the panel.
    pub title: String,
    /// Unit appended to the axis labels.
    pub unit: String,
    /// The sizes (x), in order.
    pub xs: Vec<f64>,
    /// Per series, one value per size (`None` where there is no figure).
    pub ys: Vec<Vec<Option<f64>>>,
}

const PLOT_W: f64 = 360.0;
const PLOT_H: f64 = 170.0;

/// Log-log line charts of figures against size, two panels a row, legend on top: how each
/// cost grows with the size at a glance. Points without a figure are left out.
pub fn line_chart(title: &str, series: &[Series], panels: &[LinePanel]) -> String {
    let mut body = String::new();
    let mut x = 20.0;
    for s in series {
        let _ = write!(
            body,
            r#"<rect x="{x}" y="34" width="12" height="12" fill="{}"/><text x="{}" y="44" class="l">{}</text>"#,
            esc(&s.color),
            x + 16.0,
            esc(&s.name)
        );
        x += 24.0 + 8.0 * s.name.len() as f64;
    }
    let log = |v: f64| v.max(1e-9).log10();
    let rows = panels.len().div_ceil(2);
    for (i, p) in panels.iter().enumerate() {
        let ox = 70.0 + (i % 2) as f64 * (PLOT_W + 90.0);
        let oy = 80.0 + (i / 2) as f64 * (PLOT_H + 70.0);
        let _ = write!(
            body,
            r#"<text x="{}" y="{}" class="h">{}</text>"#,
            ox - 50.0,
            oy - 12.0,
            esc(&p.title)
        );
        let vals: Vec<f64> =
            p.ys.iter()
                .flatten()
                .flatten()
                .copied()
                .filter(|v| *v > 0.0)
                .collect();
        if p.xs.is_empty() || vals.is_empty() {
            let _ = write!(
                body,
                r#"<text x="{ox}" y="{}" class="v">no figure</text>"#,
                oy + 20.0
            );
            continue;
        }
        let (x0, x1) = (log(p.xs[0]), log(*p.xs.last().unwrap_or(&p.xs[0])));
        let (mut y0, mut y1) = vals.iter().fold((f64::MAX, f64::MIN), |(a, b), v| {
            (a.min(log(*v)), b.max(log(*v)))
        });
        y0 = y0.floor();
        y1 = y1.ceil().max(y0 + 1.0);
        let px = |v: f64| {
            ox + if x1 > x0 {
                (log(v) - x0) / (x1 - x0) * PLOT_W
            } else {
                PLOT_W / 2.0
            }
        };
        let py = |v: f64| oy + PLOT_H - (log(v) - y0) / (y1 - y0) * PLOT_H;
        let _ = write!(
            body,
            r##"<rect x="{ox}" y="{oy}" width="{PLOT_W}" height="{PLOT_H}" fill="none" stroke="#999"/>"##
        );
        // Decades on the value axis, the sizes on the other.
        let mut d = y0;
        while d <= y1 {
            let y = oy + PLOT_H - (d - y0) / (y1 - y0) * PLOT_H;
            let _ = write!(
                body,
                r##"<line x1="{ox}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" class="r">{} {}</text>"##,
                ox + PLOT_W,
                ox - 4.0,
                y + 4.0,
                fmt_value(10f64.powf(d)),
                esc(&p.unit)
            );
            d += 1.0;
        }
        for &xv in &p.xs {
            let _ = write!(
                body,
                r#"<text x="{:.1}" y="{}" class="c">{}</text>"#,
                px(xv),
                oy + PLOT_H + 14.0,
                fmt_value(xv)
            );
        }
        for (s, ys) in series.iter().zip(&p.ys) {
            let pts: Vec<(f64, f64)> =
                p.xs.iter()
                    .zip(ys)
                    .filter_map(|(&xv, y)| y.filter(|v| *v > 0.0).map(|v| (xv, v)))
                    .collect();
            let line: Vec<String> = pts
                .iter()
                .map(|&(xv, v)| format!("{:.1},{:.1}", px(xv), py(v)))
                .collect();
            let _ = write!(
                body,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
                line.join(" "),
                esc(&s.color)
            );
            for (xv, v) in pts {
                let _ = write!(
                    body,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"><title>{}: {} {} at {}</title></circle>"#,
                    px(xv),
                    py(v),
                    esc(&s.color),
                    esc(&s.name),
                    fmt_value(v),
                    esc(&p.unit),
                    fmt_value(xv)
                );
            }
        }
    }
    let height = 80.0 + rows as f64 * (PLOT_H + 70.0);
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">
<style>.t{{font-size:16px;font-weight:bold}}.h{{font-size:13px;font-weight:bold}}.l{{font-size:12px}}.r{{font-size:10px;text-anchor:end}}.c{{font-size:10px;text-anchor:middle}}.v{{font-size:10px;fill:#333}}</style>
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" class="t">{}</text>
{body}
</svg>
"#,
        esc(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_charts_place_points_on_log_axes_and_skip_missing_ones() {
        let s = line_chart(
            "sweep",
            &[
                Series {
                    name: "A".into(),
                    color: "#1f77b4".into(),
                },
                Series {
                    name: "B".into(),
                    color: "#ff7f0e".into(),
                },
            ],
            &[LinePanel {
                title: "restart".into(),
                unit: "s".into(),
                xs: vec![1e5, 1e6, 1e7],
                ys: vec![
                    vec![Some(0.1), Some(1.0), Some(10.0)],
                    vec![Some(1.0), None, Some(100.0)],
                ],
            }],
        );
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        // A's points sit on a straight line a decade apart: equal steps on both axes.
        assert_eq!(
            s.matches("<circle").count(),
            5,
            "the missing point is left out"
        );
        assert!(s.contains("A: 0.10 s at 100,000"));
        assert!(s.contains("B: 100 s at 10,000,000"));
    }

    #[test]
    fn renders_bars_and_missing_values() {
        let s = chart(
            "t <1>\nsub",
            &[
                Series {
                    name: "A".into(),
                    color: "#1f77b4".into(),
                },
                Series {
                    name: "B".into(),
                    color: "#ff7f0e".into(),
                },
            ],
            &[Panel {
                title: "ops/s".into(),
                unit: "ops/s".into(),
                rows: vec![("get".into(), vec![Some(100.0), None])],
            }],
        );
        assert!(s.starts_with("<svg"));
        assert!(s.contains("t &lt;1&gt;"));
        assert!(s.contains("width=\"620.0\""));
        assert!(s.contains("B: no figure"));
        assert!(s.contains(">sub</text>"));
        assert!(s.trim_end().ends_with("</svg>"));
    }
}
