//! Progress reporting without a terminal dependency: library code reports stages and counts,
//! the binary draws bars.

/// Receives progress from long-running library work.
pub trait Progress: Sync {
    /// A new stage begins; `total` is the number of units when known.
    fn stage(&self, name: &str, total: Option<u64>);
    /// `n` more units of the current stage are done.
    fn advance(&self, n: u64);
    /// A line of information for the user (printed above any bar).
    fn message(&self, _text: &str) {}
}

/// Progress that goes nowhere (tests, quiet mode).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&self, _name: &str, _total: Option<u64>) {}
    fn advance(&self, _n: u64) {}
}
