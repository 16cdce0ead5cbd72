//! Writing a waveform as a WAV file in memory.

use std::io::Cursor;

use rensou_api::Result;

use crate::error::AudioError;

/// A 16-bit mono PCM WAV file of `samples` (clamped to `[-1, 1]`) at `sample_rate`.
pub fn wav_bytes(samples: &[f32], sample_rate: u32) -> Result<Vec<u8>> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let wav = |e: hound::Error| AudioError::Wav(e.to_string());
    let mut bytes = Vec::with_capacity(44 + 2 * samples.len());
    let mut writer = hound::WavWriter::new(Cursor::new(&mut bytes), spec).map_err(wav)?;
    for &v in samples {
        let v = if v.is_finite() {
            v.clamp(-1.0, 1.0)
        } else {
            0.0
        };
        writer
            .write_sample((v * f32::from(i16::MAX)).round() as i16)
            .map_err(wav)?;
    }
    writer.finalize().map_err(wav)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_round_trips_through_hound() {
        let samples = [0.0, 0.5, -0.5, 1.0, -1.0, 2.0, f32::NAN];
        let bytes = wav_bytes(&samples, 8000).unwrap();
        let mut reader = hound::WavReader::new(Cursor::new(bytes)).unwrap();
        assert_eq!(reader.spec().sample_rate, 8000);
        assert_eq!(reader.spec().channels, 1);
        let back: Vec<i16> = reader.samples::<i16>().map(|s| s.unwrap()).collect();
        assert_eq!(back, [0, 16384, -16384, 32767, -32767, 32767, 0]);
    }
}
