//! Progress bars for the library's `Progress` reports.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rensou_api::progress::Progress;

/// Draws one bar per stage on stderr. When stderr is not a terminal the bars are hidden and
/// messages are printed as plain lines, so logs keep them.
pub struct Bars {
    bar: Mutex<Option<ProgressBar>>,
    prefix: Mutex<String>,
    terminal: bool,
}

impl Bars {
    pub fn new() -> Self {
        Bars {
            bar: Mutex::new(None),
            prefix: Mutex::new(String::new()),
            terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }
    }

    fn with_bar(&self, f: impl FnOnce(&mut Option<ProgressBar>)) {
        if let Ok(mut guard) = self.bar.lock() {
            f(&mut guard);
        }
    }

    /// Shows `prefix` before every stage's name from now on (e.g. `point 3/6 (epoch 4): `, the
    /// outer loop of work whose stages the library reports); empty: none.
    pub fn set_prefix(&self, prefix: &str) {
        if let Ok(mut p) = self.prefix.lock() {
            *p = prefix.to_owned();
        }
    }

    /// Finishes the current bar.
    pub fn finish(&self) {
        self.with_bar(|b| {
            if let Some(bar) = b.take() {
                bar.finish_and_clear();
            }
        });
    }
}

impl Progress for Bars {
    fn stage(&self, name: &str, total: Option<u64>) {
        let prefix = self.prefix.lock().map(|p| p.clone()).unwrap_or_default();
        self.with_bar(|b| {
            if let Some(bar) = b.take() {
                bar.finish_and_clear();
            }
            let bar = match total {
                Some(n) => ProgressBar::new(n).with_style(
                    ProgressStyle::with_template(
                        "{msg:>16} [{bar:40}] {pos}/{len} ({per_sec}, ETA {eta})",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{msg:>16} {spinner} {pos} ({elapsed})")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                ),
            };
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.set_message(format!("{prefix}{name}"));
            *b = Some(bar);
        });
    }

    fn advance(&self, n: u64) {
        self.with_bar(|b| {
            if let Some(bar) = b {
                bar.inc(n);
            }
        });
    }

    fn message(&self, text: &str) {
        if !self.terminal {
            eprintln!("{text}");
            return;
        }
        self.with_bar(|b| match b {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        });
    }
}
