//! [`EventWriter`]: one new event file per writer, scalars and PNG images at steps, and resume.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::proto::{self, Payload, Value};
use crate::reader::{event_files, last_steps};
use crate::record::frame;
use crate::{Error, Result};

/// The file version TensorBoard expects on the first event of a file.
const FILE_VERSION: &str = "brain.Event:2";

/// Numbers the files this process creates, so two writers in one second get different names.
static FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes one TensorBoard event file.
///
/// Each `add_*` call writes one event at a step. Steps must increase per tag: an `add_*` whose
/// step is at or below the last step already written for its tag (by this writer or, after
/// [`EventWriter::resume`], by earlier writers in the directory) is dropped silently and returns
/// `Ok(false)`. A resumed run may therefore replay steps it had already logged before it was
/// stopped, and a tag never shows a repeated or backward step. Different tags are independent:
/// per-step and per-epoch tags may count in different units.
///
/// Events are buffered: [`EventWriter::flush`] makes them visible to TensorBoard (call it every
/// epoch or so); dropping the writer flushes too, ignoring errors.
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
    /// Last step written per tag; an event at or below it is dropped.
    last: BTreeMap<String, i64>,
}

/// Seconds since the Unix epoch (0 if the clock is before it).
fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// This machine's name, with characters other than ASCII letters, digits, `-`, `_` and `.`
/// replaced by `_`, so it is safe in a file name.
fn hostname() -> String {
    let mut name = String::from("localhost");
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for `buf.len()` bytes; gethostname writes at most that.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            if end > 0 {
                name = String::from_utf8_lossy(&buf[..end]).into_owned();
            }
        }
    }
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `events.out.tfevents.<unix seconds>.<host>.<pid>.<counter>`.
fn file_name(secs: u64, host: &str, counter: u64) -> String {
    format!(
        "events.out.tfevents.{secs}.{host}.{}.{counter}",
        std::process::id()
    )
}

/// Checks a PNG's signature and header against the size and channels given for it, and returns
/// `(height, width, colorspace)` as stored.
fn check_png(
    tag: &str,
    png: &[u8],
    width: u32,
    height: u32,
    channels: u8,
) -> Result<(i32, i32, i32)> {
    let fail = |reason: String| Error::Image {
        tag: tag.to_owned(),
        reason,
    };
    if !(1..=4).contains(&channels) {
        return Err(fail(format!("{channels} channels; 1 to 4 expected")));
    }
    const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    if png.len() < 29 || png[..8] != SIGNATURE || &png[12..16] != b"IHDR" {
        return Err(fail("not a PNG (no signature and IHDR header)".into()));
    }
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().expect("four bytes"));
    let (png_width, png_height) = (be(16), be(20));
    if (png_width, png_height) != (width, height) {
        return Err(fail(format!(
            "the PNG is {png_width}x{png_height}, but {width}x{height} was given"
        )));
    }
    // Colour types: 0 grey, 2 RGB, 3 palette (3 or 4 channels), 4 grey and alpha, 6 RGBA.
    let png_channels: &[u8] = match png[25] {
        0 => &[1],
        2 => &[3],
        3 => &[3, 4],
        4 => &[2],
        6 => &[4],
        other => return Err(fail(format!("PNG colour type {other} is not valid"))),
    };
    if !png_channels.contains(&channels) {
        return Err(fail(format!(
            "{channels} channels given, but the PNG has colour type {}",
            png[25]
        )));
    }
    let dim = |v: u32| i32::try_from(v).map_err(|_| fail(format!("size {v} too large")));
    Ok((dim(height)?, dim(width)?, i32::from(channels)))
}

impl EventWriter {
    /// Creates a new event file in `dir` (and `dir` itself if missing) and writes its first
    /// event, the file version. Nothing written before in `dir` limits the steps of this
    /// writer; see [`EventWriter::resume`] to continue a run.
    ///
    /// The file is named `events.out.tfevents.<unix seconds>.<host>.<pid>.<counter>` and
    /// created with `create_new`: an existing file or link of that name is an error, never
    /// written through. TensorBoard reads a directory's files in name order, so when an event
    /// file already in `dir` was created in this same second and would sort after the new name,
    /// this waits for the next second (at most once) so that the new file sorts last.
    pub fn create(dir: &Path) -> Result<EventWriter> {
        Self::open(dir, BTreeMap::new())
    }

