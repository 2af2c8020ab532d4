//! One export object end to end: stream, decode, filter, map, deliver, dead-letter, count.
//! Decoding and mapping run on a blocking thread and hand chunks over a bounded channel, so an
//! object of any size holds at most a few chunks in memory.

use std::collections::BTreeMap;
use std::sync::Arc;

use std::io::{BufReader, Read};

use apache_avro::Reader;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::Context;
use super::avro::{event_type_from_schema, record_to_http};
use super::deliver::{deliver_messages, map_events};
use super::fast;
use super::key::parse_key;
use super::source::ObjectReader;
use super::summary::{FileReport, bump};
use crate::config::RouteId;
use crate::keycheck::Plan;
use crate::park::{DeadLetterReason, Envelope, dead_letter_events, pack_messages};
use crate::transform::Mapped;

/// Records mapped and sent together: a few Segment batches' worth.
pub(crate) const CHUNK_RECORDS: usize = 2_000;

/// Chunks buffered between the decoder and the sender, per object.
const CHUNKS_IN_FLIGHT: usize = 2;

/// What the decoder hands the sender.
enum Piece {
    EventType(String),
    Chunk(Chunk),
    Failed(String),
}

/// Mapped records of one chunk; `records` counts every decoded record in it.
struct Chunk {
    records: u64,
    skipped: BTreeMap<String, u64>,
    messages: Vec<Mapped>,
    /// Dead-letter envelopes for the invalid events, and how many events they hold.
    dead: Vec<String>,
    invalid: u64,
}

