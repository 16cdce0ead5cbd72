//! Synthesising the sounds: timbres, pitches, and N short tones in N of the time slots.

use rand::Rng;
use serde::{Deserialize, Serialize};

use rensou_api::{Error, LabelSpec, Result};

use crate::config::AudioConfig;
use crate::error::AudioError;

/// Name of the timbre label.
pub const TIMBRE: &str = "timbre";
/// Name of the pitch label.
pub const PITCH: &str = "pitch";
/// Name of the label holding the bitmask of occupied time slots (bit `i` = slot `i`).
pub const SLOTS: &str = "slots";

/// The tone colour of every tone in a sound (additive synthesis, band-limited below Nyquist);
/// the label value is the index (stable, whatever the config enables).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Timbre {
    /// A pure sine: the fundamental only; index 0.
    Sine,
    /// A band-limited square wave: odd harmonics `k` with amplitude `1/k`; index 1.
    Square,
    /// A band-limited sawtooth: every harmonic `k` with amplitude `1/k`; index 2.
    Saw,
}

impl Timbre {
    /// Every timbre, in index order.
    pub const ALL: [Timbre; 3] = [Timbre::Sine, Timbre::Square, Timbre::Saw];

    /// The label value of this timbre.
    pub fn index(self) -> i64 {
        self as i64
    }

    /// Lower-case name (as in config files).
    pub fn name(self) -> &'static str {
        match self {
            Timbre::Sine => "sine",
            Timbre::Square => "square",
            Timbre::Saw => "saw",
        }
    }

    /// The timbre with label value `index`.
    pub fn from_index(index: i64) -> Result<Timbre> {
        Timbre::ALL
            .into_iter()
            .find(|t| t.index() == index)
            .ok_or_else(|| Error::Data(format!("no timbre has index {index} (0..=2)")))
    }

    /// The `timbre` label spec (`0 = sine, 1 = square, 2 = saw`), always with every timbre so
    /// that indices are the same for every config.
    pub fn label_spec() -> LabelSpec {
        let names: Vec<&str> = Timbre::ALL.iter().map(|t| t.name()).collect();
        LabelSpec::categorical(TIMBRE, "timbre of the tones", &names)
    }

    /// Signed amplitude of harmonic `k` (1 = the fundamental) before normalisation.
    pub fn harmonic(self, k: u32) -> f64 {
        match self {
            Timbre::Sine => f64::from(u8::from(k == 1)),
            Timbre::Square if k % 2 == 1 => 1.0 / f64::from(k),
            Timbre::Square => 0.0,
            Timbre::Saw if k % 2 == 1 => 1.0 / f64::from(k),
            Timbre::Saw => -1.0 / f64::from(k),
        }
    }
}

impl std::fmt::Display for Timbre {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The pitch (fundamental frequency) of every tone in a sound, three octaves of C; the label
/// value is the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pitch {
    /// C4, 261.63 Hz; index 0.
    Low,
    /// C5, 523.25 Hz; index 1.
    Mid,
    /// C6, 1046.50 Hz; index 2.
    High,
}

impl Pitch {
    /// Every pitch, in index order.
    pub const ALL: [Pitch; 3] = [Pitch::Low, Pitch::Mid, Pitch::High];

    /// The label value of this pitch.
    pub fn index(self) -> i64 {
        self as i64
    }

    /// Lower-case name (as in config files).
    pub fn name(self) -> &'static str {
        match self {
            Pitch::Low => "low",
            Pitch::Mid => "mid",
            Pitch::High => "high",
        }
    }

    /// The nominal fundamental frequency in Hz (before the per-tone jitter).
    pub fn hz(self) -> f64 {
        match self {
            Pitch::Low => 261.63,
            Pitch::Mid => 523.25,
            Pitch::High => 1046.50,
        }
    }

    /// The pitch with label value `index`.
    pub fn from_index(index: i64) -> Result<Pitch> {
        Pitch::ALL
            .into_iter()
            .find(|p| p.index() == index)
            .ok_or_else(|| Error::Data(format!("no pitch has index {index} (0..=2)")))
    }

    /// The `pitch` label spec (`0 = low, 1 = mid, 2 = high`).
    pub fn label_spec() -> LabelSpec {
        let names: Vec<&str> = Pitch::ALL.iter().map(|p| p.name()).collect();
        LabelSpec::categorical(PITCH, "pitch of the tones (C4, C5, C6)", &names)
    }
}

