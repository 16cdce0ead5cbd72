//! The log-mel spectrogram: analysis (STFT with a Hann window, triangular mel bands, dB,
//! bytes) and its inverse for listening (a non-negative least-squares step back to linear
//! frequencies, then Griffin-Lim phase reconstruction).

use std::sync::Arc;

use rand::Rng;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use rensou_api::rng::rng_for;
use rensou_api::Result;

use crate::config::AudioConfig;
use crate::error::AudioError;

/// Multiplicative-update iterations of the non-negative least-squares step from mel bands
/// back to FFT bins.
pub const NNLS_ITERATIONS: usize = 30;

/// Peak level of a waveform reconstructed by [`MelSpectrogram::invert`].
pub const INVERT_PEAK: f32 = 0.9;

/// One triangular mel band: its non-zero weights over consecutive FFT bins.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    /// First FFT bin with a non-zero weight.
    pub start: usize,
    /// Weights (peak 1 at the band's centre frequency) of bins `start..start + len`.
    pub weights: Vec<f32>,
}

/// Hz to mel (HTK formula).
pub fn hz_to_mel(hz: f64) -> f64 {
    2595.0 * (1.0 + hz / 700.0).log10()
}

/// Mel to Hz (HTK formula).
pub fn mel_to_hz(mel: f64) -> f64 {
    700.0 * (10f64.powf(mel / 2595.0) - 1.0)
}

/// The triangular mel filterbank of `config`, lowest band first: `mels` triangles with edges
/// equally spaced in mel from `mel_low_hz` to `mel_high_hz`, over the bins `0..=n_fft / 2`.
/// A band too narrow to hold any bin has no weights (validation rejects that).
pub fn filterbank(config: &AudioConfig) -> Vec<Band> {
    let (lo, hi) = (hz_to_mel(config.mel_low_hz), hz_to_mel(config.mel_high_hz));
    let edges: Vec<f64> = (0..config.mels + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (config.mels + 1) as f64))
        .collect();
    let bins = config.n_fft / 2 + 1;
    let bin_hz = f64::from(config.sample_rate) / config.n_fft as f64;
    (0..config.mels)
        .map(|m| {
            let (a, b, c) = (edges[m], edges[m + 1], edges[m + 2]);
            let mut start = None;
            let mut weights = Vec::new();
            for k in 0..bins {
                let f = k as f64 * bin_hz;
                let w = if f > a && f <= b {
                    (f - a) / (b - a)
                } else if f > b && f < c {
                    (c - f) / (c - b)
                } else {
                    0.0
                };
                if w > 0.0 {
                    start.get_or_insert(k);
                    weights.push(w as f32);
                } else if start.is_some() {
                    break;
                }
            }
            Band {
                start: start.unwrap_or(0),
                weights,
            }
        })
        .collect()
}

/// Reusable buffers of one analysis.
struct Scratch {
    frame: Vec<Complex<f32>>,
    fft: Vec<Complex<f32>>,
    power: Vec<f32>,
}

/// The spectrogram analyser and its inverse for one validated [`AudioConfig`]: the Hann
/// window, the mel filterbank and the FFT plans are made once.
#[derive(Clone)]
pub struct MelSpectrogram {
    samples: usize,
    sample_rate: u32,
    n_fft: usize,
    frames: usize,
    mels: usize,
    db_floor: f32,
    db_range: f32,
    griffin_lim_iterations: u32,
    /// Window start of each frame (the frame's centre minus `n_fft / 2`; may be negative).
    starts: Vec<isize>,
    /// Periodic Hann window.
    window: Vec<f32>,
    /// `2 / sum(window)`: a full-scale sine on a bin centre has magnitude 1.
    scale: f32,
    /// `1 / sum_t window^2` at each sample, for overlap-add.
    ola_norm: Vec<f32>,
    bands: Vec<Band>,
    forward: Arc<dyn Fft<f32>>,
    inverse: Arc<dyn Fft<f32>>,
}

impl std::fmt::Debug for MelSpectrogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MelSpectrogram")
            .field("samples", &self.samples)
            .field("n_fft", &self.n_fft)
            .field("frames", &self.frames)
            .field("mels", &self.mels)
            .finish_non_exhaustive()
    }
}

