//! Production traces read into one list of requests: when each arrived, its prompt and output
//! lengths, its model, and (Mooncake) the prompt blocks it shares with earlier requests.
//!
//! Formats:
//! - **Azure** LLM inference trace CSV: `TIMESTAMP` (`2023-11-16 18:15:46.6805900`, or seconds),
//!   `ContextTokens`, `GeneratedTokens`.
//! - **Mooncake** JSONL: `timestamp` (ms), `input_length`, `output_length`, `hash_ids` (one id
//!   per 512-token prompt block; equal leading ids mean an equal prompt prefix).
//! - **BurstGPT** CSV: `Timestamp` (s), `Model`, `Request tokens`, `Response tokens`; rows with
//!   0 response tokens (requests that failed in the trace) are skipped and counted.
//! - **inferbench**'s own `--log-requests` JSONL: `planned_us`, `model`, `prompt_len`,
//!   `max_tokens`, `stream` (older logs: the server's `prompt_tokens`/`completion_tokens`).
//!
//! Every error names the file, the line and the column.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Tokens per Mooncake prompt block (`hash_ids` entry).
pub const MOONCAKE_BLOCK_TOKENS: u32 = 512;

/// Most tokens one trace request may ask for (prompt or output), as the scenario limits.
pub const MAX_TRACE_TOKENS: u64 = 1_000_000;

/// A trace file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceFormat {
    /// Azure LLM inference trace CSV.
    Azure,
    /// Mooncake JSONL.
    Mooncake,
    /// BurstGPT CSV.
    #[serde(rename = "burstgpt")]
    BurstGpt,
    /// inferbench's own `--log-requests` JSONL.
    Inferbench,
}

impl TraceFormat {
    /// Its name in scenario files and reports.
    pub fn name(self) -> &'static str {
        match self {
            TraceFormat::Azure => "azure",
            TraceFormat::Mooncake => "mooncake",
            TraceFormat::BurstGpt => "burstgpt",
            TraceFormat::Inferbench => "inferbench",
        }
    }

    /// The format named `s`.
    pub fn parse(s: &str) -> Option<TraceFormat> {
        [
            TraceFormat::Azure,
            TraceFormat::Mooncake,
            TraceFormat::BurstGpt,
            TraceFormat::Inferbench,
        ]
        .into_iter()
        .find(|f| f.name() == s.to_ascii_lowercase())
    }

    /// The format a file's first line shows: a CSV header naming the columns, or a JSON object
    /// with Mooncake's or inferbench's keys.
    pub fn detect(first_line: &str) -> Option<TraceFormat> {
        let l = first_line.trim_start_matches('\u{feff}').trim();
        if l.starts_with('{') {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            if v.get("input_length").is_some() || v.get("hash_ids").is_some() {
                return Some(TraceFormat::Mooncake);
            }
            if v.get("planned_us").is_some() {
                return Some(TraceFormat::Inferbench);
            }
            return None;
        }
        let cols: Vec<String> = l.split(',').map(|c| c.trim().to_string()).collect();
        let has = |c: &str| cols.iter().any(|x| x.eq_ignore_ascii_case(c));
        if has("ContextTokens") && has("GeneratedTokens") {
            Some(TraceFormat::Azure)
        } else if has("Request tokens") && has("Response tokens") {
            Some(TraceFormat::BurstGpt)
        } else {
            None
        }
    }
}

/// One request of a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRequest {
    /// When it arrived, µs from the trace's first request.
    pub at_us: u64,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Output tokens.
    pub output_tokens: u32,
    /// The model the trace names, if it names one.
    pub model: Option<String>,
    /// Mooncake: the prompt's block ids, `MOONCAKE_BLOCK_TOKENS` tokens each (the last may be
    /// shorter); equal leading ids are an equal prompt prefix.
    pub blocks: Vec<u64>,
    /// Streamed or not, if the trace says.
    pub stream: Option<bool>,
    /// Line of the file it came from (1-based).
    pub line: u64,
}

/// A trace file read whole.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Its format.
    pub format: TraceFormat,
    /// Its requests by arrival (ties keep the file's order).
    pub requests: Vec<TraceRequest>,
    /// Rows left out, by reason, with how many.
    pub skipped: BTreeMap<String, u64>,
}

