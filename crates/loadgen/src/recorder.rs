//! Turns request outcomes into bounded histograms and counters as they complete.

use std::collections::BTreeMap;

use inferbench_results::run::{ClientHealth, Group, RunResult, SloLimits, Timeline};
use tokio::time::Instant;

use crate::client::{ErrorKind, Outcome, Side};

/// Everything recorded so far.
#[derive(Debug, Default, Clone)]
pub struct Recorded {
    /// All measured requests.
    pub total: Group,
    /// By model asked for.
    pub by_model: BTreeMap<String, Group>,
    /// By endpoint that served.
    pub by_endpoint: BTreeMap<String, Group>,
    /// Answers in another model's name.
    pub misrouted: u64,
    /// The client's health.
    pub client: ClientHealth,
    /// Requests completed during warm-up (not in the statistics).
    pub warmup_requests: u64,
    /// Per-request SLO limits for goodput, if the scenario has them.
    pub slo: Option<SloLimits>,
    /// The instant the timeline counts from (the end of warm-up); no timeline without it.
    pub timeline_origin: Option<Instant>,
    /// Latency, throughput and errors over time.
    pub timeline: Timeline,
    /// The servers' own timings of the streamed answers that carried them.
    pub server_timing: inferbench_results::server::RequestTimings,
}

/// Distinct endpoints kept apart; beyond, they are counted as `other`.
pub const MAX_ENDPOINTS: usize = 256;

