//! The audio configuration: every field, its default and its validation.

use serde::{Deserialize, Serialize};

use rensou_api::{
    typetag, Error, Modality, ModalityConfig, ModalityPlugin, PreviewFile, Result, SourceEnv,
};

use crate::error::AudioError;
use crate::mel;
use crate::synth::{Pitch, Timbre};
use crate::{Audio, NAME};

/// Smallest accepted `sample_rate` (Hz).
pub const MIN_SAMPLE_RATE: u32 = 1000;
/// Largest accepted `sample_rate` (Hz).
pub const MAX_SAMPLE_RATE: u32 = 96_000;
/// Largest accepted `duration_ms`.
pub const MAX_DURATION_MS: u32 = 10_000;
/// Largest accepted `slot_count` (the `slots` label is a bitmask in an `i64`).
pub const MAX_SLOTS: u32 = 62;
/// Largest accepted `pitch_jitter` (the pitches are an octave apart).
pub const MAX_PITCH_JITTER: f64 = 0.1;
/// Accepted `n_fft` range.
pub const N_FFT_RANGE: (usize, usize) = (16, 8192);
/// Largest accepted `frames`.
pub const MAX_FRAMES: usize = 4096;
/// Largest accepted `mels`.
pub const MAX_MELS: usize = 256;
/// Largest accepted magnitude of `db_ceiling` and largest `db_range` (dB).
pub const MAX_DB: f64 = 200.0;
/// Largest accepted `griffin_lim_iterations`.
pub const MAX_GRIFFIN_LIM_ITERATIONS: u32 = 1000;

/// Configuration of the audio modality: N short tones in N of `slot_count` time slots, stored
/// as a log-mel spectrogram.
///
/// Every field has a default; a TOML table needs to name only what it changes. Unknown fields
/// are rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AudioConfig {
    /// Samples per second (8000).
    pub sample_rate: u32,
    /// Length of every sound in milliseconds (1000).
    pub duration_ms: u32,
    /// Smallest number of tones (1).
    pub min_number: u32,
    /// Largest number of tones (9); at most `slot_count`.
    pub max_number: u32,
    /// Equal time slots the sound is divided into, one tone at most in each (9).
    pub slot_count: u32,
    /// Length of one tone in milliseconds (60).
    pub tone_ms: u32,
    /// Raised-cosine attack and release of a tone, each, in milliseconds (5).
    pub ramp_ms: u32,
    /// A tone starts at its slot's start plus a uniform delay of up to this many milliseconds
    /// (10); `tone_ms + onset_jitter_ms` must leave a gap before the next slot.
    pub onset_jitter_ms: u32,
    /// Timbres to draw from (sine, square, saw); each sound has one timbre.
    pub timbres: Vec<Timbre>,
    /// Pitches to draw from (low, mid, high); each sound has one pitch.
    pub pitches: Vec<Pitch>,
    /// Each tone's fundamental is the pitch times `1 + u`, `u` uniform in `[-x, x]` (0.02).
    pub pitch_jitter: f64,
    /// Smallest peak amplitude of a tone (0.6), drawn per tone.
    pub min_amplitude: f64,
    /// Largest peak amplitude of a tone (1.0).
    pub max_amplitude: f64,
    /// STFT window (Hann) and FFT length in samples (256).
    pub n_fft: usize,
    /// STFT frames per sound, evenly spaced (64); the hop is `samples / frames`.
    pub frames: usize,
    /// Mel bands (32): the item's rows.
    pub mels: usize,
    /// Lower edge of the lowest mel band in Hz (60).
    pub mel_low_hz: f64,
    /// Upper edge of the highest mel band in Hz (4000, Nyquist at 8000 Hz).
    pub mel_high_hz: f64,
    /// Band power in dB (a full-scale sine in one FFT bin is 0 dB) stored as 255 (3).
    pub db_ceiling: f64,
    /// Dynamic range in dB: `db_ceiling - db_range` and below are stored as 0 (80).
    pub db_range: f64,
    /// Griffin-Lim iterations when turning a spectrogram back into sound (32).
    pub griffin_lim_iterations: u32,
    /// Training items per number when the dataset builder asks for no particular counts
    /// (4000: 36,000 items for numbers 1..=9, as many as OSCN's default).
    pub train_per_class: usize,
    /// Test items per number when no counts are asked for (400).
    pub test_per_class: usize,
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig {
            sample_rate: 8000,
            duration_ms: 1000,
            min_number: 1,
            max_number: 9,
            slot_count: 9,
            tone_ms: 60,
            ramp_ms: 5,
            onset_jitter_ms: 10,
            timbres: Timbre::ALL.to_vec(),
            pitches: Pitch::ALL.to_vec(),
            pitch_jitter: 0.02,
            min_amplitude: 0.6,
            max_amplitude: 1.0,
            n_fft: 256,
            frames: 64,
            mels: 32,
            mel_low_hz: 60.0,
            mel_high_hz: 4000.0,
            db_ceiling: 3.0,
            db_range: 80.0,
            griffin_lim_iterations: 32,
            train_per_class: 4000,
            test_per_class: 400,
        }
    }
}