/// A trace that cannot be read: the file, line, column and what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}:{line}:{column}: {message}")]
pub struct TraceError {
    /// The file.
    pub path: String,
    /// Line, 1-based (0: the file as a whole).
    pub line: u64,
    /// Column, 1-based (character).
    pub column: u64,
    /// What is wrong.
    pub message: String,
}

/// Reads the trace at `path` in `format`, or the format its first line shows.
pub fn read(path: &Path, format: Option<TraceFormat>) -> Result<Trace, TraceError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| TraceError {
        path: name.clone(),
        line: 0,
        column: 0,
        message: format!("cannot read the trace: {e}"),
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let before = &e.as_bytes()[..at];
        let line = before.iter().filter(|b| **b == b'\n').count() as u64 + 1;
        let col = before.iter().rev().take_while(|b| **b != b'\n').count() as u64 + 1;
        TraceError {
            path: name.clone(),
            line,
            column: col,
            message: "not UTF-8 text".into(),
        }
    })?;
    parse(&text, &name, format)
}

/// Parses trace `text` (from file `path`, for errors) in `format`, or the one it shows.
pub fn parse(text: &str, path: &str, format: Option<TraceFormat>) -> Result<Trace, TraceError> {
    let err = |line: u64, column: u64, message: String| TraceError {
        path: path.to_string(),
        line,
        column,
        message,
    };
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let format = match format {
        Some(f) => f,
        None => TraceFormat::detect(first).ok_or_else(|| {
            err(1, 1, "cannot tell the trace's format from its first line (a CSV header with ContextTokens/GeneratedTokens (azure) or Request tokens/Response tokens (burstgpt), or a JSON line with input_length (mooncake) or planned_us (inferbench)): say `format:`".into())
        })?,
    };
    let mut trace = Trace {
        format,
        requests: Vec::new(),
        skipped: BTreeMap::new(),
    };
    match format {
        TraceFormat::Azure | TraceFormat::BurstGpt => csv_rows(text, format, &mut trace, &err)?,
        TraceFormat::Mooncake | TraceFormat::Inferbench => {
            json_rows(text, format, &mut trace, &err)?
        }
    }
    if trace.requests.is_empty() {
        return Err(err(0, 0, "the trace has no requests".into()));
    }
    // Times from the first arrival; order by arrival, ties in the file's order.
    let t0 = trace.requests.iter().map(|r| r.at_us).min().unwrap_or(0);
    for r in &mut trace.requests {
        r.at_us -= t0;
    }
    trace.requests.sort_by_key(|r| r.at_us);
    Ok(trace)
}

type ErrFn<'a> = dyn Fn(u64, u64, String) -> TraceError + 'a;

/// A token count from `s`: a whole number in 0..=MAX_TRACE_TOKENS.
fn tokens(s: &str) -> Result<u32, String> {
    let v: u64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number of tokens"))?;
    if v > MAX_TRACE_TOKENS {
        return Err(format!(
            "{v} tokens is over the limit of {MAX_TRACE_TOKENS}"
        ));
    }
    Ok(v as u32)
}

