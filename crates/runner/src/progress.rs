//! A live line on stderr while a step runs (only when stderr is a terminal): elapsed, sent,
//! done, errors, current rate, in flight.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use inferbench_loadgen::engine::Live;

/// Spawns the progress display; abort the handle to end it.
pub fn spawn(
    live: Arc<Live>,
    duration: Option<Duration>,
    requests: Option<u64>,
) -> tokio::task::JoinHandle<()> {
    let bar = match (duration, requests) {
        (_, Some(n)) => indicatif::ProgressBar::new(n),
        (Some(d), None) => indicatif::ProgressBar::new(d.as_secs().max(1)),
        (None, None) => indicatif::ProgressBar::no_length(),
    };
    let by_time = requests.is_none();
    let style = indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        let mut last = (start, 0u64);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        struct Clear(indicatif::ProgressBar);
        impl Drop for Clear {
            fn drop(&mut self) {
                self.0.finish_and_clear();
            }
        }
        let guard = Clear(bar);
        loop {
            tick.tick().await;
            let now = tokio::time::Instant::now();
            let done = live.done.load(Ordering::Relaxed);
            let rate = (done - last.1) as f64 / (now - last.0).as_secs_f64().max(1e-9);
            last = (now, done);
            guard.0.set_position(if by_time {
                (now - start).as_secs()
            } else {
                live.sent.load(Ordering::Relaxed)
            });
            guard.0.set_message(format!(
                "sent {} done {} errors {} · {:.0} req/s · in flight {}",
                live.sent.load(Ordering::Relaxed),
                done,
                live.errors.load(Ordering::Relaxed),
                rate,
                live.in_flight.load(Ordering::Relaxed)
            ));
        }
    })
}
