//! TFRecord framing: each record is
//!
//! ```text
//! u64 LE  length of data
//! u32 LE  masked CRC-32C of the eight length bytes
//! [u8]    data
//! u32 LE  masked CRC-32C of data
//! ```

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::crc32c::masked_crc32c;
use crate::{Error, Result};

/// Appends `data`, framed, to `out`.
pub(crate) fn frame(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
}

/// Reads framed records one by one.
///
/// The end of the input may cut the last record short: a writer killed mid-write leaves the
/// front of a record (its header, or part of its data). That tail is not an error; it reads as
/// the end. So is a tail of zero bytes from where a record starts to the end (what a file
/// system may leave after a power cut). A CRC that does not match anywhere else is
/// [`Error::Corrupt`].
pub(crate) struct RecordReader<R> {
    input: R,
    path: PathBuf,
    /// Byte offset of the next record.
    offset: u64,
}

impl<R: Read> RecordReader<R> {
    pub(crate) fn new(input: R, path: &Path) -> Self {
        RecordReader {
            input,
            path: path.to_path_buf(),
            offset: 0,
        }
    }

    /// Byte offset of the record last returned by [`Self::next_record`] once it is read (the
    /// start of the next one).
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    pub(crate) fn corrupt(&self, offset: u64, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            path: self.path.clone(),
            offset,
            reason: reason.into(),
        }
    }

    fn io(&self, source: io::Error) -> Error {
        Error::Io {
            action: "reading",
            path: self.path.clone(),
            source,
        }
    }

    /// Fills `buf` as far as the input goes; returns how many bytes were read.
    fn read_up_to(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.input.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io(e)),
            }
        }
        Ok(n)
    }

    /// Whether `seen` and everything after it to the end of the input are zero bytes.
    fn zero_tail(&mut self, seen: &[&[u8]]) -> Result<bool> {
        if seen.iter().any(|part| part.iter().any(|&b| b != 0)) {
            return Ok(false);
        }
        let mut buf = [0u8; 8192];
        loop {
            let n = self.read_up_to(&mut buf)?;
            if buf[..n].iter().any(|&b| b != 0) {
                return Ok(false);
            }
            if n < buf.len() {
                return Ok(true);
            }
        }
    }

    /// The next record's data, or `None` at the end (including a cut-short or zeroed tail).
    pub(crate) fn next_record(&mut self) -> Result<Option<Vec<u8>>> {
        let start = self.offset;
        let mut header = [0u8; 12];
        if self.read_up_to(&mut header)? < header.len() {
            return Ok(None);
        }
        let len_bytes: [u8; 8] = header[..8].try_into().expect("eight bytes");
        let len_crc = u32::from_le_bytes(header[8..].try_into().expect("four bytes"));
        if masked_crc32c(&len_bytes) != len_crc {
            if self.zero_tail(&[&header])? {
                return Ok(None);
            }
            return Err(self.corrupt(start, "length CRC does not match"));
        }
        let len = u64::from_le_bytes(len_bytes);
        let mut data = Vec::new();
        // `take` keeps a corrupt-but-checksummed huge length from allocating up front.
        let read = (&mut self.input)
            .take(len)
            .read_to_end(&mut data)
            .map_err(|e| self.io(e))?;
        if (read as u64) < len {
            return Ok(None);
        }
        let mut footer = [0u8; 4];
        if self.read_up_to(&mut footer)? < footer.len() {
            return Ok(None);
        }
        if masked_crc32c(&data) != u32::from_le_bytes(footer) {
            if self.zero_tail(&[&header, &data, &footer])? {
                return Ok(None);
            }
            return Err(self.corrupt(start, "data CRC does not match"));
        }
        self.offset = start + 12 + len + 4;
        Ok(Some(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{encode_event, Payload, Value};

    fn records(bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mut reader = RecordReader::new(bytes, Path::new("test"));
        let mut out = Vec::new();
        while let Some(data) = reader.next_record()? {
            out.push(data);
        }
        Ok(out)
    }

    fn framed(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for part in parts {
            frame(&mut out, part);
        }
        out
    }

    #[test]
    fn round_trip() {
        let parts: [&[u8]; 3] = [b"first", b"", &[7u8; 1000]];
        let bytes = framed(&parts);
        assert_eq!(bytes.len(), 3 * 16 + 5 + 1000);
        assert_eq!(records(&bytes).unwrap(), parts.map(<[u8]>::to_vec));
    }

    #[test]
    fn every_truncation_reads_the_complete_records() {
        let bytes = framed(&[b"one", b"two", b"three"]);
        let ends = [0, 19, 38, bytes.len()];
        for cut in 0..=bytes.len() {
            let complete = ends.iter().filter(|&&end| end <= cut).count() - 1;
            let got = records(&bytes[..cut]).unwrap();
            assert_eq!(got.len(), complete, "cut at {cut}");
        }
    }

    #[test]
    fn zeroed_tail_reads_as_the_end() {
        let mut bytes = framed(&[b"one"]);
        bytes.extend_from_slice(&[0u8; 100]);
        assert_eq!(records(&bytes).unwrap(), [b"one".to_vec()]);
    }

    #[test]
    fn flipped_bits_are_corrupt() {
        let bytes = framed(&[b"one", b"two"]);
        for (at, what) in [
            (3, "length CRC"),
            (9, "length CRC"),
            (12, "data CRC"),
            (16, "data CRC"),
        ] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            match records(&bad) {
                Err(Error::Corrupt { offset, reason, .. }) => {
                    assert_eq!(offset, 0);
                    assert!(reason.starts_with(what), "{reason}");
                }
                other => panic!("byte {at}: {other:?}"),
            }
        }
        // A bad second record names its own offset.
        let mut bad = bytes.clone();
        bad[19 + 12] ^= 1;
        assert!(matches!(
            records(&bad),
            Err(Error::Corrupt { offset: 19, .. })
        ));
    }

    fn encoded(wall_time: f64, step: i64, payload: &Payload<'_>) -> Vec<u8> {
        let mut event = Vec::new();
        encode_event(&mut event, wall_time, step, payload);
        let mut out = Vec::new();
        frame(&mut out, &event);
        out
    }

    /// Records framed by TensorBoard 2.21's Python classes (`event_pb2.Event(...)`
    /// serialized, then `tensorboard.summary.writer.record_writer.RecordWriter`): the same bytes,
    /// CRCs included.
    #[test]
    fn matches_tensorboard_record_writer() {
        // Event(wall_time=1.5, step=7, file_version="brain.Event:2")
        let version: [u8; 42] = [
            0x1a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x9b, 0xd8, 0x2d, 0x09, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0xf8, 0x3f, 0x10, 0x07, 0x1a, 0x0d, 0x62, 0x72, 0x61,
            0x69, 0x6e, 0x2e, 0x45, 0x76, 0x65, 0x6e, 0x74, 0x3a, 0x32, 0xda, 0x44, 0x64, 0x86,
        ];
        assert_eq!(
            encoded(1.5, 7, &Payload::FileVersion("brain.Event:2")),
            version
        );

        // Event(wall_time=1700000000.125, step=-3,
        //       summary=Summary(value=[Value(tag="loss/train", simple_value=0.25)]))
        let scalar: [u8; 57] = [
            0x29, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x37, 0xff, 0x5f, 0x00, 0x09, 0x00,
            0x00, 0x08, 0x40, 0xfc, 0x54, 0xd9, 0x41, 0x10, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0x01, 0x2a, 0x13, 0x0a, 0x11, 0x0a, 0x0a, 0x6c, 0x6f, 0x73, 0x73,
            0x2f, 0x74, 0x72, 0x61, 0x69, 0x6e, 0x15, 0x00, 0x00, 0x80, 0x3e, 0xc9, 0x94, 0xa3,
            0xfa,
        ];
        let values = [Value::Scalar {
            tag: "loss/train",
            value: 0.25,
        }];
        assert_eq!(
            encoded(1_700_000_000.125, -3, &Payload::Summary(&values)),
            scalar
        );

        // Event(wall_time=2.0, step=300, summary=Summary(value=[Value(tag="img",
        //       image=Image(height=2, width=3, colorspace=4, encoded_image_string=b"\x89PNG"))]))
        let image: [u8; 51] = [
            0x23, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xb0, 0x9f, 0x77, 0x43, 0x09, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x10, 0xac, 0x02, 0x2a, 0x15, 0x0a, 0x13,
            0x0a, 0x03, 0x69, 0x6d, 0x67, 0x22, 0x0c, 0x08, 0x02, 0x10, 0x03, 0x18, 0x04, 0x22,
            0x04, 0x89, 0x50, 0x4e, 0x47, 0xbe, 0xe2, 0x41, 0xad,
        ];
        let values = [Value::Image {
            tag: "img",
            height: 2,
            width: 3,
            colorspace: 4,
            encoded: b"\x89PNG",
        }];
        assert_eq!(encoded(2.0, 300, &Payload::Summary(&values)), image);
    }
}