fn csv_rows(
    text: &str,
    format: TraceFormat,
    trace: &mut Trace,
    err: &ErrFn<'_>,
) -> Result<(), TraceError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| err(1, 1, format!("unreadable CSV header: {e}")))?
        .clone();
    let col = |name: &str| -> Result<usize, TraceError> {
        headers
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                err(
                    1,
                    1,
                    format!(
                        "the {} header has no `{name}` column (it has: {})",
                        format.name(),
                        headers.iter().collect::<Vec<_>>().join(", ")
                    ),
                )
            })
    };
    let (time_c, prompt_c, out_c, model_c) = match format {
        TraceFormat::Azure => (
            col("TIMESTAMP")?,
            col("ContextTokens")?,
            col("GeneratedTokens")?,
            None,
        ),
        _ => (
            col("Timestamp")?,
            col("Request tokens")?,
            col("Response tokens")?,
            Some(col("Model")?),
        ),
    };
    let mut rec = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                let msg = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!("{len} fields where the header has {expected_len}"),
                    _ => e.to_string(),
                };
                return Err(err(line, 1, msg));
            }
        }
        let line = rec.position().map_or(0, |p| p.line());
        // The column a field starts at (exact for unquoted fields, as these traces are).
        let column = |i: usize| -> u64 {
            1 + rec
                .iter()
                .take(i)
                .map(|f| f.chars().count() as u64 + 1)
                .sum::<u64>()
        };
        let field = |i: usize| rec.get(i).unwrap_or("");
        let at_us = match format {
            TraceFormat::Azure => azure_time_us(field(time_c)),
            _ => seconds_us(field(time_c)),
        }
        .map_err(|m| err(line, column(time_c), format!("{}: {m}", &headers[time_c])))?;
        let prompt = tokens(field(prompt_c)).map_err(|m| {
            err(
                line,
                column(prompt_c),
                format!("{}: {m}", &headers[prompt_c]),
            )
        })?;
        let output = tokens(field(out_c))
            .map_err(|m| err(line, column(out_c), format!("{}: {m}", &headers[out_c])))?;
        if output == 0 {
            *trace
                .skipped
                .entry("no output tokens (failed in the trace)".into())
                .or_default() += 1;
            continue;
        }
        trace.requests.push(TraceRequest {
            at_us,
            prompt_tokens: prompt,
            output_tokens: output,
            model: model_c
                .map(|c| field(c).to_string())
                .filter(|m| !m.is_empty()),
            blocks: Vec::new(),
            stream: None,
            line,
        });
    }
    Ok(())
}

/// µs from seconds written as a decimal number (≥ 0, finite, under 100 years).
fn seconds_us(s: &str) -> Result<u64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(v.is_finite() && (0.0..=3.2e9).contains(&v)) {
        return Err(format!("`{s}` is not a time in seconds from 0 to 3.2e9"));
    }
    Ok((v * 1e6).round() as u64)
}

/// µs since 1970 from Azure's `YYYY-MM-DD HH:MM:SS[.fraction]` (UTC), or a number of seconds.
fn azure_time_us(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if !s.contains('-') {
        return seconds_us(s);
    }
    let bad = || format!("`{s}` is not a time like 2023-11-16 18:15:46.6805900");
    let (date, time) = s.split_once([' ', 'T']).ok_or_else(bad)?;
    let d: Vec<&str> = date.split('-').collect();
    let (whole, frac) = time
        .trim_end_matches('Z')
        .split_once('.')
        .unwrap_or((time.trim_end_matches('Z'), ""));
    let t: Vec<&str> = whole.split(':').collect();
    if d.len() != 3 || t.len() != 3 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let num = |x: &str, lo: i64, hi: i64| -> Result<i64, String> {
        let v: i64 = x.parse().map_err(|_| bad())?;
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(bad())
        }
    };
    let (y, m, day) = (num(d[0], 1970, 9999)?, num(d[1], 1, 12)?, num(d[2], 1, 31)?);
    let (hh, mm, ss) = (num(t[0], 0, 23)?, num(t[1], 0, 59)?, num(t[2], 0, 60)?);
    let days = days_from_civil(y, m, day);
    let mut us = ((days * 86_400 + hh * 3600 + mm * 60 + ss) as u64) * 1_000_000;
    // The fraction to µs (Azure writes 7 digits: 100 ns).
    let digits: String = frac.chars().chain("000000".chars()).take(6).collect();
    us += digits.parse::<u64>().unwrap_or(0);
    Ok(us)
}

/// Days from 1970-01-01 to the proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[derive(Deserialize)]
struct MooncakeLine {
    timestamp: f64,
    input_length: u64,
    output_length: u64,
    #[serde(default)]
    hash_ids: Vec<u64>,
}

#[derive(Deserialize)]
struct LogLine {
    planned_us: u64,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    prompt_len: Option<u64>,
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    stream: Option<bool>,
}

