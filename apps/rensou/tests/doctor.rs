//! `rensou doctor` through the binary, on whatever backend this build runs: its plain form
//! passes with a verdict naming the backend, and a stage forced to hang is reported by the
//! watchdog (stage, cubecl's log on GPU builds, every thread's stack) with exit status 3.

mod common;

use common::*;

/// The plain form times the paper's step (K = 20, batch 128): a second on the CPU, many minutes
/// on lavapipe, so the GPU builds' tier runs doctor at a small size instead (gpu_path.rs).
#[cfg(not(feature = "gpu"))]
#[test]
fn doctor_plain_form_passes_and_names_the_backend() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("doctor.json");
    let out = rensou(
        dir.path(),
        &["doctor", "--json", json.to_str().expect("utf-8 path")],
    );
    let text = ok(&out);
    assert!(text.contains("build: backend"), "{text}");
    assert_doctor_passed(
        &text,
        &[
            "device start",
            "matmul 256x256 (compile + run)",
            "small autodiff step",
            "paper model on the device",
            "training step 1 (paper MLP MMVAE",
            "training step 2 (warm)",
            "training step 3 (warm)",
        ],
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("JSON");
    assert_eq!(report["ok"], true);
    assert_eq!(report["k"], 20);
    assert_eq!(report["batch"], 128);
    let stages = report["stages"].as_array().expect("stages");
    assert!(stages
        .iter()
        .all(|s| s["seconds"].as_f64().is_some_and(|t| t >= 0.0)));
    assert_eq!(
        stages
            .iter()
            .filter(|s| s["stage"].as_str().is_some_and(|n| n.starts_with("step-")))
            .count(),
        3
    );
}

#[test]
fn a_stalled_stage_is_reported_with_every_threads_stack() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = rensou(
        dir.path(),
        &["doctor", "--stall-after", "2", "--simulate-stall", "matmul"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("ok    device start"), "{stdout}");
    assert!(
        stdout.contains("STALL matmul 256x256 (compile + run)")
            && stdout.contains("stage: matmul 256x256 (compile + run)")
            && stdout.contains("doing: the first matmul"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("verdict: STALLED: 'matmul 256x256")),
        "{stdout}"
    );
    if rensou::backend::IS_GPU {
        assert!(stdout.contains("cubecl log ("), "{stdout}");
    }
    if stdout.contains("thread stacks (gdb)") {
        // Real stacks: the main thread is in the stalled stage, the watchdog reports it.
        assert!(stdout.contains("simulated_stall"), "{stdout}");
        assert!(stdout.contains("watchdog"), "{stdout}");
    } else {
        // No gdb, or one that may not attach here: each thread from /proc.
        assert!(stdout.contains("thread stacks (/proc"), "{stdout}");
        assert!(stdout.contains("\"rensou-watchdog\""), "{stdout}");
    }
}
