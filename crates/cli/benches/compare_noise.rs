//! How often `inferbench compare` is right: pairs of short runs against the same mock must be
//! "within noise" (exit 0), and a run against a mock whose TTFT is 15% higher must be a
//! regression (exit 1). Each repetition makes three real runs (Poisson arrivals, so batching and
//! the mock's jitter vary) and two comparisons, all with the real binary.
//!
//! `cargo bench -p inferbench --bench compare_noise [-- --reps 20 --seconds 4 --rate 40]`

use std::process::{Command, Stdio};

mod common;
use common::{arg, spawn_mock};

const BIN: &str = env!("CARGO_BIN_EXE_inferbench");

fn run(url: &str, out: &std::path::Path, seconds: f64, rate: f64, seed: usize) {
    let status = Command::new(BIN)
        .args([
            "run",
            "--target",
            url,
            "--no-history",
            "--arrival",
            "poisson",
        ])
        .args(["--rate", &rate.to_string()])
        .args(["--duration", &format!("{seconds}s"), "--warmup", "1s"])
        .args(["--seed", &seed.to_string()])
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("inferbench run");
    assert!(status.success(), "run against {url} failed: {status}");
}

fn compare(base: &std::path::Path, cur: &std::path::Path) -> (i32, String) {
    let out = Command::new(BIN)
        .arg("compare")
        .arg(base)
        .arg(cur)
        .arg("--quiet")
        .output()
        .expect("inferbench compare");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn main() {
    let reps = arg("--reps", 20.0) as usize;
    let seconds = arg("--seconds", 4.0);
    let rate = arg("--rate", 40.0);
    let dir = std::env::temp_dir().join(format!("inferbench-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let common = [
        "--itl-ms",
        "5",
        "--jitter",
        "0.1",
        "--prefill-ms-per-token",
        "0.02",
    ];
    let (_a, a) = spawn_mock(BIN, 1, &[&["--ttft-ms", "50"][..], &common[..]].concat());
    let (_b, b) = spawn_mock(BIN, 1, &[&["--ttft-ms", "57.5"][..], &common[..]].concat());
    let (ua, ub) = (format!("http://{}", a[0]), format!("http://{}", b[0]));

    let (mut same_ok, mut slow_caught) = (0, 0);
    for i in 0..reps {
        let (base, again, slow) = (
            dir.join(format!("{i}-base")),
            dir.join(format!("{i}-again")),
            dir.join(format!("{i}-slow")),
        );
        run(&ua, &base, seconds, rate, 3 * i);
        run(&ua, &again, seconds, rate, 3 * i + 1);
        run(&ub, &slow, seconds, rate, 3 * i + 2);
        let (same, same_text) = compare(&base, &again);
        let (regr, regr_text) = compare(&base, &slow);
        same_ok += usize::from(same == 0);
        slow_caught += usize::from(regr == 1);
        println!(
            "rep {:>2}: same mock → exit {same}; TTFT +15% → exit {regr}",
            i + 1
        );
        if same != 0 {
            print!("  same-mock false alarm:\n{same_text}");
        }
        if regr != 1 {
            print!("  missed regression:\n{regr_text}");
        }
    }
    println!(
        "\nsame mock, within noise (exit 0): {same_ok}/{reps}\nTTFT +15%, regression (exit 1): {slow_caught}/{reps}\n({seconds} s at {rate} req/s Poisson per run)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
