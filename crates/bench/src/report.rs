//! Output: a fixed-width table for people and JSON lines for tools (hand-written JSON, so the
//! bench needs no serialisation crate).

use crate::workload::WorkloadResult;
use std::fmt::Write as _;

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number (non-finite values become null).
pub fn json_num(v: f64) -> String {
    if v.is_finite() {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_owned()
    } else {
        "null".to_owned()
    }
}

/// Nanoseconds as milliseconds with sensible precision.
pub fn ms(ns: u64) -> String {
    let v = ns as f64 / 1e6;
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Megabytes (10^6) with one decimal.
pub fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

/// Thousands separators for counts and rates.
pub fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

impl WorkloadResult {
    /// The result as one JSON line.
    pub fn to_json(&self) -> String {
        let servers: Vec<String> = self
            .servers
            .iter()
            .map(|u| {
                format!(
                    "{{\"pid\":{},\"cpu_pct\":{},\"rss_bytes\":{}}}",
                    u.pid,
                    json_num(u.cpu_pct),
                    u.rss_bytes
                )
            })
            .collect();
        let errs: Vec<String> = self
            .error_detail
            .iter()
            .map(|(k, v)| format!("{}:{v}", json_str(k)))
            .collect();
        format!(
            "{{\"kind\":\"workload\",\"workload\":{},\"label\":{},\"sessions\":{},\"inflight\":{},\"ops\":{},\"secs\":{},\"ops_per_sec\":{},\"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{},\"mean_us\":{},\"errors\":{},\"error_detail\":{{{}}},\"client_cpu_pct\":{},\"client_rss_bytes\":{},\"servers\":[{}]}}",
            json_str(&self.workload),
            json_str(&self.label),
            self.sessions,
            self.inflight,
            self.ops,
            json_num(self.secs),
            json_num(self.ops_per_sec),
            json_num(self.p50_ns as f64 / 1e3),
            json_num(self.p90_ns as f64 / 1e3),
            json_num(self.p99_ns as f64 / 1e3),
            json_num(self.p999_ns as f64 / 1e3),
            json_num(self.max_ns as f64 / 1e3),
            json_num(self.mean_ns / 1e3),
            self.errors,
            errs.join(","),
            json_num(self.client_cpu_pct),
            self.client_rss_bytes,
            servers.join(",")
        )
    }

    /// Summed server CPU (% of one core) and RSS.
    pub fn server_totals(&self) -> (f64, u64) {
        (
            self.servers.iter().map(|u| u.cpu_pct).sum(),
            self.servers.iter().map(|u| u.rss_bytes).sum(),
        )
    }
}

/// Renders results as a fixed-width table.
pub fn table(results: &[WorkloadResult]) -> String {
    let header = [
        "workload",
        "target",
        "sess",
        "ops/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "errors",
        "client CPU%",
        "client RSS MB",
        "server CPU%",
        "server RSS MB",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in results {
        let (scpu, srss) = r.server_totals();
        let has_servers = !r.servers.is_empty();
        rows.push(vec![
            r.workload.clone(),
            r.label.clone(),
            format!("{}x{}", r.sessions, r.inflight),
            thousands(r.ops_per_sec),
            ms(r.p50_ns),
            ms(r.p90_ns),
            ms(r.p99_ns),
            ms(r.p999_ns),
            ms(r.max_ns),
            r.errors.to_string(),
            format!("{:.0}", r.client_cpu_pct),
            mb(r.client_rss_bytes),
            if has_servers {
                format!("{scpu:.0}")
            } else {
                "-".into()
            },
            if has_servers { mb(srss) } else { "-".into() },
        ]);
    }
    render(&rows)
}

/// Renders rows (the first is the header) with right-aligned numeric columns.
pub fn render(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, r) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c > 0 {
                line.push_str("  ");
            }
            if c < 2 || i == 0 {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if i == 0 {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * cols.saturating_sub(1)));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes() {
        assert_eq!(json_str("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(json_num(1.5), "1.5");
        assert_eq!(json_num(2.0), "2");
        assert_eq!(json_num(f64::NAN), "null");
    }

    #[test]
    fn formats() {
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(thousands(12.0), "12");
        assert_eq!(ms(1_500_000), "1.50");
        assert_eq!(ms(150_000_000), "150");
    }

    #[test]
    fn json_line_has_fields() {
        let r = WorkloadResult {
            workload: "getdata".into(),
            label: "paddock".into(),
            ops: 10,
            ..Default::default()
        };
        let j = r.to_json();
        assert!(j.starts_with('{') && j.ends_with('}'));
        assert!(j.contains("\"workload\":\"getdata\""));
        assert!(j.contains("\"errors\":0"));
    }
}
