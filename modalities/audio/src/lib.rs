#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod mel;
pub mod modality;
pub mod synth;
pub mod wav;

pub use config::AudioConfig;
pub use error::AudioError;
pub use mel::MelSpectrogram;
pub use modality::Audio;
pub use synth::{Note, Pitch, Sound, Synth, Timbre, PITCH, SLOTS, TIMBRE};
pub use wav::wav_bytes;

/// The modality's name (its plugin name and typetag).
pub const NAME: &str = "audio";
