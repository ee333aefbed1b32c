//! Progress over the tasks that actually run: an indicatif bar (count, rate, ETA) on a terminal,
//! one line per finished task otherwise (logs, CI).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
}

impl Progress {
    /// `total`: tasks that may run; cached ones are subtracted as they are found.
    pub fn new(total: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} tasks ({per_sec}, ETA {eta}) {wide_msg}",
                )
                .expect("valid template"),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Self {
            bar,
            total: total as u64,
            done: 0,
        }
    }

    /// A task will not run (cached, or blocked by a failure upstream).
    pub fn skip(&mut self) {
        self.total = self.total.saturating_sub(1);
        if let Some(b) = &self.bar {
            b.set_length(self.total);
        }
    }

    pub fn running(&self, labels: &[String]) {
        if let Some(b) = &self.bar {
            let mut msg = labels
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if labels.len() > 3 {
                msg.push_str(&format!(" +{}", labels.len() - 3));
            }
            b.set_message(msg);
        }
    }

    pub fn finished(&mut self, label: &str, outcome: &str) {
        self.done += 1;
        match &self.bar {
            Some(b) => b.inc(1),
            None => eprintln!(
                "[{}/{}] {label}: {outcome}",
                self.done,
                self.total.max(self.done)
            ),
        }
    }

    /// Print above the bar (or plainly).
    pub fn println(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.suspend(|| eprintln!("{msg}")),
            None => eprintln!("{msg}"),
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
