//! Hand-written protobuf encoding and decoding of the few TensorBoard messages used here:
//!
//! ```proto
//! message Event { double wall_time = 1; int64 step = 2;
//!                 oneof what { string file_version = 3; Summary summary = 5; } }
//! message Summary { repeated Value value = 1;
//!   message Image { int32 height = 1; int32 width = 2; int32 colorspace = 3;
//!                   bytes encoded_image_string = 4; }
//!   message Value { string tag = 1;
//!                   oneof value { float simple_value = 2; Image image = 4; } } }
//! ```
//!
//! Fields are written in field-number order, as protobuf's own encoders do, so an event encodes
//! to the same bytes as with TensorBoard's Python classes (a unit test compares them). `step`
//! and `simple_value` are always written, even when zero: `simple_value` sits in a `oneof`,
//! where presence is what says the value is a scalar. Decoding skips fields it does not know.

use crate::{Event, Image};

/// Protobuf wire types.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

/// What an event carries besides its time and step.
pub(crate) enum Payload<'a> {
    /// The first event of every file: `"brain.Event:2"`.
    FileVersion(&'a str),
    /// A summary of one or more values.
    Summary(&'a [Value<'a>]),
}

/// One summary value to encode.
pub(crate) enum Value<'a> {
    /// `simple_value`.
    Scalar { tag: &'a str, value: f32 },
    /// An encoded image (PNG).
    Image {
        tag: &'a str,
        height: i32,
        width: i32,
        colorspace: i32,
        encoded: &'a [u8],
    },
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, field: u32, wire: u32) {
    put_varint(out, u64::from((field << 3) | wire));
}

/// An `int32`/`int64` field: negative values are sign-extended to ten bytes, as protobuf does.
fn put_int(out: &mut Vec<u8>, field: u32, v: i64) {
    put_key(out, field, VARINT);
    put_varint(out, v as u64);
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn encode_value(value: &Value<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    match value {
        Value::Scalar { tag, value } => {
            put_bytes(&mut out, 1, tag.as_bytes());
            put_key(&mut out, 2, FIXED32);
            out.extend_from_slice(&value.to_le_bytes());
        }
        Value::Image {
            tag,
            height,
            width,
            colorspace,
            encoded,
        } => {
            put_bytes(&mut out, 1, tag.as_bytes());
            let mut image = Vec::with_capacity(encoded.len() + 24);
            put_int(&mut image, 1, i64::from(*height));
            put_int(&mut image, 2, i64::from(*width));
            put_int(&mut image, 3, i64::from(*colorspace));
            put_bytes(&mut image, 4, encoded);
            put_bytes(&mut out, 4, &image);
        }
    }
    out
}

/// Appends the encoded event to `out`.
pub(crate) fn encode_event(out: &mut Vec<u8>, wall_time: f64, step: i64, payload: &Payload<'_>) {
    put_key(out, 1, FIXED64);
    out.extend_from_slice(&wall_time.to_le_bytes());
    put_int(out, 2, step);
    match payload {
        Payload::FileVersion(version) => put_bytes(out, 3, version.as_bytes()),
        Payload::Summary(values) => {
            let mut summary = Vec::new();
            for value in *values {
                put_bytes(&mut summary, 1, &encode_value(value));
            }
            put_bytes(out, 5, &summary);
        }
    }
}

/// A cursor over one message's bytes.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(data: &'a [u8]) -> Self {
        Cursor { data, pos: 0 }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| format!("field of {n} bytes runs past the message end"))?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = *self
                .data
                .get(self.pos)
                .ok_or("varint runs past the message end")?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than ten bytes".into())
    }

    /// The next field's number and wire type, or `None` at the end.
    fn key(&mut self) -> Result<Option<(u32, u32)>, String> {
        if self.at_end() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field =
            u32::try_from(key >> 3).map_err(|_| format!("field number {} too large", key >> 3))?;
        Ok(Some((field, (key & 7) as u32)))
    }

    fn fixed64(&mut self) -> Result<[u8; 8], String> {
        Ok(self.take(8)?.try_into().expect("eight bytes"))
    }

    fn fixed32(&mut self) -> Result<[u8; 4], String> {
        Ok(self.take(4)?.try_into().expect("four bytes"))
    }

    fn len_delimited(&mut self) -> Result<&'a [u8], String> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| format!("length {len} too large"))?;
        self.take(len)
    }

    /// Skips a field of a wire type this decoder does not read.
    fn skip(&mut self, field: u32, wire: u32) -> Result<(), String> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.fixed64().map(drop),
            LEN => self.len_delimited().map(drop),
            FIXED32 => self.fixed32().map(drop),
            _ => Err(format!("field {field} has unsupported wire type {wire}")),
        }
    }

    /// Reads a field, checking its wire type.
    fn expect(&self, field: u32, wire: u32, want: u32) -> Result<(), String> {
        if wire == want {
            Ok(())
        } else {
            Err(format!(
                "field {field} has wire type {wire}, expected {want}"
            ))
        }
    }
}

fn utf8(bytes: &[u8], what: &str) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
}

fn decode_image(data: &[u8], tag: String) -> Result<Image, String> {
    let mut c = Cursor::new(data);
    let mut image = Image {
        tag,
        height: 0,
        width: 0,
        colorspace: 0,
        encoded: Vec::new(),
    };
    while let Some((field, wire)) = c.key()? {
        match field {
            1..=3 => {
                c.expect(field, wire, VARINT)?;
                // int32 is sign-extended to 64 bits on the wire; truncating gives it back.
                let v = c.varint()? as i64 as i32;
                match field {
                    1 => image.height = v,
                    2 => image.width = v,
                    _ => image.colorspace = v,
                }
            }
            4 => {
                c.expect(field, wire, LEN)?;
                image.encoded = c.len_delimited()?.to_vec();
            }
            _ => c.skip(field, wire)?,
        }
    }
    Ok(image)
}

