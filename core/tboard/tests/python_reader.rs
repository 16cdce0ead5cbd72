//! TensorBoard itself reads what rensou-tboard writes: a run killed mid-record and then resumed
//! in the same directory is read with TensorBoard's `EventAccumulator`
//! (`tests/tensorboard_reader.py`), which must see every scalar at f32 precision, each tag's
//! steps once and in order, and images that decode.
//!
//! The Python interpreter is `$RENSOU_PYTHON` (default `python3`) and needs the `tensorboard`
//! package (`pip install tensorboard`, which brings Pillow for decoding the PNGs). Without it
//! this test says so and passes, unless `RENSOU_REQUIRE_PYTHON=1` (as CI sets it, like
//! `RENSOU_REQUIRE_SLURM`), when it fails.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::Path;
use std::process::Command;

use rensou_tboard::EventWriter;
use serde_json::Value;

/// A `width`x`height` PNG with `channels` channels (1 grey, 4 RGBA, else RGB).
fn png(width: u32, height: u32, channels: u8) -> Vec<u8> {
    let color = match channels {
        1 => png::ColorType::Grayscale,
        4 => png::ColorType::Rgba,
        _ => png::ColorType::Rgb,
    };
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    let n = (width * height) as usize * usize::from(channels);
    let data: Vec<u8> = (0..n).map(|i| (i * 37 % 251) as u8).collect();
    writer.write_image_data(&data).unwrap();
    writer.finish().unwrap();
    out
}

/// The per-step objective each run logs: values that need all of f32's precision. The
/// resumed run adds 1000 so the reader's values show which run wrote each step.
fn objective(step: i64, run: u32) -> f64 {
    1.0 / (step as f64 + 3.0) + (step as f64 * 0.7).sin() * 1e-3 + 1000.0 * f64::from(run)
}

fn learning_rate(step: i64) -> f64 {
    1e-3 * 0.97f64.powi(step as i32)
}