fn us(d: std::time::Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

/// The label of an error in the counters: `kind/side`.
pub fn error_label(kind: &ErrorKind, side: Side) -> String {
    let k = match kind {
        ErrorKind::Connect { .. } => "connect".to_string(),
        ErrorKind::Timeout { phase } => format!("timeout_{phase}"),
        ErrorKind::Http { status, .. } => format!("http_{status}"),
        ErrorKind::Http200Error { .. } => "http_200_error".to_string(),
        ErrorKind::BrokenStream { .. } => "broken_stream".to_string(),
        ErrorKind::Protocol { .. } => "protocol".to_string(),
    };
    let s = match side {
        Side::Client => "client",
        Side::Gateway => "gateway",
        Side::ModelServer => "model_server",
        Side::Connection => "connection",
        Side::Unknown => "unknown",
    };
    format!("{k}/{s}")
}

impl Recorded {
    /// The result of this recording, against `target` (a redacted URL) under the load labelled
    /// `load`: the statistics, the client's health and the timeline. The run's times, target
    /// rate and warnings are the caller's to set.
    pub fn into_run_result(self, target: &str, load: &str) -> RunResult {
        let mut r = RunResult::empty(target, load);
        r.total = self.total;
        r.by_model = self.by_model;
        r.by_endpoint = self.by_endpoint;
        r.misrouted = self.misrouted;
        r.client = self.client;
        r.timeline = self.timeline;
        r.server_timing = (self.server_timing.requests > 0).then_some(self.server_timing);
        r
    }

    /// Records one finished request planned for `planned` and asking for `model`.
    pub fn record(&mut self, planned: Instant, model: &str, o: &Outcome) {
        let endpoint = o.endpoint.clone().unwrap_or_else(|| "unknown".to_string());
        let mut error = o.error.as_ref().map(|(k, s)| error_label(k, *s));
        if error.is_none()
            && let Some(served) = &o.model_served
            && served != model
        {
            self.misrouted += 1;
            error = Some(inferbench_results::run::MISROUTED.to_string());
        }
        let good = error.is_none()
            && self.slo.is_some_and(|slo| {
                let ttft = o.first_token.map(|ft| us(ft - o.sent));
                let n = o.output_tokens();
                // TPOT is judged only where it was seen: a stream with at least two tokens
                // (a unary or one-token answer has no decode phase to time).
                let tpot = match o.first_token {
                    Some(ft) if n > 1 && !o.token_events.is_empty() => {
                        Some(us((o.end - ft).div_f64((n - 1) as f64)))
                    }
                    _ => None,
                };
                let e2e = us(o.end - o.sent);
                slo.ttft_us.is_none_or(|l| ttft.is_some_and(|v| v <= l))
                    && slo.tpot_us.is_none_or(|l| tpot.is_none_or(|v| v <= l))
                    && slo.e2e_us.is_none_or(|l| e2e <= l)
            });
        let apply = |g: &mut Group| {
            g.counts.requests += 1;
            match &error {
                Some(label) => *g.counts.errors.entry(label.clone()).or_insert(0) += 1,
                None => {
                    g.counts.ok += 1;
                    if good {
                        g.counts.good += 1;
                    }
                    g.counts.input_tokens = g
                        .counts
                        .input_tokens
                        .saturating_add(o.prompt_tokens.unwrap_or(0));
                    g.counts.output_tokens =
                        g.counts.output_tokens.saturating_add(o.output_tokens());
                    g.counts.cached_tokens = g
                        .counts
                        .cached_tokens
                        .saturating_add(o.cached_tokens.unwrap_or(0));
                    let l = &mut g.latency;
                    if let Some(ft) = o.first_token {
                        l.ttft.record(us(ft - o.sent));
                        if let Some(fc) = o.first_content {
                            l.ttft_answer
                                .record(us(fc.saturating_duration_since(o.sent)));
                        }
                        l.ttft_from_planned
                            .record(us(ft.saturating_duration_since(planned)));
                        let n = o.output_tokens();
                        // TPOT needs the decode phase to be seen: streamed answers only.
                        if n > 1 && !o.token_events.is_empty() {
                            l.tpot.record(us((o.end - ft).div_f64((n - 1) as f64)));
                        }
                    }
                    for (gap, tokens) in o.itl_samples() {
                        l.itl.record_n(us(gap), tokens);
                    }
                    l.e2e.record(us(o.end - o.sent));
                    l.e2e_from_planned
                        .record(us(o.end.saturating_duration_since(planned)));
                    if let Some(fb) = o.first_byte {
                        l.ttfb.record(us(fb - o.sent));
                    }
                }
            }
        };
        apply(&mut self.total);
        // The server's own timing of a streamed answer (a unary one has no first token of its
        // own: its TTFT is its end).
        if error.is_none()
            && !o.token_events.is_empty()
            && let (Some(ft), Some(t)) = (o.first_token, o.server_timing)
        {
            self.server_timing.record(
                us(ft - o.sent),
                t.queue_ms,
                t.prefill_ms,
                t.decode_ms,
                t.decode_tokens,
            );
        }
        if let Some(origin) = self.timeline_origin {
            let b = self
                .timeline
                .bucket_at(planned.saturating_duration_since(origin).as_secs_f64());
            b.requests += 1;
            if error.is_some() {
                b.errors += 1;
            } else {
                b.ok += 1;
                b.output_tokens = b.output_tokens.saturating_add(o.output_tokens());
                if let Some(ft) = o.first_token {
                    b.ttft.record(us(ft - o.sent));
                }
                b.e2e.record(us(o.end - o.sent));
            }
        }
        apply(self.by_model.entry(model.to_string()).or_default());
        // The endpoint comes from a response header: a gateway that puts a per-request value
        // there must not grow memory without bound.
        let endpoint = if self.by_endpoint.len() >= MAX_ENDPOINTS
            && !self.by_endpoint.contains_key(&endpoint)
        {
            "other".to_string()
        } else {
            endpoint
        };
        apply(self.by_endpoint.entry(endpoint).or_default());
        let lag = o.sent.saturating_duration_since(planned);
        if lag > std::time::Duration::from_millis(1) {
            self.client.late += 1;
        }
        self.client.dispatch_lag.record(us(lag));
        self.client.reconnects += u64::from(o.reconnects);
    }

    /// Counts a request that completed at `end` inside this recorder's throughput window
    /// (whether or not it was planned inside it): throughput is completions in the window.
    pub fn record_completion(&mut self, model: &str, o: &Outcome) {
        if o.error.is_some() || o.model_served.as_deref().is_some_and(|m| m != model) {
            return;
        }
        for c in [
            &mut self.total.counts,
            &mut self.by_model.entry(model.to_string()).or_default().counts,
        ] {
            c.ok_in_window += 1;
            c.output_tokens_in_window = c.output_tokens_in_window.saturating_add(o.output_tokens());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn outcome(sent: Instant, tokens: &[u64]) -> Outcome {
        let first = sent + Duration::from_millis(tokens[0]);
        Outcome {
            sent,
            first_byte: Some(sent + Duration::from_millis(1)),
            first_token: Some(first),
            token_events: tokens
                .iter()
                .map(|t| sent + Duration::from_millis(*t))
                .collect(),
            end: sent + Duration::from_millis(*tokens.last().unwrap_or(&0)),
            status: Some(200),
            error: None,
            model_served: Some("m".into()),
            endpoint: Some("e1".into()),
            prompt_tokens: Some(10),
            completion_tokens: Some(tokens.len() as u64),
            cached_tokens: Some(0),
            http2: false,
            text: None,
            first_content: Some(first),
            reconnects: 0,
            server_timing: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn records_latencies_lateness_and_misrouting() {
        let mut r = Recorded::default();
        let planned = Instant::now();
        // Sent 3 ms late: late, and TTFT from planned is 3 ms longer than from sent.
        let o = outcome(planned + Duration::from_millis(3), &[50, 55, 60]);
        r.record(planned, "m", &o);
        assert_eq!(r.client.late, 1);
        // HDR keeps 3 significant digits.
        let near = |v: u64, want: u64| v.abs_diff(want) * 1000 <= want;
        assert!(near(r.total.latency.ttft.summary().p50_us, 50_000));
        assert!(near(
            r.total.latency.ttft_from_planned.summary().p50_us,
            53_000
        ));
        assert_eq!(r.total.latency.itl.count(), 2);
        assert!(near(r.total.latency.tpot.summary().p50_us, 5_000));
        assert_eq!(r.by_endpoint["e1"].counts.ok, 1);
        // On time, but answered by another model: misrouted, not ok.
        let mut o = outcome(planned, &[50]);
        o.model_served = Some("other".into());
        r.record(planned, "m", &o);
        assert_eq!(r.client.late, 1);
        assert_eq!(r.misrouted, 1);
        assert_eq!(r.total.counts.errors[inferbench_results::run::MISROUTED], 1);
        assert_eq!(r.total.counts.ok, 1);
        // Without an origin there is no timeline.
        assert!(r.timeline.buckets.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn timeline_buckets_by_planned_instant() {
        let origin = Instant::now();
        let mut r = Recorded {
            timeline_origin: Some(origin),
            ..Default::default()
        };
        for (at_ms, ok) in [(100, true), (900, true), (1500, false), (2500, true)] {
            let planned = origin + Duration::from_millis(at_ms);
            let mut o = outcome(planned, &[40, 45]);
            if !ok {
                o.error = Some((
                    ErrorKind::Connect {
                        detail: "refused".into(),
                    },
                    Side::Connection,
                ));
            }
            r.record(planned, "m", &o);
        }
        let b = &r.timeline.buckets;
        assert_eq!(b.len(), 3);
        assert_eq!((b[0].requests, b[0].ok, b[0].output_tokens), (2, 2, 4));
        assert_eq!((b[1].requests, b[1].errors), (1, 1));
        assert_eq!(b[2].ttft.count(), 1);
        assert!(b[0].ttft.quantile(0.5).abs_diff(40_000) <= 400);
    }

    #[test]
    fn a_servers_own_timing_splits_the_ttft_per_request() {
        let sent = Instant::now();
        // TTFT 10 ms; the server says 1 ms queued, 7 ms prefill, 20 ms for 3 tokens.
        let mut o = outcome(sent, &[10, 20, 30]);
        o.server_timing = Some(crate::client::ServerTiming {
            queue_ms: Some(1.0),
            prefill_ms: Some(7.0),
            decode_ms: Some(20.0),
            decode_tokens: Some(3),
        });
        let mut r = Recorded::default();
        r.record(sent, "m", &o);
        // A unary answer (no token events) has no TTFT of its own: not counted.
        let mut unary = o.clone();
        unary.token_events.clear();
        r.record(sent, "m", &unary);
        let t = &r.server_timing;
        assert_eq!((t.requests, t.negative_residuals), (1, 0));
        // To HDR's 3 significant digits.
        let near = |h: &inferbench_results::histogram::LatencyHistogram, us: u64| {
            h.summary().p50_us.abs_diff(us) <= us / 500
        };
        assert!(near(&t.residual, 2_000), "{:?}", t.residual.summary());
        assert!(near(&t.prefill, 7_000));
        assert!(near(&t.queue, 1_000));
        assert!(near(&t.decode_per_token, 10_000));
        let rr = r.into_run_result("t", "l");
        assert_eq!(rr.server_timing.map(|t| t.requests), Some(1));
    }

    #[test]
    fn absurd_server_counts_neither_panic_nor_wrap() {
        let sent = Instant::now();
        let mut o = outcome(sent, &[10, 20, 30]);
        // (n − 1) as u32 would be 0 here: a division by zero before.
        o.completion_tokens = Some(4_294_967_297);
        o.prompt_tokens = Some(u64::MAX);
        let mut r = Recorded {
            slo: Some(SloLimits {
                tpot_us: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        };
        r.record(sent, "m", &o);
        r.record(sent, "m", &o);
        assert_eq!(r.total.counts.ok, 2);
        assert_eq!(r.total.counts.input_tokens, u64::MAX, "saturates");
        assert_eq!(r.total.latency.tpot.count(), 2);
    }

    #[test]
    fn the_tpot_slo_judges_only_streams_with_two_tokens_or_more() {
        let sent = Instant::now();
        let slo = SloLimits {
            tpot_us: Some(1_000),
            ..Default::default()
        };
        let mut r = Recorded {
            slo: Some(slo),
            ..Default::default()
        };
        // A stream of 3 tokens 10 ms apart: TPOT 10 ms > 1 ms, not good.
        r.record(sent, "m", &outcome(sent, &[10, 20, 30]));
        assert_eq!(r.total.counts.good, 0);
        // A one-token stream and a unary answer have no TPOT: judged on the other limits only.
        r.record(sent, "m", &outcome(sent, &[10]));
        let mut unary = outcome(sent, &[30]);
        unary.token_events.clear();
        unary.completion_tokens = Some(50);
        r.record(sent, "m", &unary);
        assert_eq!(r.total.counts.good, 2);
        // No TPOT sample from either: the histogram holds the stream's only.
        assert_eq!(r.total.latency.tpot.count(), 1);
    }

    #[test]
    fn reconnects_and_the_first_answer_token_are_recorded() {
        let sent = Instant::now();
        let mut r = Recorded::default();
        let mut o = outcome(sent, &[10, 20, 30]);
        o.first_content = Some(sent + Duration::from_millis(20));
        o.reconnects = 2;
        r.record(sent, "m", &o);
        assert_eq!(r.client.reconnects, 2);
        let near = |v: u64, want: u64| v.abs_diff(want) * 100 <= want;
        assert!(near(r.total.latency.ttft.summary().p50_us, 10_000));
        assert!(near(r.total.latency.ttft_answer.summary().p50_us, 20_000));
    }

    #[test]
    fn endpoints_beyond_the_cap_are_counted_as_other() {
        let sent = Instant::now();
        let mut r = Recorded::default();
        for i in 0..MAX_ENDPOINTS + 10 {
            let mut o = outcome(sent, &[1, 2]);
            o.endpoint = Some(format!("10.0.0.{i}:8000"));
            r.record(sent, "m", &o);
        }
        assert_eq!(r.by_endpoint.len(), MAX_ENDPOINTS + 1);
        assert_eq!(r.by_endpoint["other"].counts.requests, 10);
    }
}