fn field(name: &str) -> String {
    format!("{NAME}.{name}")
}

fn fail(name: &str, message: impl Into<String>) -> Error {
    Error::config(field(name), message)
}

fn ms_to_samples(ms: u32, rate: u32) -> usize {
    (u64::from(ms) * u64::from(rate) / 1000) as usize
}

impl AudioConfig {
    /// Samples per sound (`sample_rate * duration_ms / 1000`).
    pub fn samples(&self) -> usize {
        ms_to_samples(self.duration_ms, self.sample_rate)
    }

    /// Samples per time slot (`samples / slot_count`).
    pub fn slot_len(&self) -> usize {
        self.samples() / self.slot_count.max(1) as usize
    }

    /// Samples per tone.
    pub fn tone_len(&self) -> usize {
        ms_to_samples(self.tone_ms, self.sample_rate)
    }

    /// Samples of a tone's attack (and of its release).
    pub fn ramp_len(&self) -> usize {
        ms_to_samples(self.ramp_ms, self.sample_rate)
    }

    /// Largest onset delay in samples.
    pub fn jitter_len(&self) -> usize {
        ms_to_samples(self.onset_jitter_ms, self.sample_rate)
    }

    /// The nominal STFT hop in samples (`samples / frames`, rounded up).
    pub fn hop(&self) -> usize {
        self.samples().div_ceil(self.frames.max(1))
    }

    /// Shape of one item: `[mels, frames]`, row 0 the highest band.
    pub fn item_shape(&self) -> Vec<usize> {
        vec![self.mels, self.frames]
    }