fn json_rows(
    text: &str,
    format: TraceFormat,
    trace: &mut Trace,
    err: &ErrFn<'_>,
) -> Result<(), TraceError> {
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        let l = raw.trim_start_matches('\u{feff}');
        if l.trim().is_empty() {
            continue;
        }
        let json_err = |e: serde_json::Error| err(line, e.column() as u64, e.to_string());
        // The column where `key` is written on the line (1 if it is not).
        let col = |key: &str| l.find(&format!("\"{key}\"")).map_or(1, |p| p as u64 + 1);
        let r = match format {
            TraceFormat::Mooncake => {
                let m: MooncakeLine = serde_json::from_str(l).map_err(json_err)?;
                if !(m.timestamp.is_finite() && (0.0..=3.2e12).contains(&m.timestamp)) {
                    return Err(err(
                        line,
                        col("timestamp"),
                        format!(
                            "timestamp {} is not a time in ms from 0 to 3.2e12",
                            m.timestamp
                        ),
                    ));
                }
                let check = |v: u64, key: &str| -> Result<u32, TraceError> {
                    tokens(&v.to_string()).map_err(|m| err(line, col(key), format!("{key}: {m}")))
                };
                let prompt = check(m.input_length, "input_length")?;
                let output = check(m.output_length, "output_length")?;
                if m.hash_ids.len() as u64 * u64::from(MOONCAKE_BLOCK_TOKENS)
                    >= u64::from(prompt) + u64::from(MOONCAKE_BLOCK_TOKENS)
                {
                    return Err(err(
                        line,
                        col("hash_ids"),
                        format!(
                            "{} hash_ids are more {MOONCAKE_BLOCK_TOKENS}-token blocks than input_length {prompt} fills",
                            m.hash_ids.len()
                        ),
                    ));
                }
                if output == 0 {
                    *trace.skipped.entry("no output tokens".into()).or_default() += 1;
                    continue;
                }
                TraceRequest {
                    at_us: (m.timestamp * 1000.0).round() as u64,
                    prompt_tokens: prompt,
                    output_tokens: output,
                    model: None,
                    blocks: m.hash_ids,
                    stream: None,
                    line,
                }
            }
            _ => {
                let g: LogLine = serde_json::from_str(l).map_err(json_err)?;
                let prompt = g.prompt_len.or(g.prompt_tokens);
                let output = g.max_tokens.or(g.completion_tokens);
                let (Some(prompt), Some(output)) = (prompt, output) else {
                    *trace
                        .skipped
                        .entry("no prompt or output length (a failed request logged by an older version)".into())
                        .or_default() += 1;
                    continue;
                };
                let prompt = tokens(&prompt.to_string())
                    .map_err(|m| err(line, col("prompt_len"), format!("prompt_len: {m}")))?;
                let output = tokens(&output.to_string())
                    .map_err(|m| err(line, col("max_tokens"), format!("max_tokens: {m}")))?;
                if output == 0 {
                    *trace.skipped.entry("no output tokens".into()).or_default() += 1;
                    continue;
                }
                TraceRequest {
                    at_us: g.planned_us,
                    prompt_tokens: prompt,
                    output_tokens: output,
                    model: g.model.filter(|m| !m.is_empty()),
                    blocks: Vec::new(),
                    stream: g.stream,
                    line,
                }
            }
        };
        trace.requests.push(r);
    }
    Ok(())
}

/// Which part of a trace to replay, and how fast.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Replay {
    /// Leave out the requests that arrived in the trace's first `start_us`.
    pub start_us: u64,
    /// Replay at most this many requests.
    pub limit: Option<u64>,
    /// Multiplies the trace's time (0.5: twice as fast).
    pub time_scale: f64,
    /// Multiplies the request rate (2: twice as many per second); with `time_scale`, instants
    /// become `trace time × time_scale / rate_scale`.
    pub rate_scale: f64,
    /// Leave out requests whose replay instant is at or past this, µs.
    pub window_us: Option<u64>,
}

impl Default for Replay {
    fn default() -> Self {
        Replay {
            start_us: 0,
            limit: None,
            time_scale: 1.0,
            rate_scale: 1.0,
            window_us: None,
        }
    }
}

