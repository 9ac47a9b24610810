//! The history store: every run in an embedded SQLite database (one row per invocation, one per
//! scenario with its headline figures, and named baselines), so `inferbench history` can list runs
//! and trends across invocations and `inferbench compare --baseline NAME` can find the report a
//! baseline points at. [`runs_table`] and [`trend_table`] are the listings `inferbench history`
//! prints.

use std::path::{Path, PathBuf};
use std::time::Duration;

use inferbench_results::suite::Report;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::Serialize;

use crate::section::{Cell, Column, Section};

/// The schema this code writes (SQLite's `user_version`).
const SCHEMA: i64 = 1;

/// What can go wrong with the store; every message names the database file.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// No database at the path.
    #[error("no history at {0}: `inferbench run` records every run there (or pass --history PATH)")]
    Missing(PathBuf),
    /// The file is not a database of ours, or is damaged.
    #[error(
        "history database {path} is unreadable ({detail}); move it away to start a new one, or pass --history PATH"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// SQLite's word for it.
        detail: String,
    },
    /// Written by a newer inferbench.
    #[error(
        "history database {path} has schema {found}; this inferbench knows schema {SCHEMA} (written by a newer version?)"
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// Its schema.
        found: i64,
    },
    /// No run with this id.
    #[error("no run #{id} in history {path} (`inferbench history` lists them)")]
    UnknownRun {
        /// The file.
        path: PathBuf,
        /// The id asked for.
        id: i64,
    },
    /// No baseline with this name.
    #[error(
        "no baseline named `{name}` in history {path} (`inferbench baseline set RUN --name {name}` makes one)"
    )]
    UnknownBaseline {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        name: String,
    },
}

/// One recorded invocation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunEntry {
    /// Its id (what `baseline set` and `compare` take).
    pub id: i64,
    /// When the run started, Unix seconds.
    pub started_unix_s: i64,
    /// inferbench's version.
    pub tool_version: String,
    /// The git commit of the directory it ran in (or `INFERBENCH_GIT_COMMIT` / `GITHUB_SHA`).
    pub git_commit: Option<String>,
    /// The scenario file, `built-in suite` or `command line`.
    pub config: Option<String>,
    /// Where its report.json is.
    pub report_path: String,
    /// Every scenario passed.
    pub passed: bool,
    /// Cut short.
    pub partial: bool,
    /// Scenarios in it.
    pub scenarios: i64,
}

/// One scenario of one run: the figures a trend shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioEntry {
    /// The run.
    pub run_id: i64,
    /// When the run started, Unix seconds.
    pub started_unix_s: i64,
    /// The git commit of the run.
    pub git_commit: Option<String>,
    /// Scenario name.
    pub name: String,
    /// Target (URL without credentials).
    pub target: String,
    /// Requests completed.
    pub requests: i64,
    /// Failed requests.
    pub failed: i64,
    /// Achieved req/s.
    pub rps: f64,
    /// Output tokens per second.
    pub output_tok_s: f64,
    /// TTFT p50, µs.
    pub ttft_p50_us: i64,
    /// TTFT p95, µs.
    pub ttft_p95_us: i64,
    /// TTFT p99, µs.
    pub ttft_p99_us: i64,
    /// ITL p50, µs.
    pub itl_p50_us: i64,
    /// End to end p50, µs.
    pub e2e_p50_us: i64,
    /// End to end p99, µs.
    pub e2e_p99_us: i64,
    /// The scenario passed its checks.
    pub passed: bool,
}