impl MelSpectrogram {
    /// Validates `config` and prepares the window, filterbank and FFT plans.
    pub fn new(config: &AudioConfig) -> Result<Self> {
        config.check()?;
        let (samples, n, frames) = (config.samples(), config.n_fft, config.frames);
        let window: Vec<f32> = (0..n)
            .map(|i| {
                let x = std::f64::consts::TAU * i as f64 / n as f64;
                (0.5 - 0.5 * x.cos()) as f32
            })
            .collect();
        // Frame t is centred on the middle of the t-th of `frames` equal stretches.
        let starts: Vec<isize> = (0..frames)
            .map(|t| ((2 * t + 1) * samples / (2 * frames)) as isize - (n / 2) as isize)
            .collect();
        let mut ola = vec![0f32; samples];
        for &s in &starts {
            for (i, w) in window.iter().enumerate() {
                if let Some(o) = index(s, i, samples) {
                    ola[o] += w * w;
                }
            }
        }
        let ola_norm = ola.iter().map(|&d| 1.0 / d.max(1e-6)).collect();
        let sum: f32 = window.iter().sum();
        let mut planner = FftPlanner::new();
        Ok(MelSpectrogram {
            samples,
            sample_rate: config.sample_rate,
            n_fft: n,
            frames,
            mels: config.mels,
            db_floor: (config.db_ceiling - config.db_range) as f32,
            db_range: config.db_range as f32,
            griffin_lim_iterations: config.griffin_lim_iterations,
            starts,
            window,
            scale: 2.0 / sum,
            ola_norm,
            bands: filterbank(config),
            forward: planner.plan_fft_forward(n),
            inverse: planner.plan_fft_inverse(n),
        })
    }

    /// Item shape `[mels, frames]`.
    pub fn shape(&self) -> [usize; 2] {
        [self.mels, self.frames]
    }

    /// Bytes per item (`mels * frames`).
    pub fn item_len(&self) -> usize {
        self.mels * self.frames
    }

    /// Samples per sound.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// Samples per second.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The mel filterbank, lowest band first.
    pub fn bands(&self) -> &[Band] {
        &self.bands
    }

    /// The centre sample of each frame.
    pub fn frame_centres(&self) -> Vec<usize> {
        self.starts
            .iter()
            .map(|&s| (s + (self.n_fft / 2) as isize) as usize)
            .collect()
    }

    fn scratch(&self) -> Scratch {
        Scratch {
            frame: vec![Complex::default(); self.n_fft],
            fft: vec![Complex::default(); self.forward.get_inplace_scratch_len()],
            power: vec![0.0; self.n_fft / 2 + 1],
        }
    }