    /// Like [`EventWriter::create`], but continues the run in `dir`: the last step of each tag
    /// already written there ([`last_steps`](crate::last_steps)) is taken over, so any `add_*`
    /// at or below it is dropped. A resumed trainer can log from wherever its checkpoint puts
    /// it; TensorBoard's curves continue without a repeated or backward step. A record a killed
    /// writer cut short is ignored; a corrupt event file is an error.
    pub fn resume(dir: &Path) -> Result<EventWriter> {
        let last = last_steps(dir)?;
        Self::open(dir, last)
    }

    fn open(dir: &Path, last: BTreeMap<String, i64>) -> Result<EventWriter> {
        fs::create_dir_all(dir).map_err(|source| Error::Io {
            action: "creating directory",
            path: dir.to_path_buf(),
            source,
        })?;
        let last_existing = event_files(dir)?
            .into_iter()
            .filter_map(|path| Some(path.file_name()?.to_string_lossy().into_owned()))
            .max();
        let host = hostname();
        let counter = FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut secs = now().as_secs();
        let mut name = file_name(secs, &host, counter);
        if let Some(existing) = &last_existing {
            if *existing >= name && existing.starts_with(&format!("events.out.tfevents.{secs}.")) {
                std::thread::sleep(Duration::from_secs(secs + 1).saturating_sub(now()));
                secs = now().as_secs().max(secs + 1);
                name = file_name(secs, &host, counter);
            }
        }
        let path = dir.join(name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| Error::Io {
                action: "creating",
                path: path.clone(),
                source,
            })?;
        let mut writer = EventWriter {
            path,
            out: BufWriter::new(file),
            last,
        };
        writer.write_event(0, &Payload::FileVersion(FILE_VERSION))?;
        writer.flush()?;
        Ok(writer)
    }

    /// The event file this writer writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last step written for `tag` (by this writer or, after [`EventWriter::resume`],
    /// before it), if any; `add_*` calls at or below it are dropped.
    pub fn last_step(&self, tag: &str) -> Option<i64> {
        self.last.get(tag).copied()
    }

    /// Whether `tag` may be written at `step`; if so, records `step` as its last step.
    fn accept(&mut self, tag: &str, step: i64) -> bool {
        match self.last.get_mut(tag) {
            Some(last) if step <= *last => false,
            Some(last) => {
                *last = step;
                true
            }
            None => {
                self.last.insert(tag.to_owned(), step);
                true
            }
        }
    }

    fn write_event(&mut self, step: i64, payload: &Payload<'_>) -> Result<()> {
        let mut event = Vec::new();
        proto::encode_event(&mut event, now().as_secs_f64(), step, payload);
        let mut record = Vec::with_capacity(event.len() + 16);
        frame(&mut record, &event);
        self.out.write_all(&record).map_err(|source| Error::Io {
            action: "writing",
            path: self.path.clone(),
            source,
        })
    }

    /// Writes scalar `value` for `tag` at `step` (stored as `f32`, TensorBoard's
    /// `simple_value`). Returns `Ok(false)`, writing nothing, when `step` is at or below the
    /// tag's last step.
    pub fn add_scalar(&mut self, tag: &str, value: f64, step: i64) -> Result<bool> {
        if !self.accept(tag, step) {
            return Ok(false);
        }
        let values = [Value::Scalar {
            tag,
            value: value as f32,
        }];
        self.write_event(step, &Payload::Summary(&values))?;
        Ok(true)
    }

    /// Writes several scalars at one `step`, as one event. Each `(tag, value)` follows the rule
    /// of [`EventWriter::add_scalar`]: one at or below its tag's last step is left out, as is a
    /// repeated tag. Returns how many were written (no event at all when none is).
    ///
    /// Unlike PyTorch's `SummaryWriter.add_scalars`, which makes a run per tag, these are
    /// ordinary tags of this run.
    pub fn add_scalars(&mut self, scalars: &[(&str, f64)], step: i64) -> Result<usize> {
        let mut values = Vec::with_capacity(scalars.len());
        for &(tag, value) in scalars {
            if self.accept(tag, step) {
                values.push(Value::Scalar {
                    tag,
                    value: value as f32,
                });
            }
        }
        if !values.is_empty() {
            self.write_event(step, &Payload::Summary(&values))?;
        }
        Ok(values.len())
    }

