//! Running backfills in tests: options from a command line, Segment stand-ins that record or
//! hang, and a run killed midway.
#![allow(dead_code)]

use std::collections::HashMap;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use clap::Parser;
use currents_segment::backfill::{Backfill, BackfillOptions, run};
use currents_segment::config::SegmentTarget;
use currents_segment::ports::{AttemptError, Deliver};
use serde_json::Value;

use super::common::ScriptedSegment;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    options: BackfillOptions,
}

pub fn options(source: &Path, extra: &[&str]) -> BackfillOptions {
    options_for(&source.display().to_string(), extra)
}

/// Options for any SOURCE (a folder or `s3://…`), with a rate cap tests never hit.
pub fn options_for(source: &str, extra: &[&str]) -> BackfillOptions {
    let mut args = vec!["backfill".to_owned(), source.to_owned()];
    args.extend(["--max-rps", "100000"].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    Cli::parse_from(args).options
}

/// Every message a scripted Segment received, by `messageId`.
pub fn sent_by_id(segment: &ScriptedSegment) -> HashMap<String, Value> {
    let bodies = segment.bodies.lock().unwrap();
    bodies
        .iter()
        .flat_map(|b| b["batch"].as_array().unwrap().clone())
        .map(|m| (m["messageId"].as_str().unwrap().to_owned(), m))
        .collect()
}

/// A Segment stand-in that hangs after `limit` requests, as a process about to be killed.
struct HangAfter {
    inner: Arc<ScriptedSegment>,
    limit: usize,
    seen: AtomicUsize,
    reached: tokio::sync::Notify,
}

#[async_trait]
impl Deliver for HangAfter {
    async fn deliver(&self, target: &SegmentTarget, body: Vec<u8>, timeout: Duration) -> Result<(), AttemptError> {
        if self.seen.fetch_add(1, Ordering::SeqCst) >= self.limit {
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
        self.inner.deliver(target, body, timeout).await
    }
}

/// Kills a run (drops it) once Segment has taken `limit` requests; returns the ids sent.
pub async fn killed_run(
    options: &BackfillOptions,
    deps: Backfill,
    segment: Arc<ScriptedSegment>,
    limit: usize,
) -> Vec<String> {
    let hang = Arc::new(HangAfter {
        inner: segment.clone(),
        limit,
        seen: AtomicUsize::new(0),
        reached: tokio::sync::Notify::new(),
    });
    let deps = Backfill {
        segment: hang.clone(),
        ..deps
    };
    tokio::select! {
        result = run(options, deps) => panic!("the run finished before it was killed: {:?}", result.map(|s| s.render())),
        () = hang.reached.notified() => {}
    }
    segment.delivered_ids()
}

/// A temporary folder of files, removed when dropped.
pub struct TempTree(PathBuf);

impl Deref for TempTree {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `files` (relative key, bytes) under a fresh temporary folder.
pub fn tree(files: &[(String, Vec<u8>)]) -> TempTree {
    let root = std::env::temp_dir().join(format!("backfill-test-{}", fastrand::u64(..)));
    for (key, bytes) in files {
        let path = root.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    TempTree(root)
}
