//! The epochs at which a run keeps its model for probing: `--probe-epochs 1,2,5,10` and
//! `--probe-every N` (`rensou paper`), `--keep-epochs` and `--keep-every` (`rensou train`),
//! resolved in one place against the run's epochs.

use anyhow::bail;

/// The most epochs a run keeps or a study probes besides its last.
pub const MAX_POINTS: usize = 1_000;

/// The epochs named by a list and an interval, sorted and without repeats, each checked to lie
/// in `1..=epochs`; the last epoch is left out when `keep_last` is false (a study probes it
/// anyway). `list_flag` and `every_flag` name the flags in errors.
pub fn resolve(
    list: &[usize],
    every: Option<usize>,
    epochs: usize,
    keep_last: bool,
    (list_flag, every_flag): (&str, &str),
) -> anyhow::Result<Vec<usize>> {
    let mut out: Vec<usize> = Vec::new();
    for &e in list {
        if e == 0 || e > epochs {
            bail!("{list_flag} names epoch {e}, but the run has epochs 1 to {epochs}");
        }
        out.push(e);
    }
    match every {
        Some(0) => bail!("{every_flag} must be at least 1"),
        Some(n) if epochs / n > MAX_POINTS => bail!(
            "{every_flag} {n} names {} epochs, more than {MAX_POINTS}: raise {every_flag}",
            epochs / n
        ),
        Some(n) => out.extend((n..=epochs).step_by(n)),
        None => {}
    }
    out.sort_unstable();
    out.dedup();
    if out.len() > MAX_POINTS {
        bail!(
            "{list_flag} names {} epochs, more than {MAX_POINTS}",
            out.len()
        );
    }
    if !keep_last {
        out.retain(|&e| e != epochs);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: (&str, &str) = ("--probe-epochs", "--probe-every");

    #[test]
    fn lists_and_intervals_merge_sorted_without_repeats() {
        assert_eq!(
            resolve(&[5, 1, 2, 5], Some(4), 10, true, FLAGS).unwrap(),
            vec![1, 2, 4, 5, 8]
        );
        assert_eq!(resolve(&[1, 10], None, 10, false, FLAGS).unwrap(), vec![1]);
        assert_eq!(resolve(&[3], None, 10, true, FLAGS).unwrap(), vec![3]);
        assert!(resolve(&[], None, 10, true, FLAGS).unwrap().is_empty());
        assert_eq!(
            resolve(&[], Some(5), 10, false, FLAGS).unwrap(),
            vec![5],
            "the last epoch is the study's own probe point"
        );
    }

    #[test]
    fn epochs_outside_the_run_are_refused_naming_the_flag() {
        let e = resolve(&[0], None, 10, true, FLAGS)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--probe-epochs names epoch 0") && e.contains("1 to 10"),
            "{e}"
        );
        let e = resolve(&[11], None, 10, true, FLAGS)
            .unwrap_err()
            .to_string();
        assert!(e.contains("epoch 11"), "{e}");
        let e = resolve(&[], Some(0), 10, true, FLAGS)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--probe-every must be at least 1"), "{e}");
        let e = resolve(&[], Some(1), 100_000, true, FLAGS)
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than 1000"), "{e}");
    }
}