    /// Writes a PNG image for `tag` at `step`. `width`, `height` and `channels` (1 grey,
    /// 2 grey and alpha, 3 RGB, 4 RGBA) describe it; they are checked against the PNG's header,
    /// and a mismatch (or bytes that are not a PNG) is [`Error::Image`]. Returns `Ok(false)`,
    /// writing nothing, when `step` is at or below the tag's last step.
    pub fn add_image_png(
        &mut self,
        tag: &str,
        png_bytes: &[u8],
        width: u32,
        height: u32,
        channels: u8,
        step: i64,
    ) -> Result<bool> {
        let (height, width, colorspace) = check_png(tag, png_bytes, width, height, channels)?;
        if !self.accept(tag, step) {
            return Ok(false);
        }
        let values = [Value::Image {
            tag,
            height,
            width,
            colorspace,
            encoded: png_bytes,
        }];
        self.write_event(step, &Payload::Summary(&values))?;
        Ok(true)
    }

    /// Writes buffered events to the file, where TensorBoard sees them.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|source| Error::Io {
            action: "writing",
            path: self.path.clone(),
            source,
        })
    }
}

impl Drop for EventWriter {
    /// Flushes buffered events; an error is ignored (call [`EventWriter::flush`] to see it).
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{last_steps, read_events, Event};

    /// A `width`x`height` PNG of `channels` channels, pixel values from their position.
    fn png(width: u32, height: u32, channels: u8) -> Vec<u8> {
        let color = match channels {
            1 => png::ColorType::Grayscale,
            2 => png::ColorType::GrayscaleAlpha,
            3 => png::ColorType::Rgb,
            _ => png::ColorType::Rgba,
        };
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        let n = (width * height) as usize * channels as usize;
        let data: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
        writer.write_image_data(&data).unwrap();
        writer.finish().unwrap();
        out
    }

    fn scalars(events: &[Event], tag: &str) -> Vec<(i64, f32)> {
        events
            .iter()
            .flat_map(|e| {
                e.scalars
                    .iter()
                    .filter(|(t, _)| t == tag)
                    .map(move |&(_, v)| (e.step, v))
            })
            .collect()
    }