impl std::fmt::Display for Pitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One tone of a sound.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    /// The time slot it occupies (`0..slot_count`).
    pub slot: u32,
    /// First sample.
    pub start: usize,
    /// Length in samples (`tone_ms`).
    pub len: usize,
    /// Fundamental frequency in Hz (the pitch with its jitter).
    pub frequency: f64,
    /// Peak amplitude (`min_amplitude..=max_amplitude`).
    pub amplitude: f64,
}

/// One synthesised sound.
#[derive(Clone, Debug, PartialEq)]
pub struct Sound {
    /// Mono samples in `[-1, 1]` at `sample_rate`, `sample_rate * duration_ms / 1000` of them.
    pub samples: Vec<f32>,
    /// Bitmask of occupied slots, bit `i` = slot `i` (the `slots` label).
    pub slots: i64,
    /// The tones, in time order.
    pub notes: Vec<Note>,
}

/// Synthesises sounds for one validated [`AudioConfig`]; cheap to reuse for many sounds.
#[derive(Clone, Debug)]
pub struct Synth {
    config: AudioConfig,
    samples: usize,
    slot_len: usize,
    jitter_len: usize,
    /// The amplitude envelope of one tone: raised-cosine attack and release.
    envelope: Vec<f64>,
}

impl Synth {
    /// Validates `config` and precomputes the tone envelope.
    pub fn new(config: &AudioConfig) -> Result<Self> {
        config.check()?;
        let tone = config.tone_len();
        let ramp = config.ramp_len().max(1);
        let envelope = (0..tone)
            .map(|i| {
                let edge = i.min(tone - 1 - i);
                if edge >= ramp {
                    1.0
                } else {
                    let x = (edge as f64 + 0.5) / ramp as f64;
                    0.5 - 0.5 * (std::f64::consts::PI * x).cos()
                }
            })
            .collect();
        Ok(Synth {
            config: config.clone(),
            samples: config.samples(),
            slot_len: config.slot_len(),
            jitter_len: config.jitter_len(),
            envelope,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AudioConfig {
        &self.config
    }

    /// Samples per sound.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// Samples per time slot (`samples / slot_count`).
    pub fn slot_len(&self) -> usize {
        self.slot_len
    }

    /// Synthesises `number` tones of `timbre` at `pitch` in distinct random slots. `number` must
    /// be within `min_number..=max_number`; any timbre or pitch may be used, configured or not
    /// (the config's sample rate must leave the pitch's harmonics room; the configured pitches
    /// always have it).
    pub fn synthesise<R: Rng + ?Sized>(
        &self,
        number: u32,
        timbre: Timbre,
        pitch: Pitch,
        rng: &mut R,
    ) -> Result<Sound> {
        let c = &self.config;
        if number < c.min_number || number > c.max_number {
            return Err(AudioError::NumberOutOfRange {
                number: i64::from(number),
                min: c.min_number,
                max: c.max_number,
            }
            .into());
        }
        // Partial Fisher-Yates over the slots: the first `number` are a uniform sample.
        let mut slots: Vec<u32> = (0..c.slot_count).collect();
        for i in 0..number {
            let j = rng.random_range(i..c.slot_count);
            slots.swap(i as usize, j as usize);
        }
        let mut chosen = slots[..number as usize].to_vec();
        chosen.sort_unstable();
        let mut samples = vec![0f32; self.samples];
        let mut mask = 0i64;
        let mut notes = Vec::with_capacity(number as usize);
        for slot in chosen {
            mask |= 1i64 << slot;
            let jitter = rng.random_range(0..=self.jitter_len);
            let detune = if c.pitch_jitter > 0.0 {
                rng.random_range(-c.pitch_jitter..=c.pitch_jitter)
            } else {
                0.0
            };
            let amplitude = if c.max_amplitude > c.min_amplitude {
                rng.random_range(c.min_amplitude..=c.max_amplitude)
            } else {
                c.min_amplitude
            };
            let note = Note {
                slot,
                start: slot as usize * self.slot_len + jitter,
                len: self.envelope.len(),
                frequency: pitch.hz() * (1.0 + detune),
                amplitude,
            };
            self.add_tone(&mut samples, &note, timbre);
            notes.push(note);
        }
        Ok(Sound {
            samples,
            slots: mask,
            notes,
        })
    }

    /// Adds one tone to `out` by additive synthesis: every harmonic of `timbre` below Nyquist,
    /// scaled so that the peak cannot exceed the note's amplitude.
    fn add_tone(&self, out: &mut [f32], note: &Note, timbre: Timbre) {
        let rate = f64::from(self.config.sample_rate);
        let nyquist = rate / 2.0;
        let end = (note.start + note.len).min(out.len());
        let Some(out) = out.get_mut(note.start..end) else {
            return;
        };
        let mut tone = vec![0f64; out.len()];
        let mut norm = 0.0;
        let mut k = 1u32;
        while f64::from(k) * note.frequency < nyquist {
            let a = timbre.harmonic(k);
            if a != 0.0 {
                norm += a.abs();
                // Rotating phasor: sin(k w i) without a sine per sample.
                let w = std::f64::consts::TAU * f64::from(k) * note.frequency / rate;
                let (step_im, step_re) = w.sin_cos();
                let (mut re, mut im) = (1.0f64, 0.0f64);
                for v in tone.iter_mut() {
                    *v += a * im;
                    let r = re * step_re - im * step_im;
                    im = re * step_im + im * step_re;
                    re = r;
                }
            }
            k += 1;
        }
        if norm == 0.0 {
            return;
        }
        let gain = note.amplitude / norm;
        for ((o, v), e) in out.iter_mut().zip(&tone).zip(&self.envelope) {
            *o += (v * e * gain) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rensou_api::rng::DataRng;

    #[test]
    fn indices_round_trip() {
        for t in Timbre::ALL {
            assert_eq!(Timbre::from_index(t.index()).unwrap(), t);
        }
        for p in Pitch::ALL {
            assert_eq!(Pitch::from_index(p.index()).unwrap(), p);
        }
        assert!(Timbre::from_index(3).is_err());
        assert!(Pitch::from_index(-1).is_err());
        assert_eq!(Timbre::label_spec().values[&2], "saw");
        assert_eq!(Pitch::label_spec().values[&0], "low");
    }

    #[test]
    fn harmonics_are_as_documented() {
        assert_eq!(Timbre::Sine.harmonic(1), 1.0);
        assert_eq!(Timbre::Sine.harmonic(2), 0.0);
        assert_eq!(Timbre::Square.harmonic(2), 0.0);
        assert!((Timbre::Square.harmonic(3) - 1.0 / 3.0).abs() < 1e-12);
        assert!((Timbre::Saw.harmonic(2) + 0.5).abs() < 1e-12);
    }

    #[test]
    fn tones_stay_in_range_and_start_and_end_quietly() {
        let synth = Synth::new(&AudioConfig::default()).unwrap();
        let mut rng = DataRng::seed_from_u64(3);
        for timbre in Timbre::ALL {
            for pitch in Pitch::ALL {
                let s = synth.synthesise(9, timbre, pitch, &mut rng).unwrap();
                assert_eq!(s.samples.len(), 8000);
                assert_eq!(s.slots, 0b1_1111_1111);
                assert!(s.samples.iter().all(|v| v.abs() <= 1.0));
                for n in &s.notes {
                    assert!(n.amplitude >= 0.6 && n.amplitude <= 1.0);
                    assert!((n.frequency / pitch.hz() - 1.0).abs() <= 0.02 + 1e-12);
                    // No clicks: the first and last samples of a tone are near zero.
                    assert!(s.samples[n.start].abs() < 0.01, "{timbre} {pitch}");
                    assert!(s.samples[n.start + n.len - 1].abs() < 0.01);
                    // Silence after the tone.
                    assert_eq!(s.samples[n.start + n.len], 0.0);
                }
            }
        }
    }
}