    /// Checks every field; the error names the field (`audio.n_fft`) and what is allowed.
    pub fn check(&self) -> Result<()> {
        let rate = self.sample_rate;
        if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rate) {
            return Err(fail(
                "sample_rate",
                format!("must be {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE} Hz, got {rate}"),
            ));
        }
        if !(10..=MAX_DURATION_MS).contains(&self.duration_ms) {
            return Err(fail(
                "duration_ms",
                format!(
                    "must be 10..={MAX_DURATION_MS} ms, got {}",
                    self.duration_ms
                ),
            ));
        }
        if self.slot_count == 0 || self.slot_count > MAX_SLOTS {
            return Err(fail(
                "slot_count",
                format!("must be 1..={MAX_SLOTS}, got {}", self.slot_count),
            ));
        }
        if self.min_number == 0 {
            return Err(fail("min_number", "must be at least 1"));
        }
        if self.max_number < self.min_number {
            return Err(fail(
                "max_number",
                format!(
                    "must be at least min_number ({}), got {}",
                    self.min_number, self.max_number
                ),
            ));
        }
        if self.max_number > self.slot_count {
            return Err(fail(
                "max_number",
                format!(
                    "there are {} slots, one tone at most in each, so at most {} tones; got {}",
                    self.slot_count, self.slot_count, self.max_number
                ),
            ));
        }
        self.check_timing()?;
        check_unique("timbres", &self.timbres, Timbre::name)?;
        check_unique("pitches", &self.pitches, Pitch::name)?;
        if !(0.0..=MAX_PITCH_JITTER).contains(&self.pitch_jitter) {
            return Err(fail(
                "pitch_jitter",
                format!(
                    "must be 0..={MAX_PITCH_JITTER} (a fraction of the pitch), got {}",
                    self.pitch_jitter
                ),
            ));
        }
        if !(self.min_amplitude > 0.0 && self.min_amplitude <= 1.0) {
            return Err(fail(
                "min_amplitude",
                format!("must be in (0, 1], got {}", self.min_amplitude),
            ));
        }
        if !(self.min_amplitude..=1.0).contains(&self.max_amplitude) {
            return Err(fail(
                "max_amplitude",
                format!(
                    "must be min_amplitude ({})..=1, got {}",
                    self.min_amplitude, self.max_amplitude
                ),
            ));
        }
        let nyquist = f64::from(rate) / 2.0;
        if let Some(p) = self.pitches.iter().max() {
            let top = p.hz() * (1.0 + self.pitch_jitter);
            if top >= nyquist {
                return Err(fail(
                    "sample_rate",
                    format!(
                        "the {p} pitch reaches {top:.1} Hz, above Nyquist ({nyquist} Hz at \
                         {rate} Hz); raise sample_rate or drop the pitch"
                    ),
                ));
            }
        }
        self.check_stft()?;
        if !(self.db_ceiling.is_finite() && self.db_ceiling.abs() <= MAX_DB) {
            return Err(fail(
                "db_ceiling",
                format!("must be -{MAX_DB}..={MAX_DB} dB, got {}", self.db_ceiling),
            ));
        }
        if !(self.db_range > 0.0 && self.db_range <= MAX_DB) {
            return Err(fail(
                "db_range",
                format!("must be in (0, {MAX_DB}] dB, got {}", self.db_range),
            ));
        }
        if self.griffin_lim_iterations == 0
            || self.griffin_lim_iterations > MAX_GRIFFIN_LIM_ITERATIONS
        {
            return Err(fail(
                "griffin_lim_iterations",
                format!(
                    "must be 1..={MAX_GRIFFIN_LIM_ITERATIONS}, got {}",
                    self.griffin_lim_iterations
                ),
            ));
        }
        if self.train_per_class == 0 {
            return Err(fail("train_per_class", "must be at least 1"));
        }
        if self.test_per_class == 0 {
            return Err(fail("test_per_class", "must be at least 1"));
        }
        Ok(())
    }

    /// Tone, ramp and jitter against the slot length.
    fn check_timing(&self) -> Result<()> {
        let slot = self.slot_len();
        let slot_ms = f64::from(self.duration_ms) / f64::from(self.slot_count);
        if self.tone_ms == 0 || self.tone_len() < 2 {
            return Err(fail(
                "tone_ms",
                format!(
                    "must be long enough for 2 samples at {} Hz, got {} ms",
                    self.sample_rate, self.tone_ms
                ),
            ));
        }
        if self.tone_len() >= slot {
            return Err(fail(
                "tone_ms",
                format!(
                    "must be shorter than a slot ({slot_ms:.1} ms = duration_ms / slot_count), \
                     got {} ms",
                    self.tone_ms
                ),
            ));
        }
        if self.ramp_ms == 0 || 2 * self.ramp_ms > self.tone_ms {
            return Err(fail(
                "ramp_ms",
                format!(
                    "must be 1..={} ms (attack and release must fit in tone_ms = {}), got {}",
                    self.tone_ms / 2,
                    self.tone_ms,
                    self.ramp_ms
                ),
            ));
        }
        if self.tone_len() + self.jitter_len() >= slot {
            return Err(fail(
                "onset_jitter_ms",
                format!(
                    "tone_ms + onset_jitter_ms must be shorter than a slot ({slot_ms:.1} ms) so \
                     that tones are separated by silence; got {} + {} ms",
                    self.tone_ms, self.onset_jitter_ms
                ),
            ));
        }
        Ok(())
    }

    /// STFT and mel fields.
    fn check_stft(&self) -> Result<()> {
        let samples = self.samples();
        if self.frames == 0 || self.frames > MAX_FRAMES.min(samples) {
            return Err(fail(
                "frames",
                format!(
                    "must be 1..={} (at most one per sample), got {}",
                    MAX_FRAMES.min(samples),
                    self.frames
                ),
            ));
        }
        let (lo, hi) = N_FFT_RANGE;
        if !(lo..=hi).contains(&self.n_fft) {
            return Err(fail(
                "n_fft",
                format!("must be {lo}..={hi} samples, got {}", self.n_fft),
            ));
        }
        let hop = self.hop();
        if self.n_fft < 2 * hop {
            return Err(fail(
                "n_fft",
                format!(
                    "must be at least twice the hop (2 * {hop} samples = samples / frames) so \
                     that windows overlap; got {} (raise n_fft or frames)",
                    self.n_fft
                ),
            ));
        }
        if self.mels == 0 || self.mels > MAX_MELS {
            return Err(fail(
                "mels",
                format!("must be 1..={MAX_MELS}, got {}", self.mels),
            ));
        }
        let nyquist = f64::from(self.sample_rate) / 2.0;
        if !(self.mel_low_hz >= 0.0 && self.mel_low_hz < nyquist) {
            return Err(fail(
                "mel_low_hz",
                format!(
                    "must be 0..{nyquist} Hz (below Nyquist), got {}",
                    self.mel_low_hz
                ),
            ));
        }
        if !(self.mel_high_hz > self.mel_low_hz && self.mel_high_hz <= nyquist) {
            return Err(fail(
                "mel_high_hz",
                format!(
                    "must be above mel_low_hz ({}) and at most Nyquist ({nyquist} Hz), got {}",
                    self.mel_low_hz, self.mel_high_hz
                ),
            ));
        }
        let bands = mel::filterbank(self);
        if let Some(i) = bands.iter().position(|b| b.weights.is_empty()) {
            return Err(fail(
                "mels",
                format!(
                    "{} bands from {} to {} Hz are too narrow for n_fft = {} ({:.2} Hz per FFT \
                     bin): band {i} holds no bin; use fewer mels, a larger n_fft or a higher \
                     mel_low_hz",
                    self.mels,
                    self.mel_low_hz,
                    self.mel_high_hz,
                    self.n_fft,
                    f64::from(self.sample_rate) / self.n_fft as f64
                ),
            ));
        }
        Ok(())
    }

    /// Items per class for a split when no counts are requested.
    pub fn per_class(&self, split: rensou_api::Split) -> usize {
        match split {
            rensou_api::Split::Train => self.train_per_class,
            rensou_api::Split::Test => self.test_per_class,
        }
    }
}