/// The store.
pub struct History {
    conn: Connection,
    path: PathBuf,
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl History {
    /// Opens the database at `path`, creating it (and its folder) when missing: what a run does.
    pub fn open_or_create(path: &Path) -> Result<History, HistoryError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| HistoryError::Corrupt {
                path: path.to_path_buf(),
                detail: format!("cannot create its folder: {e}"),
            })?;
        }
        Self::open_with(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )
    }

    /// Opens an existing database: what `history`, `baseline` and `compare` do.
    pub fn open_existing(path: &Path) -> Result<History, HistoryError> {
        if !path.is_file() {
            return Err(HistoryError::Missing(path.to_path_buf()));
        }
        Self::open_with(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
    }

    fn open_with(path: &Path, flags: OpenFlags) -> Result<History, HistoryError> {
        let corrupt = |e: rusqlite::Error| HistoryError::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        };
        let conn = Connection::open_with_flags(path, flags).map_err(corrupt)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(corrupt)?;
        let h = History {
            conn,
            path: path.to_path_buf(),
        };
        h.migrate()?;
        Ok(h)
    }

    fn corrupt(&self, e: rusqlite::Error) -> HistoryError {
        HistoryError::Corrupt {
            path: self.path.clone(),
            detail: e.to_string(),
        }
    }

    /// Creates the tables of a new database; refuses one of a newer schema. Reading the schema is
    /// also the first read: a file that is not SQLite fails here.
    fn migrate(&self) -> Result<(), HistoryError> {
        let found: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.corrupt(e))?;
        match found {
            0 => self
                .conn
                .execute_batch(
                    "BEGIN;
                     CREATE TABLE IF NOT EXISTS runs (
                       id INTEGER PRIMARY KEY AUTOINCREMENT,
                       started_unix_s INTEGER NOT NULL,
                       tool_version TEXT NOT NULL,
                       git_commit TEXT,
                       config TEXT,
                       report_path TEXT NOT NULL,
                       passed INTEGER NOT NULL,
                       partial INTEGER NOT NULL);
                     CREATE TABLE IF NOT EXISTS scenarios (
                       run_id INTEGER NOT NULL REFERENCES runs(id),
                       name TEXT NOT NULL,
                       target TEXT NOT NULL,
                       kind TEXT NOT NULL,
                       requests INTEGER NOT NULL,
                       failed INTEGER NOT NULL,
                       rps REAL NOT NULL,
                       output_tok_s REAL NOT NULL,
                       ttft_p50_us INTEGER NOT NULL,
                       ttft_p95_us INTEGER NOT NULL,
                       ttft_p99_us INTEGER NOT NULL,
                       itl_p50_us INTEGER NOT NULL,
                       e2e_p50_us INTEGER NOT NULL,
                       e2e_p99_us INTEGER NOT NULL,
                       passed INTEGER NOT NULL);
                     CREATE INDEX IF NOT EXISTS scenarios_by_name ON scenarios(name, run_id);
                     CREATE TABLE IF NOT EXISTS baselines (
                       name TEXT PRIMARY KEY,
                       run_id INTEGER NOT NULL REFERENCES runs(id),
                       set_unix_s INTEGER NOT NULL);
                     PRAGMA user_version = 1;
                     COMMIT;",
                )
                .map_err(|e| self.corrupt(e)),
            SCHEMA => Ok(()),
            found => Err(HistoryError::Version {
                path: self.path.clone(),
                found,
            }),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a run whose report is at `report_path`; returns its id.
    pub fn record(
        &mut self,
        report: &Report,
        report_path: &str,
        git_commit: Option<&str>,
    ) -> Result<i64, HistoryError> {
        let path = self.path.clone();
        let corrupt = |e: rusqlite::Error| HistoryError::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        };
        let tx = self.conn.transaction().map_err(corrupt)?;
        tx.execute(
            "INSERT INTO runs (started_unix_s, tool_version, git_commit, config, report_path, passed, partial)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                i(report.started_unix_s),
                report.tool_version,
                git_commit,
                report.config,
                report_path,
                report.passed(),
                report.partial
            ],
        )
        .map_err(corrupt)?;
        let id = tx.last_insert_rowid();
        for s in &report.scenarios {
            let r = &s.total;
            let l = &r.total.latency;
            let (t, it, e) = (l.ttft.summary(), l.itl.summary(), l.e2e.summary());
            tx.execute(
                "INSERT INTO scenarios (run_id, name, target, kind, requests, failed, rps, output_tok_s,
                   ttft_p50_us, ttft_p95_us, ttft_p99_us, itl_p50_us, e2e_p50_us, e2e_p99_us, passed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                params![
                    id,
                    s.name,
                    r.target,
                    s.kind,
                    i(r.total.counts.requests),
                    i(r.total.counts.failed()),
                    r.achieved_rate(),
                    r.output_tokens_per_s(),
                    i(t.p50_us),
                    i(t.p95_us),
                    i(t.p99_us),
                    i(it.p50_us),
                    i(e.p50_us),
                    i(e.p99_us),
                    s.passed
                ],
            )
            .map_err(corrupt)?;
        }
        tx.commit().map_err(corrupt)?;
        Ok(id)
    }

    const RUN_COLUMNS: &'static str = "r.id, r.started_unix_s, r.tool_version, r.git_commit, r.config, r.report_path, r.passed, r.partial,
         (SELECT COUNT(*) FROM scenarios s WHERE s.run_id = r.id)";

    fn run_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunEntry> {
        Ok(RunEntry {
            id: row.get(0)?,
            started_unix_s: row.get(1)?,
            tool_version: row.get(2)?,
            git_commit: row.get(3)?,
            config: row.get(4)?,
            report_path: row.get(5)?,
            passed: row.get(6)?,
            partial: row.get(7)?,
            scenarios: row.get(8)?,
        })
    }

    /// The newest `limit` runs, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunEntry>, HistoryError> {
        let sql = format!(
            "SELECT {} FROM runs r ORDER BY r.id DESC LIMIT ?1",
            Self::RUN_COLUMNS
        );
        let mut st = self.conn.prepare(&sql).map_err(|e| self.corrupt(e))?;
        let rows = st
            .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], Self::run_of)
            .map_err(|e| self.corrupt(e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.corrupt(e))
    }

    /// Run `id`.
    pub fn run(&self, id: i64) -> Result<RunEntry, HistoryError> {
        let sql = format!("SELECT {} FROM runs r WHERE r.id = ?1", Self::RUN_COLUMNS);
        self.conn
            .query_row(&sql, [id], Self::run_of)
            .optional()
            .map_err(|e| self.corrupt(e))?
            .ok_or_else(|| HistoryError::UnknownRun {
                path: self.path.clone(),
                id,
            })
    }

    /// The newest run, if any.
    pub fn latest(&self) -> Result<Option<RunEntry>, HistoryError> {
        Ok(self.runs(1)?.into_iter().next())
    }

    /// Scenario `name` over the newest `limit` runs that had it, oldest first (a trend).
    pub fn trend(&self, name: &str, limit: usize) -> Result<Vec<ScenarioEntry>, HistoryError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT * FROM (
                   SELECT s.run_id, r.started_unix_s, r.git_commit, s.name, s.target, s.requests, s.failed,
                     s.rps, s.output_tok_s, s.ttft_p50_us, s.ttft_p95_us, s.ttft_p99_us, s.itl_p50_us,
                     s.e2e_p50_us, s.e2e_p99_us, s.passed
                   FROM scenarios s JOIN runs r ON r.id = s.run_id
                   WHERE s.name = ?1 ORDER BY s.run_id DESC LIMIT ?2)
                 ORDER BY run_id ASC",
            )
            .map_err(|e| self.corrupt(e))?;
        let rows = st
            .query_map(
                params![name, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| {
                    Ok(ScenarioEntry {
                        run_id: r.get(0)?,
                        started_unix_s: r.get(1)?,
                        git_commit: r.get(2)?,
                        name: r.get(3)?,
                        target: r.get(4)?,
                        requests: r.get(5)?,
                        failed: r.get(6)?,
                        rps: r.get(7)?,
                        output_tok_s: r.get(8)?,
                        ttft_p50_us: r.get(9)?,
                        ttft_p95_us: r.get(10)?,
                        ttft_p99_us: r.get(11)?,
                        itl_p50_us: r.get(12)?,
                        e2e_p50_us: r.get(13)?,
                        e2e_p99_us: r.get(14)?,
                        passed: r.get(15)?,
                    })
                },
            )
            .map_err(|e| self.corrupt(e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.corrupt(e))
    }

    /// Names run `id` as baseline `name` (replacing an earlier one of that name).
    pub fn set_baseline(&self, name: &str, id: i64, now_unix_s: u64) -> Result<(), HistoryError> {
        self.run(id)?;
        self.conn
            .execute(
                "INSERT INTO baselines (name, run_id, set_unix_s) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET run_id = excluded.run_id, set_unix_s = excluded.set_unix_s",
                params![name, id, i(now_unix_s)],
            )
            .map_err(|e| self.corrupt(e))?;
        Ok(())
    }

    /// The run baseline `name` points at.
    pub fn baseline(&self, name: &str) -> Result<RunEntry, HistoryError> {
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT run_id FROM baselines WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.corrupt(e))?;
        match id {
            Some(id) => self.run(id),
            None => Err(HistoryError::UnknownBaseline {
                path: self.path.clone(),
                name: name.to_string(),
            }),
        }
    }

    /// Every baseline: (name, run id, when it was set).
    pub fn baselines(&self) -> Result<Vec<(String, i64, i64)>, HistoryError> {
        let mut st = self
            .conn
            .prepare("SELECT name, run_id, set_unix_s FROM baselines ORDER BY name")
            .map_err(|e| self.corrupt(e))?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.corrupt(e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.corrupt(e))
    }
}

