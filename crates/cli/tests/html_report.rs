//! report.html as a browser shows it: the built-in suite runs (shortened), then headless
//! Chromium opens the page. It must load without a console message (the page has no script, so
//! any is a script error, a blocked load or a Content-Security-Policy violation), its screenshot
//! must show charts (not a blank page) and its DOM must hold the SVG charts.
//!
//! Needs Chromium: `apt-get install -y chromium` (or `INFERBENCH_CHROMIUM=/path/to/chromium`).
//! Without it the test fails, unless `INFERBENCH_SKIP_BROWSER=1`.
//! `INFERBENCH_UPDATE_SCREENSHOT=1` copies the screenshot to `docs/img/report-html.png`; the
//! suite then runs longer (scale 0.25 instead of 0.04) so the pictured charts have a few points
//! over time rather than one.
// Wall-clock deadlines for servers in other threads and processes (not paused time).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::collections::HashSet;
use std::fs::File;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest a browser run may take before it is killed.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest the shortened suite may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// A new, empty directory under the system's temp dir.
fn fresh_dir(tag: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("inferbench-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What a finished (or killed) command left: its status and what it printed.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    timed_out: bool,
}

/// Runs `cmd` in its own process group with stdout and stderr going to files in `dir` (no pipe
/// to fill up), killing the whole group after `timeout`.
fn run(mut cmd: Command, dir: &Path, name: &str, timeout: Duration) -> Ran {
    use std::os::unix::process::CommandExt;
    let out_path = dir.join(format!("{name}.stdout"));
    let err_path = dir.join(format!("{name}.stderr"));
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .process_group(0);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            // The group: the browser and every helper process it started.
            let _ = Command::new("kill")
                .args(["-KILL", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ran {
        status,
        stdout: String::from_utf8_lossy(&std::fs::read(&out_path).unwrap_or_default()).into(),
        stderr: String::from_utf8_lossy(&std::fs::read(&err_path).unwrap_or_default()).into(),
        timed_out,
    }
}

/// The Chromium to use: `INFERBENCH_CHROMIUM`, else `/usr/bin/chromium`; `Err` says what is missing.
fn chromium() -> Result<PathBuf, String> {
    let path = std::env::var_os("INFERBENCH_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "Chromium not found at {}: install it with `apt-get install -y chromium` (Debian), or \
             point INFERBENCH_CHROMIUM at a Chromium binary, or set INFERBENCH_SKIP_BROWSER=1 to \
             skip the browser checks",
            path.display()
        ))
    }
}

/// A `file://` URL of an absolute path.
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for ch in path.display().to_string().chars() {
        match ch {
            '%' => url.push_str("%25"),
            ' ' => url.push_str("%20"),
            '#' => url.push_str("%23"),
            '?' => url.push_str("%3F"),
            c => url.push(c),
        }
    }
    url
}

/// Headless Chromium on `url` with the fixed flags, a fresh profile, and `extra` flags.
fn browser(bin: &Path, dir: &Path, name: &str, url: &str, extra: &[String]) -> Ran {
    let profile = dir.join(format!("profile-{name}"));
    std::fs::create_dir_all(&profile).unwrap();
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=1280,2400",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(url);
    let ran = run(cmd, dir, name, BROWSER_TIMEOUT);
    assert!(
        !ran.timed_out,
        "Chromium ({name}) still running after {BROWSER_TIMEOUT:?}; killed. stderr:\n{}",
        ran.stderr
    );
    assert!(
        ran.status.success(),
        "Chromium ({name}) failed: {}\nstderr:\n{}",
        ran.status,
        ran.stderr
    );
    ran
}

/// Lines of Chromium's log that tell of a problem with the page: any console message (the page
/// has no script: a message is a script error, a failed load or a blocked one), an uncaught
/// exception, a resource that failed to load.
fn page_problems(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            l.contains("CONSOLE")
                || l.contains("Uncaught")
                || l.contains("Failed to load")
                || l.contains("Refused to")
        })
        .collect()
}

/// An 8-bit RGB(A) image: width, height, channels, pixels.
struct Image {
    width: usize,
    height: usize,
    channels: usize,
    data: Vec<u8>,
}

/// Decodes a PNG into 8-bit samples (palettes expanded, 16-bit stripped).
fn decode_png(bytes: Vec<u8>) -> Image {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("screenshot is a PNG");
    let size = reader
        .output_buffer_size()
        .expect("image size fits in memory");
    let mut data = vec![0; size];
    let info = reader.next_frame(&mut data).expect("screenshot decodes");
    data.truncate(info.buffer_size());
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => panic!("palette was not expanded"),
    };
    Image {
        width: info.width as usize,
        height: info.height as usize,
        channels,
        data,
    }
}

