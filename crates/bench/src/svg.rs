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

#[cfg(test)]
mod tests {
    use super::*;

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
