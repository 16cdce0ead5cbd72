//! The audio [`Modality`]: labels, and items per class from deterministic random streams.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};

use rensou_api::rng::{derive_seed, DataRng};
use rensou_api::vocab;
use rensou_api::{ItemRequest, ItemSet, LabelSpec, Likelihood, Modality, NetKind, Result, Supply};

use crate::config::AudioConfig;
use crate::error::AudioError;
use crate::mel::{Analyser, MelSpectrogram};
use crate::synth::{Pitch, Sound, Synth, Timbre, PITCH, SLOTS, TIMBRE};
use crate::wav::wav_bytes;
use crate::NAME;

/// How often (in items) [`ItemRequest::progress`] is called.
pub const PROGRESS_EVERY: u64 = 1024;

/// The audio modality, built from a validated [`AudioConfig`]: a synthesiser and a
/// spectrogram analyser, both prepared once.
#[derive(Clone, Debug)]
pub struct Audio {
    synth: Synth,
    mel: MelSpectrogram,
}

/// One class of a generation plan: the number if the request keys on it (else drawn per
/// item), and how many items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Class {
    number: Option<u32>,
    count: usize,
}

impl Audio {
    /// Validates `config` and builds the modality.
    pub fn new(config: &AudioConfig) -> Result<Self> {
        Ok(Audio {
            synth: Synth::new(config)?,
            mel: MelSpectrogram::new(config)?,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AudioConfig {
        self.synth.config()
    }

    /// The synthesiser.
    pub fn synth(&self) -> &Synth {
        &self.synth
    }

    /// The spectrogram analyser (and its inverse).
    pub fn mel(&self) -> &MelSpectrogram {
        &self.mel
    }

    /// Synthesises one sound: `number` tones of `timbre` at `pitch` (see
    /// [`Synth::synthesise`]).
    pub fn synthesise<R: Rng + ?Sized>(
        &self,
        number: u32,
        timbre: Timbre,
        pitch: Pitch,
        rng: &mut R,
    ) -> Result<Sound> {
        self.synth.synthesise(number, timbre, pitch, rng)
    }

    /// The stored item of a waveform: its log-mel spectrogram as `[mels, frames]` bytes, row 0
    /// the highest band (see [`MelSpectrogram::analyse`]).
    pub fn spectrogram(&self, samples: &[f32]) -> Result<Vec<u8>> {
        self.mel.analyse(samples)
    }

    /// A waveform for a spectrogram given as values in `[0, 1]` (see
    /// [`MelSpectrogram::invert`]).
    pub fn waveform(&self, values: &[f32]) -> Result<Vec<f32>> {
        self.mel.invert(values)
    }

    /// A 16-bit mono WAV file of the waveform for a spectrogram given as values in `[0, 1]`.
    pub fn wav(&self, values: &[f32]) -> Result<Vec<u8>> {
        wav_bytes(&self.waveform(values)?, self.config().sample_rate)
    }

    /// The classes to generate, in output order.
    fn plan(&self, request: &ItemRequest<'_>) -> Result<Vec<Class>> {
        let c = self.config();
        let Some(counts) = request.classes else {
            let count = c.per_class(request.split);
            return Ok((c.min_number..=c.max_number)
                .map(|number| Class {
                    number: Some(number),
                    count,
                })
                .collect());
        };
        counts
            .keyed_by(NAME, &[vocab::NUMBER])?
            .into_iter()
            .map(|(values, count)| {
                Ok(Class {
                    number: values[0].map(|n| self.number(n)).transpose()?,
                    count,
                })
            })
            .collect()
    }

    fn number(&self, value: i64) -> Result<u32, AudioError> {
        let c = self.config();
        u32::try_from(value)
            .ok()
            .filter(|n| (c.min_number..=c.max_number).contains(n))
            .ok_or(AudioError::NumberOutOfRange {
                number: value,
                min: c.min_number,
                max: c.max_number,
            })
    }

    /// The random stream of one class: derived from the request's seed and the class's
    /// number, so a class's items do not depend on which other classes are requested.
    fn class_rng(seed: u64, class: &Class) -> DataRng {
        let path = class.number.map(|n| format!("{}={n}", vocab::NUMBER));
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        DataRng::seed_from_u64(derive_seed(seed, &path))
    }
}

fn pick<T: Copy, R: Rng + ?Sized>(items: &[T], rng: &mut R) -> T {
    items[rng.random_range(0..items.len() as u32) as usize]
}

impl Modality for Audio {
    fn name(&self) -> &str {
        NAME
    }

    /// `[mels, frames]`: a greyscale picture of the spectrogram, low frequencies at the
    /// bottom, time from left to right.
    fn item_shape(&self) -> Vec<usize> {
        self.config().item_shape()
    }

    fn labels(&self) -> Vec<LabelSpec> {
        vec![
            vocab::number_label_spec(),
            Timbre::label_spec(),
            Pitch::label_spec(),
            LabelSpec::numeric(
                SLOTS,
                "bitmask of the time slots holding a tone, bit i = slot i (earliest = bit 0)",
            ),
        ]
    }

    fn supply(&self) -> Supply {
        Supply::Generative
    }

    /// Items class after class (in the order of the request's keys, or by number when no
    /// counts are given); timbre and pitch are drawn uniformly from the config per item.
    fn items(&self, request: &ItemRequest<'_>) -> Result<ItemSet> {
        let plan = self.plan(request)?;
        let c = self.config();
        let item_len = self.mel.item_len();
        let total: usize = plan.iter().map(|k| k.count).sum();
        let bytes = total
            .checked_mul(item_len)
            .filter(|&b| b <= isize::MAX as usize)
            .ok_or(AudioError::TooManyItems {
                items: total,
                item_len,
            })?;
        let mut data = vec![0u8; bytes];
        let mut numbers = Vec::with_capacity(total);
        let mut timbres = Vec::with_capacity(total);
        let mut pitches = Vec::with_capacity(total);
        let mut slots = Vec::with_capacity(total);
        let mut analyser = Analyser::new(&self.mel);
        let mut items = data.chunks_exact_mut(item_len);
        let mut pending = 0u64;
        for class in &plan {
            let mut rng = Self::class_rng(request.seed, class);
            for _ in 0..class.count {
                let number = match class.number {
                    Some(n) => n,
                    None => rng.random_range(c.min_number..=c.max_number),
                };
                let timbre = pick(&c.timbres, &mut rng);
                let pitch = pick(&c.pitches, &mut rng);
                let sound = self.synth.synthesise(number, timbre, pitch, &mut rng)?;
                let out = items.next().ok_or(AudioError::TooManyItems {
                    items: total,
                    item_len,
                })?;
                analyser.analyse_into(&sound.samples, out)?;
                numbers.push(i64::from(number));
                timbres.push(timbre.index());
                pitches.push(pitch.index());
                slots.push(sound.slots);
                pending += 1;
                if pending == PROGRESS_EVERY {
                    (request.progress)(pending);
                    pending = 0;
                }
            }
        }
        if pending > 0 {
            (request.progress)(pending);
        }
        let labels = BTreeMap::from([
            (vocab::NUMBER.to_owned(), numbers),
            (TIMBRE.to_owned(), timbres),
            (PITCH.to_owned(), pitches),
            (SLOTS.to_owned(), slots),
        ]);
        let set = ItemSet {
            shape: self.item_shape(),
            data,
            labels,
        };
        set.validate()?;
        Ok(set)
    }

    fn likelihood(&self) -> Likelihood {
        Likelihood::Normal
    }

    /// 1-D convolutions over the 64 frames with the 32 mel bands as channels: a spectrogram is
    /// a signal in time, not an image (its frequency axis is not translation invariant).
    fn default_net(&self) -> NetKind {
        NetKind::Conv1d
    }

    fn provenance(&self) -> String {
        let c = self.config();
        format!(
            "{NAME}: generated ({} Hz, {} ms, {} slots, {} ms tones with {} ms ramps; log-mel \
             {}x{} from a Hann STFT with n_fft {} and hop {} samples, {} mel bands {}-{} Hz, \
             {} dB range below {} dB)",
            c.sample_rate,
            c.duration_ms,
            c.slot_count,
            c.tone_ms,
            c.ramp_ms,
            c.mels,
            c.frames,
            c.n_fft,
            c.hop(),
            c.mels,
            c.mel_low_hz,
            c.mel_high_hz,
            c.db_range,
            c.db_ceiling
        )
    }
}