    /// The log-mel spectrogram of `samples` as bytes, `[mels, frames]` row-major, row 0 the
    /// highest band: power in dB mapped linearly from `db_ceiling - db_range ..= db_ceiling`
    /// to `0..=255` (clamped).
    pub fn analyse(&self, samples: &[f32]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.item_len()];
        self.analyse_into(samples, &mut out, &mut self.scratch())?;
        Ok(out)
    }

    /// [`analyse`](Self::analyse) into `out` (`mels * frames` bytes).
    fn analyse_into(&self, samples: &[f32], out: &mut [u8], s: &mut Scratch) -> Result<()> {
        if samples.len() != self.samples {
            return Err(AudioError::WaveformLength {
                got: samples.len(),
                want: self.samples,
            }
            .into());
        }
        for (t, &start) in self.starts.iter().enumerate() {
            let mut silent = true;
            for (i, (c, w)) in s.frame.iter_mut().zip(&self.window).enumerate() {
                let v = index(start, i, self.samples).map_or(0.0, |o| samples[o]);
                silent &= v == 0.0;
                *c = Complex::new(v * w, 0.0);
            }
            if silent {
                // A silent frame has no power in any band: byte 0 (the frame is zeroed).
                for m in 0..self.mels {
                    out[(self.mels - 1 - m) * self.frames + t] = 0;
                }
                continue;
            }
            self.forward.process_with_scratch(&mut s.frame, &mut s.fft);
            let scale2 = self.scale * self.scale;
            for (p, c) in s.power.iter_mut().zip(&s.frame) {
                *p = c.norm_sqr() * scale2;
            }
            for (m, band) in self.bands.iter().enumerate() {
                let e: f32 = band
                    .weights
                    .iter()
                    .zip(&s.power[band.start..])
                    .map(|(w, p)| w * p)
                    .sum();
                out[(self.mels - 1 - m) * self.frames + t] = self.quantise(e);
            }
        }
        Ok(())
    }

    /// Band power to a byte.
    fn quantise(&self, power: f32) -> u8 {
        if power <= 0.0 {
            return 0;
        }
        let v = (10.0 * power.log10() - self.db_floor) / self.db_range;
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    }

    /// A stored value in `[0, 1]` (byte / 255) back to band power; 0 (the floor byte) is
    /// silence.
    fn dequantise(&self, value: f32) -> f32 {
        let v = value.clamp(0.0, 1.0);
        if v * 255.0 < 0.5 {
            return 0.0;
        }
        10f32.powf((self.db_floor + v * self.db_range) / 10.0)
    }

    /// Turns a spectrogram back into a waveform: `values` hold one item (`[mels, frames]`,
    /// row 0 the highest band) in `[0, 1]` (stored bytes / 255, or a decoder's output; values
    /// outside are clamped). Band powers are spread back over the FFT bins by non-negative
    /// least squares, and the phase is found with `griffin_lim_iterations` of Griffin-Lim from
    /// a fixed random start (so the result is deterministic). The waveform is peak-normalised
    /// to [`INVERT_PEAK`] (all zeros if the spectrogram is silent).
    pub fn invert(&self, values: &[f32]) -> Result<Vec<f32>> {
        if values.len() != self.item_len() {
            return Err(AudioError::SpectrogramLength {
                got: values.len(),
                want: self.item_len(),
                shape: self.shape().to_vec(),
            }
            .into());
        }
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(AudioError::NonFinite { index }.into());
        }
        let bins = self.n_fft / 2 + 1;
        // Target magnitudes per frame and bin, in the FFT's own (unscaled) units.
        let mut magnitude = vec![0f32; self.frames * bins];
        let mut energy = vec![0f32; self.mels];
        for t in 0..self.frames {
            for (m, e) in energy.iter_mut().enumerate() {
                *e = self.dequantise(values[(self.mels - 1 - m) * self.frames + t]);
            }
            let power = self.bins_from_bands(&energy);
            for (k, p) in power.iter().enumerate() {
                magnitude[t * bins + k] = p.sqrt() / self.scale;
            }
        }
        let mut rng = rng_for(0, &[crate::NAME, "griffin-lim"]);
        let mut spectrum: Vec<Complex<f32>> = magnitude
            .iter()
            .map(|&m| Complex::from_polar(m, rng.random_range(0.0..std::f32::consts::TAU)))
            .collect();
        let mut wave = vec![0f32; self.samples];
        let mut s = self.scratch();
        for _ in 0..self.griffin_lim_iterations {
            self.istft(&spectrum, &mut wave, &mut s);
            self.stft(&wave, &mut spectrum, &mut s);
            for (c, &m) in spectrum.iter_mut().zip(&magnitude) {
                let n = c.norm();
                *c = if n > 0.0 {
                    *c * (m / n)
                } else {
                    Complex::new(m, 0.0)
                };
            }
        }
        self.istft(&spectrum, &mut wave, &mut s);
        let peak = wave.iter().fold(0f32, |a, v| a.max(v.abs()));
        if peak > 0.0 {
            let g = INVERT_PEAK / peak;
            wave.iter_mut().for_each(|v| *v *= g);
        }
        Ok(wave)
    }

    /// Non-negative least squares `min ||W p - e||, p >= 0` for one frame, by multiplicative
    /// updates from `p = 1`: the power of each FFT bin given the band powers `e`.
    fn bins_from_bands(&self, energy: &[f32]) -> Vec<f32> {
        let bins = self.n_fft / 2 + 1;
        // W^T e, the numerator of every update.
        let mut wte = vec![0f32; bins];
        for (band, &e) in self.bands.iter().zip(energy) {
            for (i, w) in band.weights.iter().enumerate() {
                wte[band.start + i] += w * e;
            }
        }
        let mut p = vec![1f32; bins];
        let mut wp = vec![0f32; self.mels];
        let mut wtwp = vec![0f32; bins];
        for _ in 0..NNLS_ITERATIONS {
            for (band, x) in self.bands.iter().zip(wp.iter_mut()) {
                *x = band
                    .weights
                    .iter()
                    .zip(&p[band.start..])
                    .map(|(w, v)| w * v)
                    .sum();
            }
            wtwp.iter_mut().for_each(|v| *v = 0.0);
            for (band, &x) in self.bands.iter().zip(&wp) {
                for (i, w) in band.weights.iter().enumerate() {
                    wtwp[band.start + i] += w * x;
                }
            }
            for ((v, &num), &den) in p.iter_mut().zip(&wte).zip(&wtwp) {
                *v = if num > 0.0 && den > 0.0 {
                    *v * num / den
                } else {
                    0.0
                };
            }
        }
        p
    }

    /// Complex STFT (bins `0..=n_fft / 2` per frame, frame after frame) of `wave`.
    fn stft(&self, wave: &[f32], out: &mut [Complex<f32>], s: &mut Scratch) {
        let bins = self.n_fft / 2 + 1;
        for (t, &start) in self.starts.iter().enumerate() {
            for (i, (c, w)) in s.frame.iter_mut().zip(&self.window).enumerate() {
                let v = index(start, i, self.samples).map_or(0.0, |o| wave[o]);
                *c = Complex::new(v * w, 0.0);
            }
            self.forward.process_with_scratch(&mut s.frame, &mut s.fft);
            out[t * bins..(t + 1) * bins].copy_from_slice(&s.frame[..bins]);
        }
    }

    /// Inverse STFT by windowed overlap-add, normalised by the summed squared window.
    fn istft(&self, spectrum: &[Complex<f32>], wave: &mut [f32], s: &mut Scratch) {
        let (n, bins) = (self.n_fft, self.n_fft / 2 + 1);
        wave.iter_mut().for_each(|v| *v = 0.0);
        for (t, &start) in self.starts.iter().enumerate() {
            let half = &spectrum[t * bins..(t + 1) * bins];
            for k in 0..n {
                s.frame[k] = if k < bins {
                    half[k]
                } else {
                    half[n - k].conj()
                };
            }
            self.inverse.process_with_scratch(&mut s.frame, &mut s.fft);
            for (i, (c, w)) in s.frame.iter().zip(&self.window).enumerate() {
                if let Some(o) = index(start, i, self.samples) {
                    wave[o] += w * c.re / n as f32;
                }
            }
        }
        for (v, g) in wave.iter_mut().zip(&self.ola_norm) {
            *v *= g;
        }
    }
}