/// How the history listings are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Aligned columns for a terminal.
    Text,
    /// A Markdown table (a pull-request comment).
    Markdown,
}

/// A section's table in `style`.
fn render(sec: &Section, style: Style) -> String {
    let mut o = String::new();
    match style {
        Style::Text => crate::text::table(&mut o, sec),
        Style::Markdown => {
            crate::markdown::table(&mut o, sec);
            // The Markdown table starts after a blank line: not needed on its own.
            o = o.trim_start_matches('\n').to_string();
        }
    }
    o
}

/// A commit, or `-` when none was recorded.
fn commit(c: &Option<String>) -> Cell {
    Cell::Text(c.clone().unwrap_or_else(|| "-".into()))
}

/// The list of runs `inferbench history` prints, newest first as given: id, start, commit,
/// version, config, scenarios, result and report path; then the baselines and what they point
/// at.
pub fn runs_table(runs: &[RunEntry], baselines: &[(String, i64, i64)], style: Style) -> String {
    let mut sec = Section::table(
        "Runs",
        Column::list(&[
            "run",
            "started",
            "commit",
            "version",
            "config",
            "scenarios",
            "result",
            "report",
        ]),
    );
    for r in runs {
        let result = match (r.partial, r.passed) {
            (true, _) => "partial",
            (false, true) => "passed",
            (false, false) => "FAILED",
        };
        sec.push(vec![
            Cell::Text(format!("#{}", r.id)),
            Cell::Text(crate::fmt::utc_signed(r.started_unix_s)),
            commit(&r.git_commit),
            Cell::Text(r.tool_version.clone()),
            Cell::Text(r.config.clone().unwrap_or_else(|| "-".into())),
            Cell::Count(u64::try_from(r.scenarios).unwrap_or(0)),
            Cell::Text(result.into()),
            Cell::Text(r.report_path.clone()),
        ]);
    }
    let mut o = render(&sec, style);
    if runs.is_empty() {
        o.push_str("(no runs recorded yet)\n");
    }
    if !baselines.is_empty() {
        let names: Vec<String> = baselines
            .iter()
            .map(|(n, id, _)| format!("{n} → #{id}"))
            .collect();
        if style == Style::Markdown {
            o.push('\n');
        }
        o.push_str(&format!("baselines: {}\n", names.join(", ")));
    }
    o
}

