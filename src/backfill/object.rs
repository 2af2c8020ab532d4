//! One export object end to end: stream, decode, filter, map, deliver, dead-letter, count.
//! Decoding and mapping run on a blocking thread and hand chunks over a bounded channel, so an
//! object of any size holds at most a few chunks in memory.

use std::collections::BTreeMap;
use std::sync::Arc;

use apache_avro::Reader;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::Context;
use super::avro::{event_type_from_schema, record_to_http};
use super::deliver::{deliver_messages, map_events};
use super::key::parse_key;
use super::source::ObjectReader;
use super::summary::{FileReport, bump};
use crate::config::RouteId;
use crate::park::{DeadLetterReason, Envelope, dead_letter_events, pack_messages};
use crate::transform::Mapped;

/// Records mapped and sent together: a few Segment batches' worth.
pub const CHUNK_RECORDS: usize = 2_000;

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
    let avro = match Reader::new(reader) {
        Ok(avro) => avro,
        Err(error) => {
            let _ = sender.blocking_send(Piece::Failed(format!("not a readable Avro file: {error}")));
            return;
        }
    };
    let Some(event_type) = hint.or_else(|| event_type_from_schema(avro.writer_schema())) else {
        let error = "no event_type= in the key and the schema is not a named record";
        let _ = sender.blocking_send(Piece::Failed(error.to_owned()));
        return;
    };
    if sender.blocking_send(Piece::EventType(event_type.clone())).is_err() || !ctx.filter.wants_type(&event_type) {
        return;
    }
    let now = ctx.clock.now();
    let mut pending = Pending::default();
    for item in avro {
        let value = match item {
            Ok(value) => value,
            Err(error) => {
                let read = pending.total + pending.records;
                let _ = sender.blocking_send(Piece::Chunk(pending.map(ctx, now)));
                let error = format!("corrupt or truncated after {read} records: {error}");
                let _ = sender.blocking_send(Piece::Failed(error));
                return;
            }
        };
        pending.records += 1;
        match record_to_http(&event_type, value) {
            Some(record) if record.time.is_some_and(|t| !ctx.filter.wants_time(t)) => {
                bump(&mut pending.skipped, "outside_time_window", 1);
            }
            Some(record) => pending.events.extend(RawValue::from_string(record.json).ok()),
            None => bump(&mut pending.skipped, "not_a_record", 1),
        }
        if pending.records as usize >= CHUNK_RECORDS {
            let total = pending.total + pending.records;
            let chunk = std::mem::take(&mut pending).map(ctx, now);
            pending.total = total;
            if sender.blocking_send(Piece::Chunk(chunk)).is_err() {
                return;
            }
        }
    }
    let _ = sender.blocking_send(Piece::Chunk(pending.map(ctx, now)));
}

/// Records decoded since the last chunk.
#[derive(Default)]
struct Pending {
    /// Records in earlier chunks of this file.
    total: u64,
    records: u64,
    skipped: BTreeMap<String, u64>,
    events: Vec<Box<RawValue>>,
}

impl Pending {
    /// Runs the HTTP path's transform over the chunk and keeps owned results.
    fn map(self, ctx: &Context, now: OffsetDateTime) -> Chunk {
        let raws: Vec<&RawValue> = self.events.iter().map(|e| &**e).collect();
        let transformed = map_events(&raws, &ctx.config.routing, ctx.route);
        let mut skipped = self.skipped;
        for s in &transformed.skipped {
            bump(&mut skipped, s.reason.as_str(), 1);
        }
        let max_bytes = ctx.config.queues.park_message_max_bytes;
        let mut dead = Vec::new();
        for invalid in &transformed.invalid {
            let template = Envelope::new(&ctx.run.route, now, 0, &invalid.error.to_string());
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
    for (route, messages) in by_route(&chunk.messages) {
        if !send_route(ctx, route, &messages, report).await {
            return false;
        }
    }
    true
}

/// Delivers one route's messages; dead-letters what Segment refuses for good.
async fn send_route(ctx: &Context, route: RouteId, messages: &[&str], report: &mut FileReport) -> bool {
    let target = &ctx.config.routing.route(route).target;
    let sent = deliver_messages(&*ctx.segment, &*ctx.clock, target, messages, &ctx.policy).await;
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

/// Messages grouped by route, in first-seen order.
fn by_route(messages: &[Mapped]) -> Vec<(RouteId, Vec<&str>)> {
    let mut groups: Vec<(RouteId, Vec<&str>)> = Vec::new();
    for message in messages {
        match groups.iter_mut().find(|(route, _)| *route == message.route) {
            Some((_, list)) => list.push(&message.json),
            None => groups.push((message.route, vec![&message.json])),
        }
    }
    groups
}