impl Image {
    /// Each pixel's RGB.
    fn pixels(&self) -> impl Iterator<Item = [u8; 3]> + '_ {
        self.data.chunks_exact(self.channels).map(|p| match p {
            [g] | [g, _] => [*g, *g, *g],
            [r, g, b, ..] => [*r, *g, *b],
            _ => [255, 255, 255],
        })
    }
}

/// Whether two colours are within `tolerance` on every channel.
fn near(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tolerance)
}

#[test]
fn report_html_renders_in_headless_chromium() {
    // 1. The built-in suite, shortened, writes report.html.
    let update = std::env::var("INFERBENCH_UPDATE_SCREENSHOT").as_deref() == Ok("1");
    let scale = if update { "0.25" } else { "0.04" };
    let dir = fresh_dir("html-report");
    // Kept when the test fails: the report, the screenshot and the browser's logs.
    eprintln!("work dir: {}", dir.display());
    let out = dir.join("results");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_inferbench"));
    // Run from the temp dir: whatever the run writes beside its report (the history store)
    // stays there.
    cmd.current_dir(&dir)
        .args(["run", "--scale", scale, "--out"])
        .arg(&out);
    let ran = run(cmd, &dir, "inferbench-run", RUN_TIMEOUT);
    assert!(
        !ran.timed_out && ran.status.code() == Some(0),
        "inferbench run exited {} (timed out: {})\nstdout:\n{}\nstderr:\n{}",
        ran.status,
        ran.timed_out,
        ran.stdout,
        ran.stderr
    );
    let html_path = out.join("report.html");
    assert!(
        html_path.is_file(),
        "{} was not written",
        html_path.display()
    );
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(
        html.matches("<svg").count() >= 5,
        "too few charts in the file"
    );

    // 2. A browser.
    let bin = match chromium() {
        Ok(bin) => bin,
        Err(why) if std::env::var("INFERBENCH_SKIP_BROWSER").as_deref() == Ok("1") => {
            eprintln!("skipped the browser checks (INFERBENCH_SKIP_BROWSER=1): {why}");
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
        Err(why) => panic!("{why}"),
    };
    let url = file_url(&html_path.canonicalize().unwrap());

    // 3. A screenshot, with no complaint about the page.
    let png_path = dir.join("report.png");
    let shot = browser(
        &bin,
        &dir,
        "screenshot",
        &url,
        &[format!("--screenshot={}", png_path.display())],
    );
    let problems = page_problems(&shot.stderr);
    assert!(
        problems.is_empty(),
        "the page logged problems:\n{}",
        problems.join("\n")
    );

    // 4. The screenshot is not blank: content, colours, and the charts' own colours.
    let bytes = std::fs::read(&png_path)
        .unwrap_or_else(|e| panic!("no screenshot at {}: {e}", png_path.display()));
    let img = decode_png(bytes.clone());
    assert_eq!((img.width, img.height), (1280, 2400), "screenshot size");
    let total = img.width * img.height;
    let mut non_white = 0usize;
    let mut colours = HashSet::new();
    // TTFT blue (#2563eb) and ok/s teal (#0d9488), as every chart draws them.
    let (mut ttft_blue, mut ok_teal) = (0usize, 0usize);
    for p in img.pixels() {
        if p.iter().any(|c| *c < 240) {
            non_white += 1;
        }
        colours.insert(p);
        ttft_blue += usize::from(near(p, [0x25, 0x63, 0xeb], 40));
        ok_teal += usize::from(near(p, [0x0d, 0x94, 0x88], 40));
    }
    let share = non_white as f64 / total as f64;
    assert!(
        share >= 0.03,
        "screenshot nearly blank: {:.2}% non-white pixels",
        share * 100.0
    );
    assert!(
        colours.len() >= 5,
        "screenshot has {} colours",
        colours.len()
    );
    assert!(
        ttft_blue >= 50 && ok_teal >= 50,
        "charts' colours missing from the screenshot: {ttft_blue} TTFT-blue, {ok_teal} ok-teal pixels"
    );

    // The DOM as the browser built it holds the charts.
    let dom = browser(&bin, &dir, "dump-dom", &url, &["--dump-dom".to_string()]);
    let svgs = dom.stdout.matches("<svg").count();
    assert!(svgs >= 5, "{svgs} <svg> elements in the DOM");
    assert!(
        dom.stdout.contains("inferbench report"),
        "DOM has no report"
    );
    let problems = page_problems(&dom.stderr);
    assert!(
        problems.is_empty(),
        "the page logged problems:\n{}",
        problems.join("\n")
    );

    // 5. Refresh the picture in the docs when asked.
    if update {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/img");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join("report-html.png"), &bytes).unwrap();
        eprintln!("updated {}", docs.join("report-html.png").display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