fn check_unique<T: PartialEq + Copy>(
    name: &str,
    items: &[T],
    label: fn(T) -> &'static str,
) -> Result<()> {
    if items.is_empty() {
        return Err(fail(name, "must name at least one value"));
    }
    for (i, a) in items.iter().enumerate() {
        if items[i + 1..].contains(a) {
            return Err(fail(name, format!("lists `{}` twice", label(*a))));
        }
    }
    Ok(())
}

#[typetag::serde(name = "audio")]
impl ModalityConfig for AudioConfig {
    fn validate(&self) -> Result<()> {
        self.check()
    }

    fn build(&self, _env: &SourceEnv) -> Result<Box<dyn Modality>> {
        Ok(Box::new(Audio::new(self)?))
    }

    fn clone_box(&self) -> Box<dyn ModalityConfig> {
        Box::new(self.clone())
    }

    /// One WAV file: the spectrogram turned back into sound with Griffin-Lim.
    fn preview_files(&self, shape: &[usize], values: &[f32]) -> Result<Vec<PreviewFile>> {
        let want = self.item_shape();
        if shape != want.as_slice() {
            return Err(AudioError::SpectrogramShape {
                got: shape.to_vec(),
                want,
            }
            .into());
        }
        let bytes = Audio::new(self)?.wav(values)?;
        Ok(vec![PreviewFile {
            extension: "wav".to_owned(),
            bytes,
        }])
    }
}

fn default_config() -> Box<dyn ModalityConfig> {
    Box::new(AudioConfig::default())
}

rensou_api::inventory::submit! {
    ModalityPlugin {
        name: NAME,
        description: "N short tones of one timbre and one pitch as a log-mel spectrogram \
                      (32 mels x 64 frames; 8 kHz, 1 s)",
        default_config,
    }
}