/// A scenario's trend `inferbench history --scenario NAME` prints, oldest first as given: per
/// run its rate, output tokens, TTFT p50 (and its change vs the run before), TTFT and e2e p99,
/// failed requests.
pub fn trend_table(name: &str, trend: &[ScenarioEntry], style: Style) -> String {
    let mut sec = Section::table(
        "Trend",
        vec![
            Column::new("run"),
            Column::new("started"),
            Column::new("commit"),
            Column::new("req/s"),
            Column::new("tok/s"),
            Column::new("TTFT p50").unit("ms"),
            Column::new("change"),
            Column::new("TTFT p99").unit("ms"),
            Column::new("e2e p99").unit("ms"),
            Column::new("errors"),
        ],
    );
    let us = |v: i64| u64::try_from(v).unwrap_or(0);
    let mut prev: Option<i64> = None;
    for s in trend {
        let change = match prev {
            Some(p) if p > 0 => Cell::PctChange((s.ttft_p50_us - p) as f64 * 100.0 / p as f64),
            _ => Cell::Missing,
        };
        prev = Some(s.ttft_p50_us);
        sec.push(vec![
            Cell::Text(format!("#{}", s.run_id)),
            Cell::Text(crate::fmt::utc_signed(s.started_unix_s)),
            commit(&s.git_commit),
            Cell::Rate(s.rps),
            Cell::TokRate(s.output_tok_s),
            Cell::Ms(us(s.ttft_p50_us)),
            change,
            Cell::Ms(us(s.ttft_p99_us)),
            Cell::Ms(us(s.e2e_p99_us)),
            Cell::Count(us(s.failed)),
        ]);
    }
    format!(
        "scenario `{name}`, {} run(s), oldest first (changes vs the run before)\n{}{}",
        trend.len(),
        if style == Style::Markdown { "\n" } else { "" },
        render(&sec, style)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferbench_results::run::RunResult;

    fn report(name: &str, ttft_us: u64) -> Report {
        let mut r = RunResult::empty("http://127.0.0.1:9", "rate 10/s");
        r.duration_s = 10.0;
        r.total.counts.requests = 100;
        r.total.counts.ok = 100;
        r.total.counts.output_tokens = 6400;
        r.total.counts.ok_in_window = 100;
        r.total.counts.output_tokens_in_window = 6400;
        r.total.latency.ttft.record(ttft_us);
        crate::testutil::one_scenario(name, r)
    }

    #[test]
    fn runs_trends_and_baselines_persist_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/history.db");
        assert!(matches!(
            History::open_existing(&path),
            Err(HistoryError::Missing(_))
        ));
        {
            let mut h = History::open_or_create(&path).unwrap();
            h.record(&report("chat", 1000), "a/report.json", Some("abc123"))
                .unwrap();
        }
        let mut h = History::open_existing(&path).unwrap();
        let id2 = h
            .record(&report("chat", 2000), "b/report.json", None)
            .unwrap();
        let runs = h.runs(10).unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].id, id2);
        assert_eq!(runs[1].git_commit.as_deref(), Some("abc123"));
        assert_eq!(runs[0].scenarios, 1);
        let t = h.trend("chat", 10).unwrap();
        assert_eq!(
            t.iter().map(|s| s.ttft_p50_us).collect::<Vec<_>>(),
            [1000, 2000]
        );
        assert!((t[0].output_tok_s - 640.0).abs() < 1e-9);
        h.set_baseline("main", runs[1].id, 5).unwrap();
        assert_eq!(h.baseline("main").unwrap().report_path, "a/report.json");
        h.set_baseline("main", id2, 6).unwrap();
        assert_eq!(h.baseline("main").unwrap().id, id2);
        assert_eq!(h.baselines().unwrap(), vec![("main".to_string(), id2, 6)]);
        let e = h.baseline("nope").unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("history.db"), "{e}");
        assert!(
            h.set_baseline("x", 999, 0)
                .unwrap_err()
                .to_string()
                .contains("#999")
        );
    }

    #[test]
    fn a_file_that_is_not_a_database_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        let e = History::open_existing(&path).err().unwrap().to_string();
        assert!(e.contains("history.db") && e.contains("unreadable"), "{e}");
        let e = History::open_or_create(&path).err().unwrap().to_string();
        assert!(e.contains("unreadable"), "{e}");
    }

    #[test]
    fn listings_read_the_same_in_text_and_markdown() {
        let run = RunEntry {
            id: 3,
            started_unix_s: 1_700_000_000,
            tool_version: "0.1.0".into(),
            git_commit: Some("feedc0ffee12".into()),
            config: None,
            report_path: "r/report.json".into(),
            passed: false,
            partial: false,
            scenarios: 2,
        };
        let text = runs_table(
            std::slice::from_ref(&run),
            &[("main".into(), 3, 0)],
            Style::Text,
        );
        let mut lines = text.lines();
        assert!(
            lines
                .next()
                .is_some_and(|h| h.starts_with("run ") && h.ends_with(" report")),
            "{text}"
        );
        let row = lines.next().unwrap_or_default();
        for cell in [
            "#3",
            "2023-11-14 22:13:20 UTC",
            "feedc0ffee12",
            "FAILED",
            "r/report.json",
        ] {
            assert!(row.contains(cell), "{row}");
        }
        assert!(text.ends_with("baselines: main → #3\n"), "{text}");
        let md = runs_table(&[run], &[], Style::Markdown);
        assert!(md.starts_with("| run | started |"), "{md}");
        assert!(md.contains("| #3 | 2023-11-14 22:13:20 UTC | feedc0ffee12 | 0.1.0 | - | 2 | FAILED | r/report.json |"), "{md}");
        assert_eq!(
            runs_table(&[], &[], Style::Text).lines().last(),
            Some("(no runs recorded yet)")
        );

        let entry = |run_id, ttft_p50_us| ScenarioEntry {
            run_id,
            started_unix_s: 1_700_000_000,
            git_commit: None,
            name: "chat".into(),
            target: "t".into(),
            requests: 100,
            failed: 1_500,
            rps: 39.8,
            output_tok_s: 3_199.6,
            ttft_p50_us,
            ttft_p95_us: 0,
            ttft_p99_us: 120,
            itl_p50_us: 0,
            e2e_p50_us: 0,
            e2e_p99_us: 376_063,
            passed: true,
        };
        let t = trend_table("chat", &[entry(1, 50_000), entry(2, 55_000)], Style::Text);
        assert!(
            t.starts_with("scenario `chat`, 2 run(s), oldest first"),
            "{t}"
        );
        let last = t.lines().last().unwrap_or_default();
        for cell in [
            "#2", "39.80", "3200", "55.00", "+10.00%", "0.120", "376.1", "1,500",
        ] {
            assert!(last.contains(cell), "{cell} in {last}");
        }
    }
}