/// Sample index of position `i` of a window starting at `start`, if inside `0..len`.
fn index(start: isize, i: usize, len: usize) -> Option<usize> {
    usize::try_from(start + i as isize)
        .ok()
        .filter(|&o| o < len)
}

/// Analysis with reusable buffers, for generating many items.
pub(crate) struct Analyser<'a> {
    mel: &'a MelSpectrogram,
    scratch: Scratch,
}

impl<'a> Analyser<'a> {
    pub(crate) fn new(mel: &'a MelSpectrogram) -> Self {
        Analyser {
            mel,
            scratch: mel.scratch(),
        }
    }

    pub(crate) fn analyse_into(&mut self, samples: &[f32], out: &mut [u8]) -> Result<()> {
        self.mel.analyse_into(samples, out, &mut self.scratch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mel_scale_round_trips() {
        for hz in [0.0, 60.0, 440.0, 1000.0, 4000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-9);
        }
        assert!((hz_to_mel(1000.0) - 1000.0).abs() < 0.1);
    }

    #[test]
    fn default_bands_cover_every_bin_range_without_gaps() {
        let c = AudioConfig::default();
        let bands = filterbank(&c);
        assert_eq!(bands.len(), 32);
        assert!(bands.iter().all(|b| !b.weights.is_empty()));
        assert!(bands
            .iter()
            .all(|b| b.weights.iter().all(|&w| w > 0.0 && w <= 1.0)));
        // Bands move up in frequency.
        assert!(bands.windows(2).all(|w| w[0].start <= w[1].start));
        // The first band starts above 60 Hz (bin 2 = 62.5 Hz), the last ends below Nyquist.
        assert_eq!(bands[0].start, 2);
        let last = &bands[31];
        assert!(last.start + last.weights.len() <= 128);
    }

    #[test]
    fn a_full_scale_sine_is_near_the_ceiling_and_silence_is_zero() {
        let c = AudioConfig::default();
        let mel = MelSpectrogram::new(&c).unwrap();
        let n = c.samples();
        // 1000 Hz is bin 32 exactly.
        let sine: Vec<f32> = (0..n)
            .map(|i| (std::f64::consts::TAU * 1000.0 * i as f64 / 8000.0).sin() as f32)
            .collect();
        let spec = mel.analyse(&sine).unwrap();
        let top = *spec.iter().max().unwrap();
        assert!((230..=255).contains(&top), "{top}");
        assert_eq!(mel.analyse(&vec![0.0; n]).unwrap(), vec![0u8; 32 * 64]);
        assert!(mel.analyse(&sine[1..]).is_err());
    }

    #[test]
    fn overlap_add_inverts_the_stft() {
        let c = AudioConfig::default();
        let mel = MelSpectrogram::new(&c).unwrap();
        let n = c.samples();
        let x: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 113) as f32 / 113.0 - 0.5)
            .collect();
        let mut s = mel.scratch();
        let mut spec = vec![Complex::default(); c.frames * (c.n_fft / 2 + 1)];
        mel.stft(&x, &mut spec, &mut s);
        let mut y = vec![0f32; n];
        mel.istft(&spec, &mut y, &mut s);
        let err = x
            .iter()
            .zip(&y)
            .fold(0f32, |a, (p, q)| a.max((p - q).abs()));
        assert!(err < 1e-4, "{err}");
    }
}
