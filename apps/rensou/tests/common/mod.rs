//! Helpers shared by the binary's integration tests: running `rensou`, checking its errors,
//! and writing tiny datasets.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rensou_api::modality::{ItemSet, LabelSpec, Split};
use rensou_store::{write_dataset, DatasetContents, Provenance};

/// Held while this process has an HDF5 file open and while it starts a child: HDF5 opens files
/// without close-on-exec, so a child started meanwhile would inherit the open file, and its
/// lock, for its whole run, and another test's `rensou` could not open that file.
static SPAWN: Mutex<()> = Mutex::new(());

/// Takes the spawn lock (see [`SPAWN`]).
pub fn spawn_lock() -> MutexGuard<'static, ()> {
    SPAWN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `rensou args...` in `dir` with extra environment variables.
pub fn rensou_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let child = {
        let _spawning = spawn_lock();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rensou"));
        cmd.current_dir(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn().expect("run rensou")
    };
    child.wait_with_output().expect("run rensou")
}

/// Runs `rensou args...` in `dir`.
pub fn rensou(dir: &Path, args: &[&str]) -> Output {
    rensou_env(dir, args, &[])
}

/// Asserts success; returns stdout and stderr together.
pub fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rensou failed: {stderr}");
    format!("{}{stderr}", String::from_utf8_lossy(&out.stdout))
}

/// Non-zero exit, no panic, and exactly one error line on stderr; returns stderr.
pub fn fails(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "rensou should fail: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(lines.len(), 1, "one error line expected: {stderr}");
    stderr
}

/// A tiny paired dataset: modalities `a` and `b` with items of `shape`, labels `number` (1..9,
/// or what `number` returns for pair `i`); 90 train and 27 test pairs.
pub struct Tiny {
    /// Item shape of both modalities.
    pub shape: Vec<usize>,
    /// The number label of pair `i`.
    pub number: fn(usize) -> i64,
    /// An extra categorical `colour` label (0..=3) for modality `a`, value of pair `i`.
    pub colour: Option<fn(usize) -> i64>,
    /// The stored build config (the file's root `config` attribute; empty TOML by default).
    pub config_toml: &'static str,
}

impl Default for Tiny {
    fn default() -> Self {
        Tiny {
            shape: vec![8, 8, 3],
            number: |i| (i % 9 + 1) as i64,
            colour: None,
            config_toml: "",
        }
    }
}

impl Tiny {
    /// Writes the dataset to `path`.
    pub fn write(&self, path: &Path) {
        let features: usize = self.shape.iter().product();
        let mut contents = DatasetContents {
            modalities: vec!["a".into(), "b".into()],
            provenance: Provenance {
                seed: 0,
                config_toml: self.config_toml.to_owned(),
                sources: vec!["a: synthetic".into(), "b: synthetic".into()],
            },
            suggested: Default::default(),
            ..Default::default()
        };
        for (split, pairs) in [(Split::Train, 90), (Split::Test, 27)] {
            let mut sets = BTreeMap::new();
            for (m, salt) in [("a", 3usize), ("b", 11)] {
                let mut specs = vec![LabelSpec::numeric("number", "how many")];
                let mut names = vec!["number"];
                let colour = self.colour.filter(|_| m == "a");
                if colour.is_some() {
                    specs.push(rensou_api::vocab::Colour::label_spec());
                    names.push("colour");
                }
                contents.label_specs.insert(m.into(), specs);
                let mut set = ItemSet::new(self.shape.clone(), &names);
                for i in 0..pairs {
                    let n = (self.number)(i);
                    let lit = n.clamp(1, 9) as usize * features / 10;
                    let item: Vec<u8> = (0..features)
                        .map(|p| {
                            if p < lit {
                                230
                            } else {
                                ((p * salt + i) % 30) as u8
                            }
                        })
                        .collect();
                    let mut labels = vec![("number", n)];
                    if let Some(c) = colour {
                        labels.push(("colour", c(i)));
                    }
                    set.push(&item, &labels).expect("push");
                }
                sets.insert(m.to_string(), set);
            }
            contents.splits.insert(split, sets);
        }
        let _no_spawning = spawn_lock();
        write_dataset(path, &contents).expect("write dataset");
    }
}

/// Writes the default tiny dataset as `dir/tiny.h5`.
pub fn write_tiny(dir: &Path) -> PathBuf {
    let path = dir.join("tiny.h5");
    Tiny::default().write(&path);
    path
}

/// A run config with tiny nets (`dir/tiny.toml`): latent 4, one hidden layer of 16, batch 32,
/// K = 2, seed 3.
pub fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("tiny.toml");
    std::fs::write(
        &path,
        "[model]\nlatent_dim = 4\nnet = { type = \"mlp\", hidden = [16] }\n\n\
         [training]\nbatch_size = 32\nk = 2\nseed = 3\n",
    )
    .expect("write config");
    path
}

/// `train` on the tiny dataset and config ([`write_tiny`], [`write_config`]), modalities a and
/// b, then `extra`.
pub fn train_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v: Vec<&str> = vec![
        "train",
        "--data",
        "tiny.h5",
        "--config",
        "tiny.toml",
        "--modalities",
        "a,b",
    ];
    v.extend_from_slice(extra);
    v
}

/// Every file under `dir` with a hash of its contents (FNV-1a), to show that a failed command
/// changed nothing.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, u64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                let h = rensou_api::rng::fnv1a_bytes(&bytes);
                out.insert(
                    p.strip_prefix(dir).unwrap_or(&p).to_path_buf(),
                    (bytes.len() as u64, h),
                );
            }
        }
    }
    out
}

/// Runs `rensou args` expecting a one-line error, and checks that no file under `dir` changed
/// (none added, removed or rewritten). Returns the error line.
pub fn refused(dir: &Path, args: &[&str]) -> String {
    refused_env(dir, args, &[])
}

/// [`refused`] with extra environment variables.
pub fn refused_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let before = snapshot(dir);
    let e = fails(&rensou_env(dir, args, env));
    let after = snapshot(dir);
    assert_eq!(before, after, "`rensou {}` changed files", args.join(" "));
    e
}

/// Starts `rensou args...` in `dir` (output discarded), waits until `run/checkpoints` holds a
/// checkpoint named `epoch` (`epoch-003`) or later, then kills it with SIGKILL (no chance to
/// clean up). Returns whether the checkpoint appeared within `limit`.
pub fn kill_after_checkpoint(
    dir: &Path,
    args: &[&str],
    run: &Path,
    epoch: &str,
    limit: Duration,
) -> bool {
    let mut child = {
        let _spawning = spawn_lock();
        Command::new(env!("CARGO_BIN_EXE_rensou"))
            .current_dir(dir)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn rensou")
    };
    let start = Instant::now();
    let reached = loop {
        let done = std::fs::read_dir(run.join("checkpoints"))
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().as_ref() >= epoch)
            })
            .unwrap_or(false);
        if done || start.elapsed() > limit {
            break done;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    reached
}

/// `rensou doctor`'s output passed every stage named (each on an `ok` line) and its verdict
/// is OK and names this build's backend.
pub fn assert_doctor_passed(text: &str, stages: &[&str]) {
    let verdict = text
        .lines()
        .find(|l| l.starts_with("verdict:"))
        .unwrap_or_else(|| panic!("no verdict: {text}"));
    assert!(
        verdict.starts_with("verdict: OK") && verdict.contains(rensou::backend::NAME),
        "{text}"
    );
    for stage in stages {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with("ok") && l.contains(stage)),
            "{stage}: {text}"
        );
    }
}
