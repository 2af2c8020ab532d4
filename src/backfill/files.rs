//! Local files a run writes: dead letters as JSON Lines (when no dead-letter queue is set) and
//! the resume state.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::ports::{Park, QueueError};

/// Dead-letter envelopes appended to a file, one JSON object per line: the same envelopes the
/// dead-letter queue would hold, so they can be put back on a queue as they are.
pub struct JsonlFile {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

impl JsonlFile {
    /// Opens lazily: a run with no dead letters leaves no file behind.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            file: Mutex::new(None),
        }
    }

    fn append(&self, bodies: &[String]) -> std::io::Result<()> {
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(OpenOptions::new().create(true).append(true).open(&self.path)?);
        }
        let Some(file) = guard.as_mut() else { return Ok(()) };
        let mut text = String::new();
        for body in bodies {
            text.push_str(body);
            text.push('\n');
        }
        file.write_all(text.as_bytes())?;
        file.sync_data()
    }
}

#[async_trait]
impl Park for JsonlFile {
    async fn park(&self, bodies: &[String]) -> Result<(), QueueError> {
        self.append(bodies).map_err(|e| QueueError {
            failed: bodies.len(),
            total: bodies.len(),
            reason: format!("cannot write {}: {e}", self.path.display()),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct Done<'a> {
    done: &'a str,
}

/// `--state FILE`: one `{"done":"<key>"}` line per finished object, appended and synced as
/// each finishes, so a killed run loses at most the objects it was working on.
pub(crate) struct StateFile {
    done: HashSet<String>,
    file: Mutex<File>,
}

impl StateFile {
    /// Reads the finished keys (a torn last line is ignored) and opens the file for appending.
    pub(crate) fn open(path: &Path) -> std::io::Result<Self> {
        let mut done = HashSet::new();
        let mut torn = false;
        if let Ok(existing) = File::open(path) {
            for line in BufReader::new(existing).split(b'\n') {
                let line = line?;
                match serde_json::from_slice::<Done<'_>>(&line) {
                    Ok(entry) => drop(done.insert(entry.done.to_owned())),
                    Err(_) => torn = !line.is_empty(),
                }
            }
        }
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        if torn {
            // End the torn line so the next entry starts on its own.
            file.write_all(b"\n")?;
        }
        Ok(Self {
            done,
            file: Mutex::new(file),
        })
    }

    pub(crate) fn is_done(&self, key: &str) -> bool {
        self.done.contains(key)
    }

    pub(crate) fn mark_done(&self, key: &str) -> std::io::Result<()> {
        let mut line = serde_json::to_string(&Done { done: key }).unwrap_or_default();
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(line.as_bytes())?;
        file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn state_survives_a_reopen_and_a_torn_line() {
        let dir = std::env::temp_dir().join(format!("backfill-state-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.jsonl");
        let state = StateFile::open(&path).unwrap();
        state.mark_done("a/1.avro").unwrap();
        drop(state);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"do")
            .unwrap();
        let state = StateFile::open(&path).unwrap();
        assert!(state.is_done("a/1.avro") && !state.is_done("a/2.avro"));
        state.mark_done("a/2.avro").unwrap();
        drop(state);
        assert!(StateFile::open(&path).unwrap().is_done("a/2.avro"));

        let failures = JsonlFile::new(dir.join("f.jsonl"));
        failures.park(&["{\"a\":1}".into(), "{\"b\":2}".into()]).await.unwrap();
        let text = std::fs::read_to_string(dir.join("f.jsonl")).unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"b\":2}\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
