//! Reading event files back: every event of a file ([`read_events`]), or the last step of each
//! tag in a directory ([`last_steps`]), which is what a resumed run needs.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use crate::record::RecordReader;
use crate::{proto, Error, Event, Result};

/// Calls `f` with each event of the file at `path`, in order.
fn for_each_event(path: &Path, mut f: impl FnMut(Event)) -> Result<()> {
    let file = File::open(path).map_err(|source| Error::Io {
        action: "opening",
        path: path.to_path_buf(),
        source,
    })?;
    let mut records = RecordReader::new(BufReader::new(file), path);
    loop {
        let start = records.offset();
        let Some(data) = records.next_record()? else {
            return Ok(());
        };
        let event = proto::decode_event(&data).map_err(|reason| records.corrupt(start, reason))?;
        f(event);
    }
}

/// Reads every event of the event file at `path`, in file order.
///
/// A record cut short at the end of the file (its writer was killed mid-write), or a tail of
/// zero bytes, is ignored; a record whose CRC does not match or whose event does not decode is
/// [`Error::Corrupt`].
pub fn read_events(path: &Path) -> Result<Vec<Event>> {
    let mut events = Vec::new();
    for_each_event(path, |event| events.push(event))?;
    Ok(events)
}

/// The event files in `dir`, sorted by name (the order TensorBoard reads them in): regular
/// files, not links, whose name contains `tfevents`. A missing directory has none.
pub(crate) fn event_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let io_error = |source| Error::Io {
        action: "listing",
        path: dir.to_path_buf(),
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error)?;
        if !entry.file_name().to_string_lossy().contains("tfevents") {
            continue;
        }
        // `DirEntry::file_type` does not follow links: a link is skipped.
        if entry.file_type().map_err(io_error)?.is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// For each tag written in `dir`'s event files, the largest step it was written at.
///
/// Reads every event file directly in `dir` (regular files whose name contains `tfevents`;
/// links and subdirectories, which TensorBoard shows as other runs, are not read). Scalar and
/// image tags count alike. A missing directory gives an empty map. Like [`read_events`], a
/// record cut short at the end of a file is ignored, so a writer killed mid-record leaves the
/// steps it completed; a corrupt record is an error, which a caller may answer by starting
/// afresh with [`crate::EventWriter::create`].
pub fn last_steps(dir: &Path) -> Result<BTreeMap<String, i64>> {
    let mut last = BTreeMap::<String, i64>::new();
    for path in event_files(dir)? {
        for_each_event(&path, |event| {
            let tags = event.scalars.into_iter().map(|(tag, _)| tag);
            for tag in tags.chain(event.images.into_iter().map(|image| image.tag)) {
                last.entry(tag)
                    .and_modify(|step| *step = (*step).max(event.step))
                    .or_insert(event.step);
            }
        })?;
    }
    Ok(last)
}