/// Per-epoch scalars: train and test objective, samples per second.
fn epoch_scalars(epoch: i64, run: u32) -> [(&'static str, f64); 3] {
    let e = epoch as f64 + 1000.0 * f64::from(run);
    [
        ("epoch/train_objective", 100.0 / (e + 1.0)),
        ("epoch/test_objective", 101.5 / (e + 1.0)),
        ("epoch/samples_per_s", 12_345.678 + e),
    ]
}

const STEPS_PER_EPOCH: i64 = 10;

/// Logs the steps of `steps` as a trainer would; epoch ends get epoch scalars and image grids.
fn log_steps(writer: &mut EventWriter, steps: std::ops::Range<i64>, run: u32) {
    for step in steps {
        writer
            .add_scalar("step/objective", objective(step, run), step)
            .unwrap();
        writer
            .add_scalar("step/learning_rate", learning_rate(step), step)
            .unwrap();
        if (step + 1) % STEPS_PER_EPOCH == 0 {
            let epoch = (step + 1) / STEPS_PER_EPOCH;
            writer
                .add_scalars(&epoch_scalars(epoch, run), epoch)
                .unwrap();
            // The second run's grids are bigger and RGBA, so the reader shows whose they are.
            let (w, h, c) = if run == 0 { (7, 5, 3) } else { (9, 6, 4) };
            writer
                .add_image_png("grid/reconstruction", &png(w, h, c), w, h, c, epoch)
                .unwrap();
            if epoch == 1 {
                writer
                    .add_image_png("grid/grey", &png(3, 4, 1), 3, 4, 1, epoch)
                    .unwrap();
            }
        }
    }
}

/// Runs the TensorBoard reader on `dir`; `None` when Python or TensorBoard is missing and
/// `RENSOU_REQUIRE_PYTHON=1` does not demand them.
fn tensorboard_read(dir: &Path) -> Option<Value> {
    let python = std::env::var("RENSOU_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tensorboard_reader.py");
    let missing = |why: String| {
        if std::env::var("RENSOU_REQUIRE_PYTHON").as_deref() == Ok("1") {
            panic!(
                "{why}\nInstall TensorBoard for that Python (`pip install tensorboard`) or point \
                 RENSOU_PYTHON at a Python that has it (RENSOU_REQUIRE_PYTHON=1 demands it)."
            )
        } else {
            eprintln!(
                "skipped: {why} (install TensorBoard, or set RENSOU_PYTHON; \
                 RENSOU_REQUIRE_PYTHON=1 makes this a failure)"
            );
            None
        }
    };
    let output = match Command::new(&python).arg(&script).arg(dir).output() {
        Ok(output) => output,
        Err(e) => return missing(format!("cannot run {python}: {e}")),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => Some(serde_json::from_slice(&output.stdout).expect("the reader prints JSON")),
        Some(3) => missing(stderr.trim().to_owned()),
        _ => panic!("{} failed ({}):\n{stderr}", script.display(), output.status),
    }
}

#[test]
fn tensorboard_reads_a_killed_and_resumed_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");

    // First run: three epochs, then killed while writing step 30's objective.
    let mut first = EventWriter::create(&run).unwrap();
    log_steps(&mut first, 0..30, 0);
    first
        .add_scalar("step/objective", objective(30, 0), 30)
        .unwrap();
    first.flush().unwrap();
    let first_path = first.path().to_path_buf();
    std::mem::forget(first); // killed: no drop
    let len = std::fs::metadata(&first_path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&first_path)
        .unwrap()
        .set_len(len - 4)
        .unwrap();

    // Second run resumes from its epoch-2 checkpoint: steps 20..50 again, epochs 3..5.
    let mut resumed = EventWriter::resume(&run).unwrap();
    assert_eq!(resumed.last_step("step/objective"), Some(29));
    log_steps(&mut resumed, 20..50, 1);
    drop(resumed);

    // What TensorBoard must show: steps below 30 from the first run, the rest from the second.
    let run_of = |step: i64| u32::from(step >= 30);
    let mut expected = BTreeMap::<String, Vec<(i64, f32)>>::new();
    for step in 0..50 {
        let objective = objective(step, run_of(step)) as f32;
        expected
            .entry("step/objective".into())
            .or_default()
            .push((step, objective));
        let lr = learning_rate(step) as f32;
        expected
            .entry("step/learning_rate".into())
            .or_default()
            .push((step, lr));
    }
    for epoch in 1..=5 {
        let epoch_run = u32::from(epoch > 3);
        for (tag, value) in epoch_scalars(epoch, epoch_run) {
            expected
                .entry(tag.into())
                .or_default()
                .push((epoch, value as f32));
        }
    }

    let Some(read) = tensorboard_read(&run) else {
        return;
    };

    let scalars = read["scalars"].as_object().unwrap();
    let tags: Vec<&String> = scalars.keys().collect();
    assert_eq!(tags, expected.keys().collect::<Vec<_>>());
    for (tag, want) in &expected {
        let got: Vec<(i64, f32)> = scalars[tag]
            .as_array()
            .unwrap()
            .iter()
            .map(|point| {
                let wall_time = point[2].as_f64().unwrap();
                assert!(wall_time > 1.6e9, "{tag}: wall time {wall_time}");
                let value = point[1].as_f64().unwrap();
                // TensorBoard holds the f32 widened to f64: narrowing it back is exact.
                assert_eq!(
                    f64::from(value as f32),
                    value,
                    "{tag}: {value} is not an f32"
                );
                (point[0].as_i64().unwrap(), value as f32)
            })
            .collect();
        assert_eq!(&got, want, "{tag}");
    }

    let images = read["images"].as_object().unwrap();
    let sizes = |tag: &str| -> Vec<[i64; 5]> {
        images[tag]
            .as_array()
            .unwrap()
            .iter()
            .map(|image| {
                ["step", "width", "height", "decoded_width", "decoded_height"]
                    .map(|key| image[key].as_i64().unwrap())
            })
            .collect()
    };
    assert_eq!(images.len(), 2, "{images:?}");
    assert_eq!(
        sizes("grid/reconstruction"),
        [
            [1, 7, 5, 7, 5],
            [2, 7, 5, 7, 5],
            [3, 7, 5, 7, 5],
            [4, 9, 6, 9, 6],
            [5, 9, 6, 9, 6]
        ]
    );
    assert_eq!(sizes("grid/grey"), [[1, 3, 4, 3, 4]]);
    let decoders: Vec<&str> = images["grid/grey"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| image["decoded_by"].as_str().unwrap())
        .collect();
    eprintln!(
        "TensorBoard read {} scalar tags; images decoded by {decoders:?}",
        tags.len()
    );
}
