//! Properties and behaviour of the audio modality through its public API.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use proptest::prelude::*;
use rand::SeedableRng;
use rensou_api::registry::ModalityRegistry;
use rensou_api::rng::DataRng;
use rensou_api::{
    ClassCounts, Error, ItemRequest, ItemSet, Likelihood, Modality, ModalityConfig, NetKind,
    SourceEnv, Split, Supply,
};
use rensou_audio::{Audio, AudioConfig, AudioError, Pitch, Timbre};
use rustfft::num_complex::Complex;
use rustfft::FftPlanner;
use serde::{Deserialize, Serialize};

fn no_progress(_: u64) {}

fn request(split: Split, seed: u64, classes: Option<&ClassCounts>) -> ItemRequest<'_> {
    ItemRequest {
        split,
        seed,
        classes,
        progress: &no_progress,
    }
}

fn small_config() -> AudioConfig {
    AudioConfig {
        train_per_class: 3,
        test_per_class: 2,
        ..AudioConfig::default()
    }
}

/// Runs of `true` as half-open index ranges.
fn runs(on: &[bool]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &b) in on.iter().chain([false].iter()).enumerate() {
        match (b, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Tones found in a waveform: runs of 5 ms blocks whose RMS is above 1 % of the loudest
/// block's, as sample ranges.
fn wave_tones(samples: &[f32]) -> Vec<(usize, usize)> {
    const BLOCK: usize = 40;
    let rms: Vec<f32> = samples
        .chunks(BLOCK)
        .map(|b| (b.iter().map(|v| v * v).sum::<f32>() / b.len() as f32).sqrt())
        .collect();
    let top = rms.iter().fold(0f32, |a, &v| a.max(v));
    let on: Vec<bool> = rms.iter().map(|&v| v > 0.01 * top).collect();
    runs(&on)
        .into_iter()
        .map(|(a, b)| (a * BLOCK, (b * BLOCK).min(samples.len())))
        .collect()
}

/// Tones found in a spectrogram (`[mels, frames]` bytes): runs of frames whose loudest band
/// is within 20 dB (64 of 255 steps over 80 dB) of the loudest frame's, as frame ranges.
fn spectrogram_tones(spec: &[u8], mels: usize, frames: usize) -> Vec<(usize, usize)> {
    let col: Vec<u8> = (0..frames)
        .map(|t| (0..mels).map(|r| spec[r * frames + t]).max().unwrap_or(0))
        .collect();
    let top = col.iter().copied().max().unwrap_or(0);
    let on: Vec<bool> = col
        .iter()
        .map(|&v| v > 0 && i32::from(v) >= i32::from(top) - 64)
        .collect();
    runs(&on)
}

/// The slot of a tone whose middle is at sample `mid`.
fn slot_of(config: &AudioConfig, mid: usize) -> u32 {
    (mid / config.slot_len()) as u32
}

fn mask(slots: impl IntoIterator<Item = u32>) -> i64 {
    slots.into_iter().fold(0, |m, s| m | 1 << s)
}

/// The frequency of the largest FFT peak of `samples` (zero-padded to 8192 points).
fn dominant_hz(samples: &[f32], rate: f64) -> f64 {
    const N: usize = 8192;
    let mut buf: Vec<Complex<f64>> = (0..N)
        .map(|i| Complex::new(samples.get(i).map_or(0.0, |&v| f64::from(v)), 0.0))
        .collect();
    FftPlanner::new().plan_fft_forward(N).process(&mut buf);
    let k = (1..N / 2)
        .max_by(|&a, &b| buf[a].norm().total_cmp(&buf[b].norm()))
        .unwrap_or(0);
    k as f64 * rate / N as f64
}

/// Checks a waveform against its labels; returns the first problem.
fn check_wave(
    config: &AudioConfig,
    samples: &[f32],
    number: u32,
    pitch: Pitch,
    slots: i64,
) -> Result<(), String> {
    let tones = wave_tones(samples);
    if tones.len() != number as usize {
        return Err(format!(
            "waveform has {} tones, number {number}",
            tones.len()
        ));
    }
    let found = mask(tones.iter().map(|&(a, b)| slot_of(config, (a + b) / 2)));
    if found != slots {
        return Err(format!("waveform slots {found:#b}, label {slots:#b}"));
    }
    let tolerance = config.pitch_jitter + 0.01;
    for &(a, b) in &tones {
        let hz = dominant_hz(&samples[a..b], f64::from(config.sample_rate));
        if (hz / pitch.hz() - 1.0).abs() > tolerance {
            return Err(format!("tone at {a} peaks at {hz:.1} Hz, pitch {pitch}"));
        }
    }
    Ok(())
}

/// Checks a stored spectrogram against its labels.
fn check_spectrogram(audio: &Audio, spec: &[u8], number: i64, slots: i64) -> Result<(), String> {
    let config = audio.config();
    let tones = spectrogram_tones(spec, config.mels, config.frames);
    if tones.len() as i64 != number {
        return Err(format!(
            "spectrogram has {} tones, number {number}",
            tones.len()
        ));
    }
    let centres = audio.mel().frame_centres();
    let found = mask(
        tones
            .iter()
            .map(|&(a, b)| slot_of(config, (centres[a] + centres[b - 1]) / 2)),
    );
    if found != slots {
        return Err(format!("spectrogram slots {found:#b}, label {slots:#b}"));
    }
    Ok(())
}

fn check_set(audio: &Audio, set: &ItemSet) -> Result<(), String> {
    set.validate().map_err(|e| e.to_string())?;
    for i in 0..set.len() {
        let l = |n: &str| set.label(n).map(|v| v[i]).map_err(|e| e.to_string());
        check_spectrogram(audio, set.item(i), l("number")?, l("slots")?)
            .map_err(|e| format!("item {i}: {e}"))?;
        if l("slots")?.count_ones() as i64 != l("number")? {
            return Err(format!("item {i}: slots and number disagree"));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn synthesised_sounds_show_their_number(
        seed in any::<u64>(),
        number in 1u32..=9,
        timbre in prop::sample::select(Timbre::ALL.to_vec()),
        pitch in prop::sample::select(Pitch::ALL.to_vec()),
    ) {
        let config = AudioConfig::default();
        let audio = Audio::new(&config).unwrap();
        let sound = audio
            .synthesise(number, timbre, pitch, &mut DataRng::seed_from_u64(seed))
            .unwrap();
        prop_assert_eq!(sound.samples.len(), 8000);
        prop_assert_eq!(sound.notes.len(), number as usize);
        prop_assert_eq!(sound.slots.count_ones(), number);
        let r = check_wave(&config, &sound.samples, number, pitch, sound.slots);
        prop_assert!(r.is_ok(), "{:?}", r);

        let spec = audio.spectrogram(&sound.samples).unwrap();
        prop_assert_eq!(spec.len(), 32 * 64);
        let r = check_spectrogram(&audio, &spec, i64::from(number), sound.slots);
        prop_assert!(r.is_ok(), "{:?}", r);

        // Same seed, same bytes; another seed, other bytes.
        let again = audio
            .synthesise(number, timbre, pitch, &mut DataRng::seed_from_u64(seed))
            .unwrap();
        prop_assert_eq!(&again, &sound);
        prop_assert_eq!(audio.spectrogram(&again.samples).unwrap(), spec.clone());
        let other = audio
            .synthesise(number, timbre, pitch, &mut DataRng::seed_from_u64(seed ^ 1))
            .unwrap();
        prop_assert_ne!(audio.spectrogram(&other.samples).unwrap(), spec);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn griffin_lim_keeps_the_number(
        seed in any::<u64>(),
        number in 1u32..=9,
        timbre in prop::sample::select(Timbre::ALL.to_vec()),
        pitch in prop::sample::select(Pitch::ALL.to_vec()),
    ) {
        let audio = Audio::new(&AudioConfig::default()).unwrap();
        let sound = audio
            .synthesise(number, timbre, pitch, &mut DataRng::seed_from_u64(seed))
            .unwrap();
        let spec = audio.spectrogram(&sound.samples).unwrap();
        let values: Vec<f32> = spec.iter().map(|&b| f32::from(b) / 255.0).collect();
        let wave = audio.waveform(&values).unwrap();
        let r = check_spectrogram(
            &audio, &audio.spectrogram(&wave).unwrap(), i64::from(number), sound.slots,
        );
        prop_assert!(r.is_ok(), "{:?}", r);
    }
}

/// Energy-weighted mean row of a spectrogram.
fn mean_row(spec: &[u8], frames: usize) -> f64 {
    let (mut sum, mut weight) = (0.0, 0.0);
    for (i, &v) in spec.iter().enumerate() {
        let w = f64::from(v).powi(4);
        sum += w * (i / frames) as f64;
        weight += w;
    }
    sum / weight
}

#[test]
fn spectrograms_have_low_frequencies_at_the_bottom() {
    let audio = Audio::new(&AudioConfig::default()).unwrap();
    assert_eq!(audio.item_shape(), vec![32, 64]);
    for timbre in Timbre::ALL {
        let rows: Vec<f64> = Pitch::ALL
            .iter()
            .map(|&p| {
                let s = audio
                    .synthesise(5, timbre, p, &mut DataRng::seed_from_u64(11))
                    .unwrap();
                mean_row(&audio.spectrogram(&s.samples).unwrap(), 64)
            })
            .collect();
        // Higher pitch: brighter rows nearer row 0.
        assert!(rows[0] > rows[1] && rows[1] > rows[2], "{timbre}: {rows:?}");
    }
    // A pure low tone lights the lower half of the picture only; the top rows stay dark.
    let s = audio
        .synthesise(9, Timbre::Sine, Pitch::Low, &mut DataRng::seed_from_u64(2))
        .unwrap();
    let spec = audio.spectrogram(&s.samples).unwrap();
    let loudest_row = (0..32)
        .max_by_key(|&r| {
            spec[r * 64..(r + 1) * 64]
                .iter()
                .map(|&v| u32::from(v))
                .sum::<u32>()
        })
        .unwrap();
    assert!(loudest_row > 20, "{loudest_row}");
    // Time runs left to right: the first slot's tone is in the first columns.
    let s = audio
        .synthesise(1, Timbre::Saw, Pitch::Mid, &mut DataRng::seed_from_u64(0))
        .unwrap();
    let spec = audio.spectrogram(&s.samples).unwrap();
    let tones = spectrogram_tones(&spec, 32, 64);
    let slot = s.notes[0].slot as usize;
    assert_eq!(tones.len(), 1);
    assert_eq!(tones[0].0 * 9 / 64, slot, "{tones:?} slot {slot}");
}

#[test]
fn preview_wav_keeps_the_number() {
    let config = AudioConfig::default();
    let audio = Audio::new(&config).unwrap();
    let mut rng = DataRng::seed_from_u64(21);
    for (number, timbre, pitch) in [
        (1, Timbre::Sine, Pitch::Low),
        (3, Timbre::Square, Pitch::High),
        (5, Timbre::Saw, Pitch::Mid),
        (7, Timbre::Sine, Pitch::High),
        (9, Timbre::Saw, Pitch::Low),
        (8, Timbre::Square, Pitch::Mid),
    ] {
        let sound = audio.synthesise(number, timbre, pitch, &mut rng).unwrap();
        let spec = audio.spectrogram(&sound.samples).unwrap();
        let values: Vec<f32> = spec.iter().map(|&b| f32::from(b) / 255.0).collect();
        let files = config.preview_files(&[32, 64], &values).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].extension, "wav");
        let mut reader = hound::WavReader::new(Cursor::new(&files[0].bytes)).unwrap();
        let spec_out = reader.spec();
        assert_eq!(spec_out.sample_rate, 8000);
        assert_eq!(spec_out.channels, 1);
        assert_eq!(spec_out.bits_per_sample, 16);
        assert_eq!(spec_out.sample_format, hound::SampleFormat::Int);
        let wave: Vec<f32> = reader
            .samples::<i16>()
            .map(|s| f32::from(s.unwrap()) / 32767.0)
            .collect();
        assert_eq!(wave.len(), 8000);
        let peak = wave.iter().fold(0f32, |a, v| a.max(v.abs()));
        assert!((peak - 0.9).abs() < 0.01, "{peak}");
        // The re-analysed Griffin-Lim sound has the same tones in the same slots.
        let again = audio.spectrogram(&wave).unwrap();
        check_spectrogram(&audio, &again, i64::from(number), sound.slots)
            .unwrap_or_else(|e| panic!("{number} {timbre} {pitch}: {e}"));
        // And it is deterministic.
        assert_eq!(config.preview_files(&[32, 64], &values).unwrap(), files);
    }
    // Silence stays silence.
    let wave = audio.waveform(&vec![0.0; 32 * 64]).unwrap();
    assert!(wave.iter().all(|&v| v == 0.0));
}

#[test]
fn preview_rejects_bad_input() {
    let config = AudioConfig::default();
    let e = config.preview_files(&[64, 32], &[0.5; 2048]).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("[64, 32]") && msg.contains("[32, 64]"),
        "{msg}"
    );
    let e = config.preview_files(&[32, 64], &[0.5; 100]).unwrap_err();
    assert!(e.to_string().contains("100 values"), "{e}");
    let mut values = vec![0.5; 2048];
    values[7] = f32::NAN;
    let e = config.preview_files(&[32, 64], &values).unwrap_err();
    let Error::Modality { name, source } = &e else {
        panic!("{e}")
    };
    assert_eq!(name, "audio");
    assert_eq!(
        source.downcast_ref::<AudioError>(),
        Some(&AudioError::NonFinite { index: 7 })
    );
    // Out-of-range decoder values are clamped, not refused.
    assert_eq!(
        config.preview_files(&[32, 64], &[1.5; 2048]).unwrap().len(),
        1
    );
    let bad = AudioConfig {
        mels: 0,
        ..AudioConfig::default()
    };
    assert!(bad.preview_files(&[0, 64], &[]).is_err());
    // A waveform of the wrong length is refused by the analyser.
    let audio = Audio::new(&config).unwrap();
    let e = audio.spectrogram(&[0.0; 7999]).unwrap_err();
    assert!(e.to_string().contains("7999"), "{e}");
}

#[test]
fn generation_is_deterministic() {
    let config = small_config();
    let a = Audio::new(&config).unwrap();
    let b = config.build(&SourceEnv::default()).unwrap();
    for split in Split::ALL {
        let x = a.items(&request(split, 42, None)).unwrap();
        let y = b.items(&request(split, 42, None)).unwrap();
        assert_eq!(x, y, "{split}");
        let z = a.items(&request(split, 43, None)).unwrap();
        assert_ne!(x.data, z.data, "{split}: seed has no effect");
    }
}

#[test]
fn default_sizes_cover_every_number() {
    let config = small_config();
    let audio = Audio::new(&config).unwrap();
    for (split, per_class) in [(Split::Train, 3), (Split::Test, 2)] {
        let set = audio.items(&request(split, 7, None)).unwrap();
        assert_eq!(set.shape, vec![32, 64]);
        assert_eq!(set.len(), 9 * per_class);
        let mut hist = BTreeMap::new();
        for &n in set.label("number").unwrap() {
            *hist.entry(n).or_insert(0) += 1;
        }
        assert_eq!(
            hist.keys().copied().collect::<Vec<_>>(),
            (1..=9).collect::<Vec<_>>()
        );
        assert!(hist.values().all(|&n| n == per_class));
        assert!(!set.labels.contains_key("colour"));
        check_set(&audio, &set).unwrap();
    }
}

#[test]
fn requested_counts_are_honoured_exactly() {
    let config = AudioConfig {
        timbres: vec![Timbre::Saw, Timbre::Sine],
        pitches: vec![Pitch::High],
        ..small_config()
    };
    let audio = Audio::new(&config).unwrap();
    let counts = ClassCounts {
        label_names: vec!["number".into()],
        counts: BTreeMap::from([(vec![1], 5), (vec![9], 17), (vec![4], 0), (vec![3], 1)]),
    };
    let set = audio
        .items(&request(Split::Train, 3, Some(&counts)))
        .unwrap();
    assert_eq!(set.len(), 23);
    let mut hist = BTreeMap::new();
    for &n in set.label("number").unwrap() {
        *hist.entry(vec![n]).or_insert(0usize) += 1;
    }
    let want: BTreeMap<_, _> = counts
        .counts
        .iter()
        .filter(|(_, &n)| n > 0)
        .map(|(k, &n)| (k.clone(), n))
        .collect();
    assert_eq!(hist, want);
    let timbres = set.label("timbre").unwrap();
    assert!(timbres.iter().all(|&t| t == 0 || t == 2));
    assert!(timbres.contains(&0) && timbres.contains(&2));
    assert!(set.label("pitch").unwrap().iter().all(|&p| p == 2));
    check_set(&audio, &set).unwrap();

    // A class's items do not depend on the other classes requested.
    let alone = ClassCounts {
        label_names: counts.label_names.clone(),
        counts: BTreeMap::from([(vec![9], 17)]),
    };
    let alone = audio
        .items(&request(Split::Train, 3, Some(&alone)))
        .unwrap();
    let idx: Vec<usize> = (0..set.len())
        .filter(|&i| set.label("number").unwrap()[i] == 9)
        .collect();
    assert_eq!(set.select(&idx), alone);

    // No key labels at all: numbers are drawn too.
    let any = ClassCounts {
        label_names: vec![],
        counts: BTreeMap::from([(vec![], 40)]),
    };
    let set = audio.items(&request(Split::Test, 5, Some(&any))).unwrap();
    assert_eq!(set.len(), 40);
    assert!(set
        .label("number")
        .unwrap()
        .iter()
        .all(|n| (1..=9).contains(n)));
    check_set(&audio, &set).unwrap();
}

fn counts_error(config: &AudioConfig, names: &[&str], key: Vec<i64>) -> String {
    let counts = ClassCounts {
        label_names: names.iter().map(|s| s.to_string()).collect(),
        counts: BTreeMap::from([(key, 1)]),
    };
    let err = Audio::new(config)
        .unwrap()
        .items(&request(Split::Train, 0, Some(&counts)))
        .unwrap_err();
    assert!(
        matches!(err, Error::Modality { ref name, .. } if name == "audio"),
        "{err}"
    );
    err.to_string()
}

#[test]
fn bad_class_requests_are_clear_errors() {
    let config = AudioConfig {
        max_number: 5,
        ..small_config()
    };
    let e = counts_error(&config, &["number"], vec![6]);
    assert!(e.contains("number 6") && e.contains("1..=5"), "{e}");
    let e = counts_error(&config, &["number"], vec![0]);
    assert!(e.contains("number 0"), "{e}");
    let e = counts_error(&config, &["colour", "number"], vec![0, 1]);
    assert!(e.contains("`colour`") && e.contains("`number` only"), "{e}");
    let e = counts_error(&config, &["number", "timbre"], vec![1, 0]);
    assert!(e.contains("`timbre`"), "{e}");
    let e = counts_error(&config, &["number", "number"], vec![1, 1]);
    assert!(e.contains("twice"), "{e}");
    let e = counts_error(&config, &["number"], vec![1, 2]);
    assert!(e.contains("2 values"), "{e}");
    // The synthesiser refuses numbers outside the config too.
    let audio = Audio::new(&config).unwrap();
    let mut rng = DataRng::seed_from_u64(0);
    assert!(audio
        .synthesise(6, Timbre::Sine, Pitch::Low, &mut rng)
        .is_err());
    assert!(audio
        .synthesise(0, Timbre::Sine, Pitch::Low, &mut rng)
        .is_err());
}

#[test]
fn progress_reports_every_item() {
    let config = AudioConfig {
        train_per_class: 160,
        ..AudioConfig::default()
    };
    let done = AtomicU64::new(0);
    let calls = AtomicU64::new(0);
    let progress = |k: u64| {
        done.fetch_add(k, Ordering::Relaxed);
        calls.fetch_add(1, Ordering::Relaxed);
    };
    let set = Audio::new(&config)
        .unwrap()
        .items(&ItemRequest {
            split: Split::Train,
            seed: 1,
            classes: None,
            progress: &progress,
        })
        .unwrap();
    assert_eq!(set.len(), 1440);
    assert_eq!(done.load(Ordering::Relaxed), 1440);
    assert_eq!(calls.load(Ordering::Relaxed), 2);
}

#[test]
fn the_default_training_set_is_fast_and_correct() {
    let config = AudioConfig::default();
    let audio = Audio::new(&config).unwrap();
    let start = Instant::now();
    let set = audio.items(&request(Split::Train, 0, None)).unwrap();
    let took = start.elapsed();
    eprintln!("36,000 audio items in {took:.2?}");
    assert_eq!(set.len(), 36_000);
    assert!(took.as_secs_f64() < 30.0, "{took:?}");
    // Every item shows its number, and the bytes use the range.
    let sample: Vec<usize> = (0..set.len()).step_by(97).collect();
    check_set(&audio, &set.select(&sample)).unwrap();
    let top = set.data.iter().copied().max().unwrap();
    assert!(top >= 230, "{top}");
}

fn config_field_error(f: impl FnOnce(&mut AudioConfig)) -> (String, String) {
    let mut config = AudioConfig::default();
    f(&mut config);
    match config.validate() {
        Err(e @ Error::Config { .. }) => {
            let Error::Config { ref field, .. } = e else {
                unreachable!()
            };
            (field.clone(), e.to_string())
        }
        other => panic!("{config:?} gave {other:?}"),
    }
}

#[test]
fn validation_names_the_field() {
    type Mutator = Box<dyn FnOnce(&mut AudioConfig)>;
    let cases: Vec<(&str, Mutator)> = vec![
        ("sample_rate", Box::new(|c| c.sample_rate = 999)),
        ("sample_rate", Box::new(|c| c.sample_rate = 200_000)),
        // The high pitch is above Nyquist at 2 kHz.
        (
            "sample_rate",
            Box::new(|c| {
                c.sample_rate = 2000;
                c.mel_high_hz = 1000.0;
            }),
        ),
        ("duration_ms", Box::new(|c| c.duration_ms = 5)),
        ("duration_ms", Box::new(|c| c.duration_ms = 20_000)),
        ("slot_count", Box::new(|c| c.slot_count = 0)),
        ("slot_count", Box::new(|c| c.slot_count = 63)),
        ("min_number", Box::new(|c| c.min_number = 0)),
        ("max_number", Box::new(|c| c.max_number = 0)),
        (
            "max_number",
            Box::new(|c| {
                c.min_number = 5;
                c.max_number = 4;
            }),
        ),
        // More tones than slots.
        ("max_number", Box::new(|c| c.max_number = 10)),
        ("tone_ms", Box::new(|c| c.tone_ms = 0)),
        // Longer than a slot (111 ms).
        ("tone_ms", Box::new(|c| c.tone_ms = 120)),
        ("ramp_ms", Box::new(|c| c.ramp_ms = 0)),
        ("ramp_ms", Box::new(|c| c.ramp_ms = 31)),
        ("onset_jitter_ms", Box::new(|c| c.onset_jitter_ms = 60)),
        ("timbres", Box::new(|c| c.timbres.clear())),
        (
            "timbres",
            Box::new(|c| c.timbres = vec![Timbre::Saw, Timbre::Sine, Timbre::Saw]),
        ),
        ("pitches", Box::new(|c| c.pitches.clear())),
        (
            "pitches",
            Box::new(|c| c.pitches = vec![Pitch::Low, Pitch::Low]),
        ),
        ("pitch_jitter", Box::new(|c| c.pitch_jitter = -0.01)),
        ("pitch_jitter", Box::new(|c| c.pitch_jitter = 0.2)),
        ("pitch_jitter", Box::new(|c| c.pitch_jitter = f64::NAN)),
        ("min_amplitude", Box::new(|c| c.min_amplitude = 0.0)),
        ("min_amplitude", Box::new(|c| c.min_amplitude = 1.5)),
        ("max_amplitude", Box::new(|c| c.max_amplitude = 0.5)),
        ("max_amplitude", Box::new(|c| c.max_amplitude = 1.1)),
        ("frames", Box::new(|c| c.frames = 0)),
        ("frames", Box::new(|c| c.frames = 5000)),
        ("n_fft", Box::new(|c| c.n_fft = 8)),
        ("n_fft", Box::new(|c| c.n_fft = 10_000)),
        // Hop 125: windows of 200 samples would barely overlap.
        ("n_fft", Box::new(|c| c.n_fft = 200)),
        ("mels", Box::new(|c| c.mels = 0)),
        ("mels", Box::new(|c| c.mels = 300)),
        // 128 bands in 129 bins: the lowest bands hold no bin.
        ("mels", Box::new(|c| c.mels = 128)),
        ("mel_low_hz", Box::new(|c| c.mel_low_hz = -1.0)),
        ("mel_low_hz", Box::new(|c| c.mel_low_hz = 4000.0)),
        ("mel_high_hz", Box::new(|c| c.mel_high_hz = 5000.0)),
        ("mel_high_hz", Box::new(|c| c.mel_high_hz = 50.0)),
        ("mel_high_hz", Box::new(|c| c.mel_high_hz = f64::NAN)),
        ("db_ceiling", Box::new(|c| c.db_ceiling = f64::INFINITY)),
        ("db_ceiling", Box::new(|c| c.db_ceiling = -300.0)),
        ("db_range", Box::new(|c| c.db_range = 0.0)),
        ("db_range", Box::new(|c| c.db_range = 250.0)),
        (
            "griffin_lim_iterations",
            Box::new(|c| c.griffin_lim_iterations = 0),
        ),
        (
            "griffin_lim_iterations",
            Box::new(|c| c.griffin_lim_iterations = 5000),
        ),
        ("train_per_class", Box::new(|c| c.train_per_class = 0)),
        ("test_per_class", Box::new(|c| c.test_per_class = 0)),
    ];
    for (want, mutate) in cases {
        let (field, message) = config_field_error(mutate);
        assert_eq!(field, format!("audio.{want}"), "{message}");
        assert!(message.contains(&format!("audio.{want}")), "{message}");
    }
}

#[test]
fn valid_variants_pass_validation() {
    AudioConfig::default().validate().unwrap();
    // 16 kHz with a finer analysis.
    let fine = AudioConfig {
        sample_rate: 16_000,
        n_fft: 512,
        frames: 100,
        mels: 40,
        mel_high_hz: 8000.0,
        ..AudioConfig::default()
    };
    fine.validate().unwrap();
    let audio = Audio::new(&fine).unwrap();
    assert_eq!(audio.item_shape(), vec![40, 100]);
    let set = audio.items(&request(Split::Test, 1, None)).unwrap();
    check_set(&audio, &set).unwrap();
    // Only low pitches at 1 kHz.
    AudioConfig {
        sample_rate: 1000,
        pitches: vec![Pitch::Low],
        mel_high_hz: 500.0,
        mel_low_hz: 20.0,
        mels: 8,
        pitch_jitter: 0.0,
        min_amplitude: 1.0,
        ..AudioConfig::default()
    }
    .validate()
    .unwrap();
    // Four slots, up to four tones.
    AudioConfig {
        slot_count: 4,
        max_number: 4,
        tone_ms: 200,
        ..AudioConfig::default()
    }
    .validate()
    .unwrap();
    // A config that fails validation cannot be built.
    let bad = AudioConfig {
        max_number: 10,
        ..AudioConfig::default()
    };
    assert!(Audio::new(&bad).is_err());
    assert!(bad.build(&SourceEnv::default()).is_err());
}

#[derive(Serialize, Deserialize)]
struct Experiment {
    modalities: Vec<Box<dyn ModalityConfig>>,
}

#[test]
fn toml_round_trip_through_the_trait_object() {
    let text = r#"
        [[modalities]]
        type = "audio"
        tone_ms = 50
        timbres = ["saw", "sine"]
        pitches = ["high"]
        db_range = 60.0
    "#;
    let exp: Experiment = toml::from_str(text).unwrap();
    let config = &exp.modalities[0];
    config.validate().unwrap();
    let want = AudioConfig {
        tone_ms: 50,
        timbres: vec![Timbre::Saw, Timbre::Sine],
        pitches: vec![Pitch::High],
        db_range: 60.0,
        ..AudioConfig::default()
    };
    let mut want_json = serde_json::to_value(&want).unwrap();
    want_json["type"] = "audio".into();
    assert_eq!(serde_json::to_value(config).unwrap(), want_json);
    let again = toml::to_string(&exp).unwrap();
    assert!(again.contains("type = \"audio\""), "{again}");
    let back: Experiment = toml::from_str(&again).unwrap();
    assert_eq!(
        serde_json::to_value(&back.modalities[0]).unwrap(),
        want_json
    );

    let modality = config.clone().build(&SourceEnv::default()).unwrap();
    assert_eq!(modality.name(), "audio");
    assert_eq!(modality.supply(), Supply::Generative);
    assert_eq!(modality.default_net(), NetKind::Conv1d);
    assert_eq!(modality.likelihood(), Likelihood::Normal);
    let p = modality.provenance();
    assert!(p.contains("8000 Hz") && p.contains("n_fft 256"), "{p}");

    // Defaults fill every field; unknown fields and values are refused.
    let exp: Experiment = toml::from_str("[[modalities]]\ntype = \"audio\"\n").unwrap();
    let mut default_json = serde_json::to_value(AudioConfig::default()).unwrap();
    default_json["type"] = "audio".into();
    assert_eq!(
        serde_json::to_value(&exp.modalities[0]).unwrap(),
        default_json
    );
    assert!(
        toml::from_str::<Experiment>("[[modalities]]\ntype = \"audio\"\ncolours = []\n").is_err()
    );
    assert!(toml::from_str::<Experiment>(
        "[[modalities]]\ntype = \"audio\"\ntimbres = [\"flute\"]\n"
    )
    .is_err());
}

#[test]
fn the_plugin_is_registered_under_its_typetag_name() {
    let registry = ModalityRegistry::collect().unwrap();
    assert!(registry.names().contains(&"audio"));
    registry.check_names().unwrap();
    let plugin = registry.get("audio").unwrap();
    let config = (plugin.default_config)();
    config.validate().unwrap();
    assert_eq!(
        serde_json::to_value(&config).unwrap()["max_number"],
        serde_json::json!(9)
    );
    assert_eq!(
        config.preview_files(&[32, 64], &[0.0; 2048]).unwrap().len(),
        1
    );
}

#[test]
fn label_indices_are_stable() {
    let audio = Audio::new(&AudioConfig {
        timbres: vec![Timbre::Square],
        pitches: vec![Pitch::Mid],
        ..small_config()
    })
    .unwrap();
    let labels = audio.labels();
    let names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["number", "timbre", "pitch", "slots"]);
    assert_eq!(labels[0], rensou_api::vocab::number_label_spec());
    let values = |i: usize| -> Vec<(i64, String)> {
        labels[i]
            .values
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    };
    assert_eq!(
        values(1),
        [(0, "sine".into()), (1, "square".into()), (2, "saw".into())]
    );
    assert_eq!(
        values(2),
        [(0, "low".into()), (1, "mid".into()), (2, "high".into())]
    );
    assert!(labels[3].values.is_empty());
    let set = audio.items(&request(Split::Test, 0, None)).unwrap();
    assert!(set.label("timbre").unwrap().iter().all(|&t| t == 1));
    assert!(set.label("pitch").unwrap().iter().all(|&p| p == 1));
    assert_eq!(serde_json::to_value(Timbre::Saw).unwrap(), "saw");
    assert_eq!(serde_json::to_value(Pitch::High).unwrap(), "high");
}