impl Trace {
    /// The requests `replay` selects, with their replay instants (µs from the first selected).
    pub fn select(&self, replay: &Replay) -> Vec<(u64, &TraceRequest)> {
        let f = replay.time_scale / replay.rate_scale;
        let chosen = self.requests.iter().filter(|r| r.at_us >= replay.start_us);
        let mut out: Vec<(u64, &TraceRequest)> = Vec::new();
        let mut t0 = None;
        for r in chosen {
            if replay.limit.is_some_and(|l| out.len() as u64 >= l) {
                break;
            }
            let base = *t0.get_or_insert(r.at_us);
            let at = ((r.at_us - base) as f64 * f).round() as u64;
            if replay.window_us.is_some_and(|w| at >= w) {
                break;
            }
            out.push((at, r));
        }
        out
    }
}

/// The prompt tokens found in the prefix cache if every earlier request's prompt were kept:
/// for each request, its leading blocks whose whole chain of ids came before (capped at its
/// prompt less one token, which a server always computes). Returns (hit tokens, prompt tokens).
pub fn implied_prefix_hits<'a>(requests: impl IntoIterator<Item = &'a TraceRequest>) -> (u64, u64) {
    let mut seen: HashSet<Vec<u64>> = HashSet::new();
    let (mut hits, mut total) = (0u64, 0u64);
    for r in requests {
        let len = u64::from(r.prompt_tokens);
        total += len;
        let mut cached = 0u64;
        let mut matching = true;
        for i in 0..r.blocks.len() {
            let chain = r.blocks[..=i].to_vec();
            let block = u64::from(MOONCAKE_BLOCK_TOKENS)
                .min(len.saturating_sub(i as u64 * u64::from(MOONCAKE_BLOCK_TOKENS)));
            if matching && seen.contains(&chain) {
                cached += block;
            } else {
                matching = false;
                seen.insert(chain);
            }
        }
        hits += cached.min(len.saturating_sub(1));
    }
    (hits, total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_are_told_by_their_first_line() {
        assert_eq!(
            TraceFormat::detect("TIMESTAMP,ContextTokens,GeneratedTokens"),
            Some(TraceFormat::Azure)
        );
        assert_eq!(
            TraceFormat::detect(
                "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type"
            ),
            Some(TraceFormat::BurstGpt)
        );
        assert_eq!(
            TraceFormat::detect(
                r#"{"timestamp": 0, "input_length": 5, "output_length": 2, "hash_ids": [1]}"#
            ),
            Some(TraceFormat::Mooncake)
        );
        assert_eq!(
            TraceFormat::detect(r#"{"k":0,"model":"m","planned_us":0}"#),
            Some(TraceFormat::Inferbench)
        );
        assert_eq!(TraceFormat::detect("a,b,c"), None);
    }

    #[test]
    fn azure_times_are_exact_to_the_microsecond() {
        let t = parse(
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:50.0000000,10,1\n2023-11-17 00:00:00,1,1\n",
            "a.csv",
            None,
        )
        .unwrap();
        assert_eq!(t.format, TraceFormat::Azure);
        let at: Vec<u64> = t.requests.iter().map(|r| r.at_us).collect();
        assert_eq!(at, [0, 3_319_410, 20_653_319_410]);
        assert_eq!(t.requests[0].prompt_tokens, 374);
        assert_eq!(t.requests[0].output_tokens, 44);
        // 1970-01-01 is day 0; 2000-03-01 is day 11017.
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let e = parse(
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,374,44\n2023-11-16 18:15:47.00,12x,44\n",
            "t.csv",
            None,
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (3, 24), "{e}");
        assert!(
            e.to_string()
                .starts_with("t.csv:3:24: ContextTokens: `12x`"),
            "{e}"
        );
        let e = parse(
            "{\"timestamp\": 0, \"input_length\": 10, \"output_length\": 2}\n{\"timestamp\": 5, \"input_length\": -3, \"output_length\": 2}\n",
            "m.jsonl",
            None,
        )
        .unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.column > 30, "{e}");
        let e = parse(
            "Timestamp,Model,Request tokens,Response tokens\n1.5,ChatGPT,10\n",
            "b.csv",
            None,
        )
        .unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("3 fields where the header has 4"), "{e}");
        let e = parse("Timestamp,Request tokens,Response tokens\n", "b.csv", None).unwrap_err();
        assert!(e.message.contains("no `Model` column"), "{e}");
        let e = parse("{\"timestamp\": 0, \"input_length\": 10, \"output_length\": 2, \"hash_ids\": [1, 2]}\n", "m.jsonl", None).unwrap_err();
        assert!(e.message.contains("2 hash_ids"), "{e}");
    }

    #[test]
    fn burstgpt_skips_failed_rows_and_keeps_models() {
        let t = parse(
            "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n5,ChatGPT,472,18,490,Conversation log\n45,GPT-4,1087,0,1087,API log\n118,GPT-4,417,1170,1587,Conversation log\n",
            "b.csv",
            None,
        )
        .unwrap();
        assert_eq!(t.requests.len(), 2);
        assert_eq!(t.requests[1].at_us, 113_000_000);
        assert_eq!(t.requests[1].model.as_deref(), Some("GPT-4"));
        assert_eq!(t.skipped.values().sum::<u64>(), 1);
    }

    #[test]
    fn selection_scales_time_and_cuts() {
        let t = parse(
            "Timestamp,Model,Request tokens,Response tokens\n0,a,1,1\n1,a,1,1\n2,a,1,1\n3,a,1,1\n",
            "b.csv",
            None,
        )
        .unwrap();
        let at = |r: Replay| t.select(&r).iter().map(|x| x.0).collect::<Vec<_>>();
        assert_eq!(at(Replay::default()), [0, 1_000_000, 2_000_000, 3_000_000]);
        let half = Replay {
            time_scale: 0.5,
            ..Replay::default()
        };
        assert_eq!(at(half), [0, 500_000, 1_000_000, 1_500_000]);
        let r = Replay {
            rate_scale: 4.0,
            start_us: 1_000_000,
            limit: Some(2),
            ..Replay::default()
        };
        assert_eq!(at(r), [0, 250_000]);
        let w = Replay {
            window_us: Some(2_000_000),
            ..Replay::default()
        };
        assert_eq!(at(w), [0, 1_000_000]);
    }

    #[test]
    fn implied_hits_follow_the_chain_of_ids() {
        let r = |blocks: &[u64], len: u32| TraceRequest {
            at_us: 0,
            prompt_tokens: len,
            output_tokens: 1,
            model: None,
            blocks: blocks.to_vec(),
            stream: None,
            line: 1,
        };
        let reqs = [
            r(&[1, 2], 1000),
            // Shares block 1 only (its second id differs).
            r(&[1, 3], 1024),
            // Same second id after another first: a different chain, no hit past block 1.
            r(&[4, 2], 600),
            // All of the first again: capped at its length less one.
            r(&[1, 2], 1000),
        ];
        let (hits, total) = implied_prefix_hits(&reqs);
        assert_eq!(total, 3624);
        assert_eq!(hits, 512 + 999);
    }

    proptest! {
        #[test]
        fn any_text_is_read_without_panic(t in "\\PC{0,200}", f in 0usize..5) {
            let format = [None, Some(TraceFormat::Azure), Some(TraceFormat::Mooncake), Some(TraceFormat::BurstGpt), Some(TraceFormat::Inferbench)][f];
            let _ = parse(&t, "x", format);
        }

        #[test]
        fn written_rows_read_back(rows in proptest::collection::vec((0u64..10_000_000, 1u32..100_000, 1u32..10_000), 1..30)) {
            let mut text = String::from("Timestamp,Model,Request tokens,Response tokens\n");
            for (ms, p, o) in &rows {
                text.push_str(&format!("{}.{:03},m,{p},{o}\n", ms / 1000, ms % 1000));
            }
            let t = parse(&text, "b.csv", None).unwrap();
            prop_assert_eq!(t.requests.len(), rows.len());
            let first = rows.iter().map(|r| r.0).min().unwrap();
            let mut want: Vec<(u64, u32, u32)> = rows.iter().map(|(ms, p, o)| ((ms - first) * 1000, *p, *o)).collect();
            want.sort_by_key(|w| w.0);
            let got: Vec<(u64, u32, u32)> = t.requests.iter().map(|r| (r.at_us, r.prompt_tokens, r.output_tokens)).collect();
            prop_assert_eq!(got, want);
        }
    }
}
