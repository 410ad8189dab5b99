//! The Prometheus text exposition format (version 0.0.4), written here because the Rust
//! client crates have no summary type, and ZooKeeper's dashboards read summaries
//! (`readlatency{quantile="0.5"}`, `fsynctime_sum`, ...).

use super::{Kind, Sample, Value, LATENCY_BUCKETS, QUANTILES};
use std::fmt::Write;

/// The content type Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The quantiles ZooKeeper's provider exports (a subset of [`QUANTILES`]).
const EXPORTED: [f64; 3] = [0.5, 0.9, 0.99];

/// Renders samples; text samples have no place in Prometheus and are left out.
pub fn render(samples: &[Sample]) -> String {
    let mut out = String::with_capacity(16 * 1024);
    for s in samples {
        let kind = match (&s.value, s.kind) {
            (Value::Text(_), _) => continue,
            (Value::Summary(_), _) => "summary",
            (Value::Histograms(..), _) => "histogram",
            (_, Kind::Gauge) => "gauge",
            (_, Kind::Counter) => "counter",
        };
        let _ = writeln!(out, "# HELP {} {}", s.name, escape_help(s.help));
        let _ = writeln!(out, "# TYPE {} {kind}", s.name);
        match &s.value {
            Value::Text(_) => {}
            Value::Int(v) => {
                let _ = writeln!(out, "{} {v}", s.name);
            }
            Value::Float(v) => {
                let _ = writeln!(out, "{} {}", s.name, float(*v));
            }
            Value::Summary(v) => {
                if let Some(q) = &v.quantiles {
                    for want in EXPORTED {
                        if let Some(i) = QUANTILES.iter().position(|p| *p == want) {
                            let _ = writeln!(out, "{}{{quantile=\"{want}\"}} {}", s.name, q[i]);
                        }
                    }
                }
                let _ = writeln!(out, "{}_count {}", s.name, v.count);
                let _ = writeln!(out, "{}_sum {}", s.name, v.sum);
            }
            Value::Histograms(label, hs) => {
                for (lv, h) in hs {
                    let lv = escape_label(lv);
                    for (b, c) in LATENCY_BUCKETS.iter().zip(&h.cumulative) {
                        let _ = writeln!(
                            out,
                            "{}_bucket{{{label}=\"{lv}\",le=\"{}\"}} {c}",
                            s.name,
                            float(*b)
                        );
                    }
                    let _ = writeln!(
                        out,
                        "{}_bucket{{{label}=\"{lv}\",le=\"+Inf\"}} {}",
                        s.name, h.count
                    );
                    let _ = writeln!(
                        out,
                        "{}_sum{{{label}=\"{lv}\"}} {}",
                        s.name,
                        float(h.sum_seconds)
                    );
                    let _ = writeln!(out, "{}_count{{{label}=\"{lv}\"}} {}", s.name, h.count);
                }
            }
        }
    }
    out
}

fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Sample, SummaryView};

    #[test]
    fn renders_each_kind() {
        let s = vec![
            Sample::gauge("znode_count", "Znodes", Value::Int(5)),
            Sample::gauge("server_state", "State", Value::Text("leader".into())),
            Sample::counter("snap_count", "Snapshots", Value::Int(2)),
            Sample::gauge(
                "readlatency",
                "Read latency",
                Value::Summary(SummaryView {
                    count: 3,
                    sum: 6,
                    min: 1,
                    max: 3,
                    quantiles: Some([2, 3, 3, 3, 3]),
                }),
            ),
        ];
        let text = render(&s);
        assert!(text.contains("# TYPE znode_count gauge\nznode_count 5\n"));
        assert!(!text.contains("server_state"));
        assert!(text.contains("# TYPE snap_count counter\nsnap_count 2\n"));
        assert!(text.contains("readlatency{quantile=\"0.5\"} 2\n"));
        assert!(text.contains("readlatency{quantile=\"0.99\"} 3\n"));
        assert!(text.contains("readlatency_count 3\nreadlatency_sum 6\n"));
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape_label("a\"b\\c"), "a\\\"b\\\\c");
    }
}