fn decode_value(data: &[u8], event: &mut Event) -> Result<(), String> {
    let mut c = Cursor::new(data);
    let mut tag = String::new();
    let mut scalar = None;
    let mut image = None;
    while let Some((field, wire)) = c.key()? {
        match field {
            1 => {
                c.expect(field, wire, LEN)?;
                tag = utf8(c.len_delimited()?, "tag")?;
            }
            2 => {
                c.expect(field, wire, FIXED32)?;
                scalar = Some(f32::from_le_bytes(c.fixed32()?));
            }
            4 => {
                c.expect(field, wire, LEN)?;
                image = Some(c.len_delimited()?);
            }
            _ => c.skip(field, wire)?,
        }
    }
    if let Some(value) = scalar {
        event.scalars.push((tag.clone(), value));
    }
    if let Some(image) = image {
        event.images.push(decode_image(image, tag)?);
    }
    Ok(())
}

/// Decodes one event. Values of kinds other than scalars and images (histograms, tensors) are
/// skipped.
pub(crate) fn decode_event(data: &[u8]) -> Result<Event, String> {
    let mut c = Cursor::new(data);
    let mut event = Event::default();
    while let Some((field, wire)) = c.key()? {
        match field {
            1 => {
                c.expect(field, wire, FIXED64)?;
                event.wall_time = f64::from_le_bytes(c.fixed64()?);
            }
            2 => {
                c.expect(field, wire, VARINT)?;
                event.step = c.varint()? as i64;
            }
            3 => {
                c.expect(field, wire, LEN)?;
                event.file_version = Some(utf8(c.len_delimited()?, "file_version")?);
            }
            5 => {
                c.expect(field, wire, LEN)?;
                let mut summary = Cursor::new(c.len_delimited()?);
                while let Some((field, wire)) = summary.key()? {
                    if field == 1 {
                        summary.expect(field, wire, LEN)?;
                        decode_value(summary.len_delimited()?, &mut event)?;
                    } else {
                        summary.skip(field, wire)?;
                    }
                }
            }
            _ => c.skip(field, wire)?,
        }
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    #[test]
    fn varints() {
        assert_eq!(varint(0), [0x00]);
        assert_eq!(varint(1), [0x01]);
        assert_eq!(varint(127), [0x7f]);
        assert_eq!(varint(128), [0x80, 0x01]);
        assert_eq!(varint(300), [0xac, 0x02]);
        assert_eq!(varint(16_384), [0x80, 0x80, 0x01]);
        assert_eq!(
            varint(u64::MAX),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        // int64 -1 is the ten-byte varint of u64::MAX.
        assert_eq!(varint(-1i64 as u64).len(), 10);
        for v in [0, 1, 127, 128, 300, 1 << 35, u64::MAX - 1, u64::MAX] {
            let bytes = varint(v);
            let mut c = Cursor::new(&bytes);
            assert_eq!(c.varint().unwrap(), v);
            assert!(c.at_end());
        }
    }

    #[test]
    fn bad_varints_are_errors() {
        assert!(Cursor::new(&[0x80]).varint().is_err());
        assert!(Cursor::new(&[0xff; 11]).varint().is_err());
    }

    #[test]
    fn event_round_trip() {
        let png = [0x89, b'P', b'N', b'G', 1, 2, 3];
        let values = [
            Value::Scalar {
                tag: "a",
                value: 0.0,
            },
            Value::Scalar {
                tag: "b/c",
                value: -1.5e-7,
            },
            Value::Image {
                tag: "grid",
                height: 17,
                width: 33,
                colorspace: 3,
                encoded: &png,
            },
        ];
        let mut bytes = Vec::new();
        encode_event(&mut bytes, 1234.5, -42, &Payload::Summary(&values));
        let event = decode_event(&bytes).unwrap();
        assert_eq!(event.wall_time, 1234.5);
        assert_eq!(event.step, -42);
        assert_eq!(event.file_version, None);
        assert_eq!(
            event.scalars,
            [("a".to_string(), 0.0), ("b/c".to_string(), -1.5e-7)]
        );
        assert_eq!(
            event.images,
            [Image {
                tag: "grid".into(),
                height: 17,
                width: 33,
                colorspace: 3,
                encoded: png.to_vec(),
            }]
        );
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let mut bytes = Vec::new();
        encode_event(&mut bytes, 1.0, 3, &Payload::FileVersion("brain.Event:2"));
        // Field 9 varint, field 10 fixed32, field 11 bytes: not read, skipped.
        bytes.extend_from_slice(&[9 << 3, 5, (10 << 3) | 5, 1, 2, 3, 4, (11 << 3) | 2, 1, 0]);
        let event = decode_event(&bytes).unwrap();
        assert_eq!(event.step, 3);
        assert_eq!(event.file_version.as_deref(), Some("brain.Event:2"));
    }

    #[test]
    fn truncated_message_is_an_error() {
        let mut bytes = Vec::new();
        encode_event(&mut bytes, 1.0, 3, &Payload::FileVersion("brain.Event:2"));
        assert!(decode_event(&bytes[..bytes.len() - 1]).is_err());
    }
}