/// Processes the object at `key`; never fails as a whole: the report says what happened.
pub(crate) async fn process_object(ctx: Arc<Context>, key: String) -> FileReport {
    let mut report = FileReport::new(&key);
    report.event_type = parse_key(&key).event_type.unwrap_or_default().to_owned();
    let reader = match ctx.source.open(&key).await {
        Ok(reader) => reader,
        Err(error) => {
            report.error = Some(error.to_string());
            return report;
        }
    };
    let (sender, mut receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let hint = parse_key(&key).event_type.map(str::to_owned);
    let decoder = {
        let ctx = ctx.clone();
        tokio::task::spawn_blocking(move || decode(reader, hint, &ctx, &sender))
    };
    while let Some(piece) = receiver.recv().await {
        match piece {
            Piece::EventType(event_type) => report.event_type = event_type,
            Piece::Failed(error) => report.error = Some(error),
            Piece::Chunk(chunk) => {
                ctx.progress.records(chunk.records);
                if !settle(&ctx, chunk, &mut report).await {
                    break;
                }
            }
        }
    }
    // Dropping the receiver stops a decoder that is still going.
    drop(receiver);
    if let Err(error) = decoder.await {
        report.error.get_or_insert_with(|| format!("decoder stopped: {error}"));
    }
    report
}

/// Decodes with the schema embedded in the file and sends mapped chunks until the end, a
/// corrupt block, or the sender going away.
fn decode(reader: ObjectReader, hint: Option<String>, ctx: &Context, sender: &mpsc::Sender<Piece>) {
    let fail = |error: String| drop(sender.blocking_send(Piece::Failed(error)));
    let (container, header) = match fast::open(BufReader::with_capacity(256 * 1024, reader)) {
        Ok(opened) => opened,
        Err(error) => return fail(format!("not a readable Avro file: {error}")),
    };
    let Some(event_type) = hint.or_else(|| event_type_from_schema(&container.schema)) else {
        return fail("no event_type= in the key and the schema is not a named record".to_owned());
    };
    if sender.blocking_send(Piece::EventType(event_type.clone())).is_err() || !ctx.filter.wants_type(&event_type) {
        return;
    }
    let mut pending = Pending::new(ctx.clock.now());
    let outcome = match fast::Plan::new(&container.schema, &event_type) {
        Some(plan) => decode_fast(container, &plan, ctx, sender, &mut pending).map_err(|e| e.to_string()),
        None => {
            let rest = std::io::Cursor::new(header).chain(container.into_inner());
            decode_generic(rest, &event_type, ctx, sender, &mut pending)
        }
    };
    let read = pending.total + pending.records;
    match outcome {
        Ok(true) => drop(pending.flush(ctx, sender)),
        Ok(false) => {}
        Err(error) => {
            if pending.flush(ctx, sender) {
                fail(format!("corrupt or truncated after {read} records: {error}"));
            }
        }
    }
}

/// The direct decoder. `Ok(false)` when the sender went away.
fn decode_fast(
    mut container: fast::Container<impl Read>,
    plan: &fast::Plan,
    ctx: &Context,
    sender: &mpsc::Sender<Piece>,
    pending: &mut Pending,
) -> Result<bool, fast::FastError> {
    let (mut block, mut scratch) = (Vec::new(), fast::Scratch::default());
    while let Some(count) = container.next_block(&mut block)? {
        let mut cursor = fast::Cursor::new(&block);
        for _ in 0..count {
            let mark = pending.start_event();
            let time = fast::write_record(plan, &mut cursor, &mut scratch, &mut pending.body).inspect_err(|_| {
                pending.body.truncate(mark);
            })?;
            pending.end_event(mark, time, &ctx.filter);
            if pending.full() && !pending.flush(ctx, sender) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// `apache_avro::Reader`, for schemas the direct decoder does not cover.
fn decode_generic(
    rest: impl Read,
    event_type: &str,
    ctx: &Context,
    sender: &mpsc::Sender<Piece>,
    pending: &mut Pending,
) -> Result<bool, String> {
    let avro = Reader::new(rest).map_err(|e| e.to_string())?;
    for item in avro {
        let value = item.map_err(|e| e.to_string())?;
        let mark = pending.start_event();
        match record_to_http(event_type, value) {
            Some(record) => {
                pending.body.extend_from_slice(record.json.as_bytes());
                pending.end_event(mark, record.time, &ctx.filter);
            }
            None => {
                pending.body.truncate(mark);
                pending.records += 1;
                bump(&mut pending.skipped, "not_a_record", 1);
            }
        }
        if pending.full() && !pending.flush(ctx, sender) {
            return Ok(false);
        }
    }
    Ok(true)
}

const BODY_HEAD: &[u8] = b"{\"events\":[";

/// Records decoded since the last chunk, as a Currents request body under construction.
struct Pending {
    now: OffsetDateTime,
    /// Records in earlier chunks of this file.
    total: u64,
    records: u64,
    events: usize,
    skipped: BTreeMap<String, u64>,
    body: Vec<u8>,
}

impl Pending {
    fn new(now: OffsetDateTime) -> Self {
        Self {
            now,
            total: 0,
            records: 0,
            events: 0,
            skipped: BTreeMap::new(),
            body: BODY_HEAD.to_vec(),
        }
    }

    /// Where the next event starts; the separator is written already.
    fn start_event(&mut self) -> usize {
        let mark = self.body.len();
        if self.events > 0 {
            self.body.push(b',');
        }
        mark
    }

    /// Keeps the event written since `mark`, or drops it when its `time` is outside the run.
    fn end_event(&mut self, mark: usize, time: Option<i64>, filter: &super::key::KeyFilter) {
        self.records += 1;
        if time.is_some_and(|t| !filter.wants_time(t)) {
            self.body.truncate(mark);
            bump(&mut self.skipped, "outside_time_window", 1);
        } else {
            self.events += 1;
        }
    }

    fn full(&self) -> bool {
        self.records as usize >= CHUNK_RECORDS
    }

    /// Maps and sends what is pending; `false` when the sender went away.
    fn flush(&mut self, ctx: &Context, sender: &mpsc::Sender<Piece>) -> bool {
        if self.records == 0 {
            return true;
        }
        self.body.extend_from_slice(b"]}");
        let chunk = self.map(ctx);
        self.total += self.records;
        self.records = 0;
        self.events = 0;
        self.body.clear();
        self.body.extend_from_slice(BODY_HEAD);
        sender.blocking_send(Piece::Chunk(chunk)).is_ok()
    }

    /// Runs the HTTP path's transform over the body and keeps owned results.
    fn map(&mut self, ctx: &Context) -> Chunk {
        let mut skipped = std::mem::take(&mut self.skipped);
        let Ok(transformed) = map_events(&self.body, &ctx.config.routing, ctx.route) else {
            // The body is built from well-formed JSON; count the records, should it ever not be.
            bump(&mut skipped, "not_a_record", self.events as u64);
            return Chunk {
                records: self.records,
                skipped,
                messages: Vec::new(),
                dead: Vec::new(),
                invalid: 0,
            };
        };
        for s in &transformed.skipped {
            bump(&mut skipped, s.reason.as_str(), 1);
        }
        let max_bytes = ctx.config.queues.park_message_max_bytes;
        let mut dead = Vec::new();
        for invalid in &transformed.invalid {
            let template = Envelope::new(&ctx.run.route, self.now, 0, &invalid.error.to_string());
            dead.extend(dead_letter_events(&template, &[invalid.raw], max_bytes));
        }
        Chunk {
            records: self.records,
            skipped,
            invalid: transformed.invalid.len() as u64,
            dead,
            messages: transformed.messages,
        }
    }
}

/// Counts, dead-letters and delivers one chunk. `false` when the file must stop here.
async fn settle(ctx: &Context, chunk: Chunk, report: &mut FileReport) -> bool {
    report.records += chunk.records;
    for (reason, n) in &chunk.skipped {
        bump(&mut report.skipped, reason, *n);
    }
    if chunk.invalid > 0 {
        if !park_dead(ctx, &chunk.dead, report).await {
            return false;
        }
        tracing::error!(key = %report.key, events = chunk.invalid, "Invalid events dead-lettered.");
        bump(
            &mut report.dead_lettered,
            DeadLetterReason::InvalidEvent.as_str(),
            chunk.invalid,
        );
    }
    if ctx.run.dry_run {
        report.delivered += chunk.messages.len() as u64;
        let room = ctx.samples.saturating_sub(report.samples.len());
        report
            .samples
            .extend(chunk.messages.iter().take(room).map(|m| m.json.clone()));
        return true;
    }
    for (route, messages) in crate::settle::group_by_route(&chunk.messages) {
        if !send_route(ctx, route, &messages, report).await {
            return false;
        }
    }
    true
}

/// Delivers one route's messages; dead-letters what Segment refuses for good.
/// A route whose key turns bad mid-run (a verdict is at most its interval old) stops the file
/// with the hold's reason, so it is retried by the next run.
async fn send_route(ctx: &Context, route: RouteId, messages: &[&str], report: &mut FileReport) -> bool {
    let config = ctx.config.routing.route(route);
    let Some(targets) = &ctx.targets else {
        report.error = Some(format!("no Segment write key for route `{}`", config.name));
        return false;
    };
    let target = match ctx.key_health.plan_one(route, &ctx.config.routing, targets).await {
        Plan::Send(target) => target,
        Plan::Hold(hold) => {
            report.error = Some(hold.last_error(&config.name));
            return false;
        }
    };
    let sent = deliver_messages(&*ctx.segment, &*ctx.clock, &target, messages, &ctx.policy).await;
    report.delivered += sent.delivered as u64;
    let now = ctx.clock.now();
    let route_name = &ctx.config.routing.route(route).name;
    for (batch, attempts, last_error) in &sent.refused {
        let template = Envelope::new(route_name, now, *attempts, last_error).dead(DeadLetterReason::PermanentFailure);
        let envelopes = pack_messages(&template, batch, ctx.config.queues.park_message_max_bytes);
        if !park_dead(ctx, &envelopes, report).await {
            return false;
        }
        tracing::error!(key = %report.key, messages = batch.len(), error = %last_error,
            "Segment refused a batch permanently; dead-lettered.");
        let reason = DeadLetterReason::PermanentFailure.as_str();
        bump(&mut report.dead_lettered, reason, batch.len() as u64);
    }
    if let Some((count, error)) = sent.unsent {
        report.error = Some(format!(
            "Segment still failing after retries ({count} messages unsent): {error}"
        ));
        return false;
    }
    true
}

async fn park_dead(ctx: &Context, envelopes: &[String], report: &mut FileReport) -> bool {
    let Some(queue) = &ctx.dead_letters else { return true };
    if envelopes.is_empty() {
        return true;
    }
    match queue.park(envelopes).await {
        Ok(()) => true,
        Err(error) => {
            report.error = Some(format!("cannot store dead letters: {error}"));
            false
        }
    }
}
