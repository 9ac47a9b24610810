//! This process's costs as Prometheus metrics, and the two text expositions.
//!
//! [`ProcessCollector`] exposes the standard process metrics every Prometheus client library
//! exports (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! `process_virtual_memory_bytes`, `process_start_time_seconds`), read from `/proc/self` at
//! scrape time, so the queries users run against Envoy or an EPP work on the mock and the router
//! too.
//!
//! [`encode`] writes a registry in the format a scraper asked for ([`Format::negotiate`]):
//! OpenMetrics when its `Accept` names `application/openmetrics-text` (Prometheus itself does),
//! else the Prometheus text format 0.0.4, as vLLM (Python's `prometheus_client`) does. The two
//! differ in where a counter's `_total` goes: OpenMetrics names the family `x` and its sample
//! `x_total`; the 0.0.4 format (the one `promtool check metrics` and Go's `expfmt.TextParser`
//! read) names both `x_total`. `prometheus-client` writes only OpenMetrics, so read by a 0.0.4
//! parser every counter was a family `x` without samples plus an untyped `x_total` without HELP.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::{TICKS_PER_S, stat_cpu_s, status_kb};

/// The standard `process_*` metrics of this process, read from `/proc/self` at each scrape.
/// Register it once per registry (`registry.register_collector(Box::new(ProcessCollector::new()))`)
/// on a registry without a prefix: the names are the standard ones.
#[derive(Debug, Clone, Copy)]
pub struct ProcessCollector {
    /// Unix time the process started, s (fixed for its life: computed once).
    start_time_s: Option<f64>,
}

impl Default for ProcessCollector {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessCollector {
    /// A collector of this process (its start time is read now).
    pub fn new() -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let boot = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        ProcessCollector {
            start_time_s: start_time_s(&stat, &boot),
        }
    }

    /// Writes the metrics from the texts of `/proc/self/stat` and `/proc/self/status`.
    fn encode_from(
        &self,
        stat: &str,
        status: &str,
        mut encoder: DescriptorEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        if !stat.is_empty() {
            let cpu = ConstCounter::new(stat_cpu_s(stat));
            cpu.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                cpu.metric_type(),
            )?)?;
        }
        for (name, field, help) in [
            (
                "process_resident_memory_bytes",
                "VmRSS",
                "Resident memory size in bytes.",
            ),
            (
                "process_virtual_memory_bytes",
                "VmSize",
                "Virtual memory size in bytes.",
            ),
        ] {
            if let Some(kb) = status_kb(status, field) {
                let g = ConstGauge::new((kb * 1024) as i64);
                g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
            }
        }
        if let Some(t) = self.start_time_s {
            let g = ConstGauge::new(t);
            g.encode(encoder.encode_descriptor(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                None,
                g.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        self.encode_from(&stat, &status, encoder)
    }
}

/// Unix start time, s, from a `/proc/…/stat` text (field 22: clock ticks after boot) and
/// `/proc/stat`'s `btime` (boot, unix s).
fn start_time_s(stat: &str, proc_stat: &str) -> Option<f64> {
    let rest = stat.rsplit_once(')')?.1;
    // Field 22 (1-based) is the 20th after the command name.
    let ticks: f64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    let btime: f64 = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(btime + ticks / TICKS_PER_S)
}

/// A text exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text (`# EOF`-terminated; counter families named without `_total`).
    OpenMetrics,
    /// The Prometheus text format 0.0.4 (what vLLM serves by default).
    Text004,
}

impl Format {
    /// The format for a request's `Accept` header: OpenMetrics if it names it, else 0.0.4 (as
    /// Python's `prometheus_client`, which vLLM uses).
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text004,
        }
    }

    /// The `Content-Type` of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text004 => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// `registry`'s exposition in `format`.
pub fn encode(registry: &Registry, format: Format) -> Result<String, std::fmt::Error> {
    let mut om = String::with_capacity(8 * 1024);
    prometheus_client::encoding::text::encode(&mut om, registry)?;
    Ok(match format {
        Format::OpenMetrics => om,
        Format::Text004 => openmetrics_to_text004(&om),
    })
}