    /// Every event of every event file in `dir`, files in name order.
    fn all_events(dir: &Path) -> Vec<Event> {
        event_files(dir)
            .unwrap()
            .iter()
            .flat_map(|path| read_events(path).unwrap())
            .collect()
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("runs/a");
        let before = now().as_secs_f64();
        let mut writer = EventWriter::create(&run).unwrap();
        assert!(writer.add_scalar("loss", 0.5, 0).unwrap());
        assert!(writer.add_scalar("loss", 0.25, 1).unwrap());
        assert_eq!(
            writer
                .add_scalars(&[("train/objective", 1.0), ("test/objective", -2.0)], 1)
                .unwrap(),
            2
        );
        let image = png(5, 3, 3);
        assert!(writer.add_image_png("grid", &image, 5, 3, 3, 1).unwrap());
        let path = writer.path().to_path_buf();
        drop(writer);
        let after = now().as_secs_f64();

        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("events.out.tfevents."), "{name}");
        assert!(
            name.contains(&format!(".{}.", std::process::id())),
            "{name}"
        );
        let events = read_events(&path).unwrap();
        assert_eq!(events.len(), 5);
        assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
        assert!(events
            .iter()
            .all(|e| (before..=after).contains(&e.wall_time)));
        assert_eq!(scalars(&events, "loss"), [(0, 0.5), (1, 0.25)]);
        assert_eq!(
            events[3].scalars,
            [
                ("train/objective".into(), 1.0),
                ("test/objective".into(), -2.0)
            ]
        );
        let images = &events[4].images;
        assert_eq!(images.len(), 1);
        assert_eq!(
            (
                images[0].tag.as_str(),
                images[0].width,
                images[0].height,
                images[0].colorspace
            ),
            ("grid", 5, 3, 3)
        );
        assert_eq!(images[0].encoded, image);
        assert_eq!(events[4].step, 1);
    }

    #[test]
    fn steps_increase_per_tag() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = EventWriter::create(dir.path()).unwrap();
        assert!(writer.add_scalar("a", 1.0, 5).unwrap());
        assert!(!writer.add_scalar("a", 2.0, 5).unwrap());
        assert!(!writer.add_scalar("a", 3.0, 4).unwrap());
        // Another tag has its own steps.
        assert!(writer.add_scalar("b", 4.0, 0).unwrap());
        // A repeated tag in one call is written once; a stale one is left out.
        assert_eq!(
            writer
                .add_scalars(&[("a", 5.0), ("a", 6.0), ("b", 7.0)], 6)
                .unwrap(),
            2
        );
        assert_eq!(writer.add_scalars(&[("a", 8.0)], 6).unwrap(), 0);
        assert_eq!(writer.last_step("a"), Some(6));
        assert_eq!(writer.last_step("c"), None);
        writer.flush().unwrap();
        let events = read_events(writer.path()).unwrap();
        assert_eq!(
            events.len(),
            4,
            "version, a@5, b@0, a+b@6; nothing for the dropped calls"
        );
        assert_eq!(scalars(&events, "a"), [(5, 1.0), (6, 5.0)]);
        assert_eq!(scalars(&events, "b"), [(0, 4.0), (6, 7.0)]);
    }

    #[test]
    fn truncated_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = EventWriter::create(dir.path()).unwrap();
        for step in 0..10 {
            writer.add_scalar("loss", step as f64, step).unwrap();
        }
        let path = writer.path().to_path_buf();
        drop(writer);
        let len = fs::metadata(&path).unwrap().len();
        // A writer killed mid-record: the last record loses its last 3 bytes.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len - 3).unwrap();
        let events = read_events(&path).unwrap();
        assert_eq!(scalars(&events, "loss").last(), Some(&(8, 8.0)));
        assert_eq!(
            last_steps(dir.path()).unwrap(),
            BTreeMap::from([("loss".to_string(), 8)])
        );
    }

    #[test]
    fn resume_drops_steps_already_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = EventWriter::create(dir.path()).unwrap();
        for step in 0..10 {
            first
                .add_scalar("step/objective", step as f64, step)
                .unwrap();
        }
        first.add_scalar("epoch/objective", 0.5, 1).unwrap();
        first
            .add_image_png("grid", &png(2, 2, 1), 2, 2, 1, 1)
            .unwrap();
        // Killed mid-record at step 10: that record is lost.
        first.add_scalar("step/objective", 10.0, 10).unwrap();
        first.flush().unwrap();
        let first_path = first.path().to_path_buf();
        std::mem::forget(first);
        let len = fs::metadata(&first_path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&first_path)
            .unwrap()
            .set_len(len - 5)
            .unwrap();

        let expected = BTreeMap::from([
            ("epoch/objective".to_string(), 1),
            ("grid".to_string(), 1),
            ("step/objective".to_string(), 9),
        ]);
        assert_eq!(last_steps(dir.path()).unwrap(), expected);

        // The checkpoint was from step 6: the resumed trainer replays steps 7..=12.
        let mut resumed = EventWriter::resume(dir.path()).unwrap();
        assert_ne!(resumed.path(), first_path);
        assert_eq!(resumed.last_step("step/objective"), Some(9));
        for step in 7..=12 {
            let written = resumed
                .add_scalar("step/objective", 100.0 + step as f64, step)
                .unwrap();
            assert_eq!(written, step >= 10, "step {step}");
        }
        assert!(!resumed.add_scalar("epoch/objective", 0.75, 1).unwrap());
        assert!(resumed.add_scalar("epoch/objective", 0.75, 2).unwrap());
        assert!(!resumed
            .add_image_png("grid", &png(2, 2, 1), 2, 2, 1, 1)
            .unwrap());
        let resumed_path = resumed.path().to_path_buf();
        drop(resumed);

        // Read in TensorBoard's order (file names), each tag's steps strictly increase.
        let events = all_events(dir.path());
        let steps: Vec<i64> = scalars(&events, "step/objective")
            .iter()
            .map(|&(s, _)| s)
            .collect();
        assert_eq!(steps, (0..=12).collect::<Vec<_>>());
        assert_eq!(scalars(&events, "step/objective")[10], (10, 110.0));
        assert_eq!(scalars(&events, "epoch/objective"), [(1, 0.5), (2, 0.75)]);
        assert_eq!(event_files(dir.path()).unwrap(), [first_path, resumed_path]);
    }

    #[test]
    fn last_steps_reads_only_event_files_in_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(last_steps(&dir.path().join("missing")).unwrap().is_empty());
        EventWriter::create(&dir.path().join("sub"))
            .unwrap()
            .add_scalar("sub", 1.0, 3)
            .unwrap();
        fs::write(dir.path().join("notes.txt"), b"not an event file").unwrap();
        let mut writer = EventWriter::create(dir.path()).unwrap();
        writer.add_scalar("top", 1.0, 4).unwrap();
        drop(writer);
        #[cfg(unix)]
        std::os::unix::fs::symlink(
            event_files(&dir.path().join("sub")).unwrap()[0].clone(),
            dir.path().join("events.out.tfevents.link"),
        )
        .unwrap();
        assert_eq!(
            last_steps(dir.path()).unwrap(),
            BTreeMap::from([("top".to_string(), 4)])
        );
    }

    #[test]
    fn corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = EventWriter::create(dir.path()).unwrap();
        writer.add_scalar("loss", 1.0, 1).unwrap();
        let path = writer.path().to_path_buf();
        drop(writer);
        let mut bytes = fs::read(&path).unwrap();
        bytes[20] ^= 0x40;
        fs::write(&path, bytes).unwrap();
        assert!(matches!(
            read_events(&path),
            Err(Error::Corrupt { offset: 0, .. })
        ));
        assert!(matches!(
            EventWriter::resume(dir.path()),
            Err(Error::Corrupt { .. })
        ));
    }

    #[test]
    fn images_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = EventWriter::create(dir.path()).unwrap();
        let rgba = png(4, 2, 4);
        for channels in 1..=4 {
            let image = png(3, 2, channels);
            assert!(writer
                .add_image_png(&format!("c{channels}"), &image, 3, 2, channels, 0)
                .unwrap());
        }
        let error = |result: Result<bool>| match result {
            Err(Error::Image { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        let reason = error(writer.add_image_png("x", &rgba, 2, 4, 4, 0));
        assert!(reason.contains("4x2"), "{reason}");
        let reason = error(writer.add_image_png("x", &rgba, 4, 2, 3, 0));
        assert!(reason.contains("colour type 6"), "{reason}");
        let reason = error(writer.add_image_png("x", &rgba, 4, 2, 5, 0));
        assert!(reason.contains("5 channels"), "{reason}");
        let reason =
            error(writer.add_image_png("x", b"GIF89a and then some more bytes", 4, 2, 4, 0));
        assert!(reason.contains("not a PNG"), "{reason}");
        // Nothing rejected was recorded as a step.
        assert_eq!(writer.last_step("x"), None);
    }

    #[test]
    fn names_sort_after_files_of_the_same_second() {
        let dir = tempfile::tempdir().unwrap();
        let secs = now().as_secs();
        // Another host's file from this second that sorts after this host's name.
        let planted = dir
            .path()
            .join(format!("events.out.tfevents.{secs}.~zz.1.0"));
        fs::write(&planted, b"").unwrap();
        let writer = EventWriter::create(dir.path()).unwrap();
        assert!(writer.path() > planted.as_path(), "{:?}", writer.path());
        assert_eq!(
            event_files(dir.path()).unwrap().last().unwrap(),
            writer.path()
        );
    }

    #[test]
    fn hostname_is_safe_in_a_file_name() {
        let host = hostname();
        assert!(!host.is_empty());
        assert!(
            host.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "{host}"
        );
    }
}
