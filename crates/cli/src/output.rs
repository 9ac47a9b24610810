//! Where a run's report files go, and how they are kept: the output directory is proved
//! writable before any request is sent, every file is written whole or not at all (a temporary
//! file renamed), and when the directory cannot take the report at the end, it goes to a
//! fallback directory under the system's temporary directory, after the summary is printed.

use std::path::{Path, PathBuf};

use anyhow::Context;
use inferbench_results::suite::Report;

/// `results/<UTC date>T<time>Z`, unique within the second.
pub fn default_dir() -> PathBuf {
    let secs = inferbench_timer::unix_now_s();
    let (y, m, d, hh, mm, ss) = inferbench_report::utc_parts(secs);
    let base = format!("results/{y:04}-{m:02}-{d:02}T{hh:02}{mm:02}{ss:02}Z");
    let mut dir = PathBuf::from(&base);
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = PathBuf::from(format!("{base}-{n}"));
    }
    dir
}

/// Creates `dir` and proves it writable (a probe file created and removed): run before any
/// request is sent, so an unusable `--out` fails at once instead of after the run.
pub fn prepare_out(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the output directory {}", dir.display()))?;
    let probe = dir.join(format!(".inferbench-probe-{}", std::process::id()));
    std::fs::write(&probe, b"probe")
        .with_context(|| format!("cannot write to the output directory {}", dir.display()))?;
    std::fs::remove_file(&probe)
        .with_context(|| format!("cannot write to the output directory {}", dir.display()))?;
    Ok(())
}

/// Writes `bytes` to `path` whole or not at all: into a temporary file beside it, synced, then
/// renamed over `path` (a reader never sees a truncated file; a failed write leaves the old one).
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "report".into(), |n| n.to_string_lossy());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Writes report.json, report.md, report.html and report.csv into `dir`, each atomically.
pub fn write_reports(dir: &Path, report: &Report) -> anyhow::Result<()> {
    let files = [
        ("report.json", serde_json::to_string_pretty(report)?),
        ("report.md", inferbench_report::markdown::render(report)),
        ("report.html", inferbench_report::html::render(report)),
        ("report.csv", inferbench_report::csv::render(report)),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        write_atomic(&path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Where the report goes when `--out` cannot take it: `$TMPDIR/inferbench-<unix time>-<pid>/`.
fn fallback_dir() -> PathBuf {
    let secs = inferbench_timer::unix_now_s();
    std::env::temp_dir().join(format!("inferbench-{secs}-{}", std::process::id()))
}

/// Writes the final report into `dir`, else into a fallback directory; says on stderr what
/// failed and where it went. Returns the directory that holds it (none: written nowhere).
pub fn save(dir: &Path, report: &Report) -> Option<PathBuf> {
    let e = match write_reports(dir, report) {
        Ok(()) => return Some(dir.to_path_buf()),
        Err(e) => e,
    };
    eprintln!(
        "error: the report could not be written to {}: {e:#}",
        dir.display()
    );
    let fallback = fallback_dir();
    let saved = std::fs::create_dir_all(&fallback)
        .with_context(|| format!("cannot create {}", fallback.display()))
        .and_then(|()| write_reports(&fallback, report));
    match saved {
        Ok(()) => {
            eprintln!("the report was written to {} instead", fallback.display());
            Some(fallback)
        }
        Err(e) => {
            eprintln!(
                "error: nor to {}: {e:#}\nthe summary printed above is all that is left of this run",
                fallback.display()
            );
            None
        }
    }
}