/// Rewrites `prometheus-client`'s OpenMetrics text as Prometheus text 0.0.4: counter families
/// (and their HELP) take their samples' `_total` name, `unknown` becomes `untyped`, `info` a
/// gauge named `…_info`, and `# UNIT` and `# EOF` lines go. Samples are unchanged.
pub fn openmetrics_to_text004(om: &str) -> String {
    // Family name → (new family name, new type), from the TYPE lines.
    let mut renamed: std::collections::HashMap<&str, (String, &str)> = Default::default();
    for line in om.lines() {
        if let Some((name, ty)) = line
            .strip_prefix("# TYPE ")
            .and_then(|r| r.rsplit_once(' '))
        {
            let to = match ty {
                "counter" => Some((format!("{name}_total"), "counter")),
                "info" => Some((format!("{name}_info"), "gauge")),
                "unknown" => Some((name.to_string(), "untyped")),
                _ => None,
            };
            if let Some(to) = to {
                renamed.insert(name, to);
            }
        }
    }
    let mut out = String::with_capacity(om.len() + renamed.len() * 16);
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        // A HELP or TYPE line of a renamed family: (keyword, new name, rest of the line).
        let rewrite = if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            renamed.get(name).map(|(to, _)| ("HELP", to, help))
        } else if let Some((name, _)) = line
            .strip_prefix("# TYPE ")
            .and_then(|r| r.rsplit_once(' '))
        {
            renamed.get(name).map(|(to, ty)| ("TYPE", to, *ty))
        } else {
            None
        };
        if let Some((keyword, to, rest)) = rewrite {
            out.push_str("# ");
            out.push_str(keyword);
            out.push(' ');
            out.push_str(to);
            out.push(' ');
            out.push_str(rest);
            out.push('\n');
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::gauge::Gauge;

    const STAT: &str = "1234 (a) (b c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 100000 0 0";
    const STATUS: &str = "Name:\tx\nVmSize:\t  40960 kB\nVmRSS:\t   10240 kB\n";

    #[test]
    fn start_time_is_boot_plus_ticks() {
        let t = start_time_s(STAT, "cpu 1 2 3\nbtime 1700000000\n").unwrap();
        assert!((t - 1_700_001_000.0).abs() < 1e-6, "{t}");
        assert_eq!(start_time_s(STAT, "cpu 1\n"), None);
        assert_eq!(start_time_s("", "btime 1\n"), None);
    }

    /// The collector's output, from fixed `/proc` texts, in both formats.
    #[derive(Debug)]
    struct Fixed(ProcessCollector);
    impl Collector for Fixed {
        fn encode(&self, encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
            self.0.encode_from(STAT, STATUS, encoder)
        }
    }

    fn fixed_registry() -> Registry {
        let mut r = Registry::default();
        r.register_collector(Box::new(Fixed(ProcessCollector {
            start_time_s: Some(1_700_001_000.5),
        })));
        r
    }

    #[test]
    fn process_metrics_in_text_004() {
        let text = encode(&fixed_registry(), Format::Text004).unwrap();
        assert_eq!(
            text,
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
             # TYPE process_cpu_seconds_total counter\n\
             process_cpu_seconds_total 3.0\n\
             # HELP process_resident_memory_bytes Resident memory size in bytes.\n\
             # TYPE process_resident_memory_bytes gauge\n\
             process_resident_memory_bytes 10485760\n\
             # HELP process_virtual_memory_bytes Virtual memory size in bytes.\n\
             # TYPE process_virtual_memory_bytes gauge\n\
             process_virtual_memory_bytes 41943040\n\
             # HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n\
             # TYPE process_start_time_seconds gauge\n\
             process_start_time_seconds 1700001000.5\n"
        );
    }

    #[test]
    fn process_metrics_in_openmetrics() {
        let text = encode(&fixed_registry(), Format::OpenMetrics).unwrap();
        for needle in [
            "# TYPE process_cpu_seconds counter\nprocess_cpu_seconds_total 3.0\n",
            "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 10485760\n",
            "# TYPE process_start_time_seconds gauge\n",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn missing_proc_files_omit_the_series() {
        #[derive(Debug)]
        struct Empty;
        impl Collector for Empty {
            fn encode(&self, encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
                ProcessCollector { start_time_s: None }.encode_from("", "", encoder)
            }
        }
        let mut r = Registry::default();
        r.register_collector(Box::new(Empty));
        assert_eq!(encode(&r, Format::Text004).unwrap(), "");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_collected() {
        let mut r = Registry::default();
        r.register_collector(Box::new(ProcessCollector::new()));
        let text = encode(&r, Format::Text004).unwrap();
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_start_time_seconds ",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(name)),
                "{name} in\n{text}"
            );
        }
        let start: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("process_start_time_seconds "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(start > 1.0e9, "{start}");
    }

    #[test]
    fn counters_take_total_in_text_004() {
        let mut r = Registry::default();
        let c = Counter::<u64>::default();
        c.inc_by(7);
        let sub = r.sub_registry_with_prefix("vllm:x");
        sub.register("prompt_tokens", "Number of prefill tokens processed", c);
        let g = Gauge::<i64>::default();
        r.register("waiting", "Waiting", g);
        let text = encode(&r, Format::Text004).unwrap();
        assert_eq!(
            text,
            "# HELP waiting Waiting.\n# TYPE waiting gauge\nwaiting 0\n\
             # HELP vllm:x_prompt_tokens_total Number of prefill tokens processed.\n\
             # TYPE vllm:x_prompt_tokens_total counter\n\
             vllm:x_prompt_tokens_total 7\n"
        );
        assert_eq!(Format::negotiate(None), Format::Text004);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text004);
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3"
            )),
            Format::OpenMetrics
        );
    }
}
