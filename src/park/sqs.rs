//! The production [`Park`] and [`Postpone`] adapter over one SQS queue. Every body it sends is
//! one SQS will store: refused characters are escaped, an envelope over the queue's message
//! limit is split into halves until each fits ([`split_in_halves`]); one value too large by itself
//! goes to S3 behind an extended-client pointer (or, with no bucket, is cut down). A sender-fault
//! refusal is answered with a form SQS takes rather than an error no re-send fixes; a refusal
//! for size also lowers the limit this adapter works to, for the rest of its life.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::operation::RequestId;
use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchError;
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName, SendMessageBatchRequestEntry};

use super::envelope::fit_within;
use super::fit::{SQS_MIN_MESSAGE_BYTES, limit_named, refused_for_size, split_in_halves};
use super::offload::{PAYLOAD_SIZE_ATTRIBUTE, PayloadStore};
use super::sqs_text::{ascii_only, sqs_safe};
use crate::limits::{SQS_DEFAULT_MESSAGE_BYTES, SQS_MAX_BATCH_BYTES, SQS_MAX_BATCH_ENTRIES, SQS_MAX_VISIBILITY_SECS};
use crate::metrics::{Metric, Metrics};
use crate::pack::pack;
use crate::ports::{Park, Postpone, QueueError};

/// Tries per entry before an SQS failure is reported. SQS reports per-entry failures inside a
/// 200 answer, and the SDK's own retries cover only whole-call errors. A sender fault uses one
/// try per fallback form (ASCII-only JSON, then S3 or, with no bucket, cut).
const MAX_SEND_ROUNDS: u32 = 4;

/// Rounds that only re-send pieces of bodies SQS refused for their size. Each such refusal
/// lowers the limit, and halving takes a 1 MiB body to SQS's smallest limit (1 KiB) in ten.
const MAX_REFIT_ROUNDS: u32 = 12;

/// The form a body is sent in; each sender fault moves it one step on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    AsGiven,
    Ascii,
    Pointer,
    Cut,
}

/// One body as it will be sent. `payload_size` is set for an S3 pointer.
#[derive(Debug, Clone)]
struct Outgoing {
    body: String,
    form: Form,
    payload_size: Option<usize>,
}

/// The SQS data type of the payload-size attribute.
const NUMBER_TYPE: &str = "Number";

impl Outgoing {
    /// `body` to be sent as it is.
    fn plain(body: String) -> Self {
        Self {
            body,
            form: Form::AsGiven,
            payload_size: None,
        }
    }

    /// The message's size as SQS counts it against a batch's 1 MiB: the body plus each message
    /// attribute's name, type and value
    /// (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_MessageAttributeValue.html>).
    fn sqs_bytes(&self) -> usize {
        let attribute = |size: usize| PAYLOAD_SIZE_ATTRIBUTE.len() + NUMBER_TYPE.len() + size.to_string().len();
        self.body.len() + self.payload_size.map_or(0, attribute)
    }
}

/// The production [`Park`](crate::ports::Park) and [`Postpone`](crate::ports::Postpone) over one SQS queue.
pub struct SqsQueue {
    client: Client,
    url: String,
    /// The largest body sent as it is, in bytes: `PARK_MESSAGE_MAX_BYTES`, lowered to the
    /// queue's own `MaximumMessageSize` by [`SqsQueue::fit_to_queue`] or by a refusal for size.
    max_message_bytes: AtomicUsize,
    store: Option<Arc<dyn PayloadStore>>,
    function: &'static str,
}

/// `PARK_MESSAGE_MAX_BYTES`'s floor. A queue at least this large holds any Segment message
/// (32,000 bytes at most) in an envelope; a smaller one may not, and the operator must raise it.
const SMALLEST_SUFFICIENT_QUEUE_BYTES: usize = 65_536;

/// How long a cold start waits for a queue's `MaximumMessageSize` before keeping the
/// configured limit: short, as it delays the first request.
const QUEUE_LIMIT_TIMEOUT: Duration = Duration::from_secs(2);

impl SqsQueue {
    /// A queue taking bodies up to SQS's default 256 KiB and no large-payload store.
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
            max_message_bytes: AtomicUsize::new(SQS_DEFAULT_MESSAGE_BYTES),
            store: None,
            function: "ingest",
        }
    }

    /// The largest body to send, in bytes (`PARK_MESSAGE_MAX_BYTES`); a larger envelope is
    /// split, and a single value too large by itself offloaded or cut. [`SqsQueue::fit_to_queue`]
    /// lowers it to the queue's own `MaximumMessageSize`.
    pub fn with_max_message_bytes(self, bytes: usize) -> Self {
        self.max_message_bytes.store(bytes, Ordering::Relaxed);
        self
    }

    /// Where bodies over the limit, or refused by SQS, are stored whole (`LARGE_PAYLOAD_BUCKET`).
    pub fn with_payload_store(mut self, store: Arc<dyn PayloadStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The `Function` dimension of the `Truncated` metric this queue emits ("ingest", "replay").
    pub(crate) fn with_metrics_function(mut self, function: &'static str) -> Self {
        self.function = function;
        self
    }

    /// The SQS client and the queue's URL, for sending a message on unchanged (`dlq::Forward`).
    pub(crate) fn client_and_url(&self) -> (&Client, &str) {
        (&self.client, &self.url)
    }

    /// The limit bodies are fitted to now, in bytes (see [`SqsQueue::with_max_message_bytes`]).
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes.load(Ordering::Relaxed)
    }

    /// Lowers the limit to `bytes`, never below SQS's smallest (1 KiB); true when it fell.
    fn lower_limit(&self, bytes: usize) -> bool {
        let bytes = bytes.max(SQS_MIN_MESSAGE_BYTES);
        self.max_message_bytes.fetch_min(bytes, Ordering::Relaxed) > bytes
    }

    /// Cold start: reads the queue's `MaximumMessageSize` (1,024 to 1,048,576 bytes, default
    /// 262,144: <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html>)
    /// and, when it is below the configured limit, works to it from now on, with one WARN naming
    /// both (ERROR when the queue is under 65,536 bytes and may not hold a Segment message).
    /// When it cannot be read (no `sqs:GetQueueAttributes`, say) the configured limit stays, with
    /// a WARN; a refusal for size then lowers it at the first send.
    pub async fn fit_to_queue(self) -> Self {
        let (configured, queue) = (self.max_message_bytes(), queue_name(&self.url));
        let read = tokio::time::timeout(QUEUE_LIMIT_TIMEOUT, self.queue_limit()).await;
        match read.unwrap_or_else(|_| Err("GetQueueAttributes did not answer in time".to_owned())) {
            Ok(limit) if limit < configured => {
                self.lower_limit(limit);
                let text =
                    "PARK_MESSAGE_MAX_BYTES is above the queue's MaximumMessageSize; parking within the queue's limit.";
                if limit < SMALLEST_SUFFICIENT_QUEUE_BYTES {
                    tracing::error!(
                        queue,
                        configured,
                        queue_limit = limit,
                        "{text} Raise MaximumMessageSize to at least 65536."
                    );
                } else {
                    tracing::warn!(queue, configured, queue_limit = limit, "{text}");
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(queue, configured, error = %error,
                "Could not read the queue's MaximumMessageSize; keeping PARK_MESSAGE_MAX_BYTES. A message SQS refuses for its size is split or offloaded then."),
        }
        self
    }

    async fn queue_limit(&self) -> Result<usize, String> {
        let name = QueueAttributeName::MaximumMessageSize;
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(name.clone())
            .send()
            .await
            .map_err(|e| format!("GetQueueAttributes failed: {}", sdk_error_text(&e)))?;
        output
            .attributes()
            .and_then(|attributes| attributes.get(&name))
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| "GetQueueAttributes gave no MaximumMessageSize".to_owned())
    }

    /// Makes `body` into bodies SQS will store under the current limit: escaped, split in halves
    /// while over it, and a single value still over it offloaded (or cut).
    async fn prepare(&self, body: &str) -> Result<Vec<Outgoing>, QueueError> {
        let limit = self.max_message_bytes();
        let mut ready = Vec::new();
        let mut work = vec![sqs_safe(body).into_owned()];
        while let Some(body) = work.pop() {
            if body.len() <= limit {
                ready.push(Outgoing::plain(body));
            } else if let Some((first, second)) = split_in_halves(&body) {
                work.extend([second, first]);
            } else if self.store.is_some() {
                ready.push(self.offload(&body).await?);
            } else {
                ready.push(self.cut(&body, limit).unwrap_or_else(|| Outgoing::plain(body)));
            }
        }
        Ok(ready)
    }

    /// The last resort without a bucket: `body` with its oversized events cut to excerpts
    /// ([`fit_within`]), logged at WARN and counted in `Truncated`. `None` when nothing was cut.
    fn cut(&self, body: &str, limit: usize) -> Option<Outgoing> {
        let (cut, count) = fit_within(body, limit).filter(|(_, count)| *count > 0)?;
        tracing::warn!(
            bytes = body.len(),
            limit,
            truncated = count,
            "Envelope over the SQS message limit and LARGE_PAYLOAD_BUCKET is not set; kept an excerpt."
        );
        let mut metrics = Metrics::default();
        metrics.add(Metric::Truncated, count);
        metrics.emit(self.function);
        Some(Outgoing {
            body: cut,
            form: Form::Cut,
            payload_size: None,
        })
    }

    async fn offload(&self, body: &str) -> Result<Outgoing, QueueError> {
        let store = self.store.as_ref().ok_or_else(|| refused("no large-payload store"))?;
        let pointer = store.put(body).await.map_err(|e| QueueError {
            failed: 1,
            total: 1,
            reason: e.to_string(),
        })?;
        Ok(Outgoing {
            body: pointer.to_body(),
            form: Form::Pointer,
            payload_size: Some(body.len()),
        })
    }

    /// The next form to try after SQS refused `sent` as the sender's fault.
    async fn fallback(&self, sent: &Outgoing, code: &str) -> Result<Outgoing, QueueError> {
        tracing::warn!(code, form = ?sent.form, "SQS refused a message body; sending it in another form.");
        if sent.form == Form::AsGiven && !sent.body.is_ascii() {
            return Ok(Outgoing {
                body: ascii_only(&sent.body).into_owned(),
                form: Form::Ascii,
                payload_size: None,
            });
        }
        if sent.form != Form::Pointer && self.store.is_some() {
            return self.offload(&sent.body).await;
        }
        // Refused and too big for a default queue: perhaps PARK_MESSAGE_MAX_BYTES is above the
        // queue's real MaximumMessageSize. Cut rather than answer 503 forever.
        let cut = matches!(sent.form, Form::AsGiven | Form::Ascii) && sent.body.len() > SQS_DEFAULT_MESSAGE_BYTES;
        cut.then(|| self.cut(&sent.body, SQS_DEFAULT_MESSAGE_BYTES))
            .flatten()
            .ok_or_else(|| refused(code))
    }

    /// Entries SQS refused for their size; `named` is the limit its message gave. Lowers the
    /// limit (to `named`, or below the largest entry), then re-prepares each entry over it,
    /// appending extra pieces to `outgoing`. Entries within it are re-sent as they are (the
    /// batch as a whole was too long); one that cannot be made to fit is given up.
    async fn refit(&self, outgoing: &mut Vec<Outgoing>, indexes: &[usize], named: Option<usize>, round: &mut Round) {
        let largest = indexes.iter().map(|&i| outgoing[i].sqs_bytes()).max().unwrap_or(0);
        let below_largest = largest.saturating_sub(1);
        let limit = match named {
            Some(named) if indexes.len() == 1 => named.min(below_largest),
            Some(named) => named,
            None => below_largest,
        };
        if self.lower_limit(limit) {
            tracing::warn!(
                queue = queue_name(&self.url),
                limit = self.max_message_bytes(),
                "SQS refused a message for its size; parking within the smaller limit from now on. Set PARK_MESSAGE_MAX_BYTES to the queue's MaximumMessageSize."
            );
        }
        let limit = self.max_message_bytes();
        for &index in indexes {
            if outgoing[index].sqs_bytes() <= limit {
                round.refit.push(index);
                continue;
            }
            match self.refit_one(&outgoing[index], limit).await {
                Ok(mut pieces) => {
                    outgoing[index] = pieces.remove(0);
                    round.refit.push(index);
                    round.refit.extend(outgoing.len()..outgoing.len() + pieces.len());
                    outgoing.extend(pieces);
                }
                Err(error) => {
                    round.reason = error.reason;
                    round.given_up.push(index);
                }
            }
        }
    }

    /// `sent`, refused for its size, as bodies within `limit`: split, offloaded or cut. An
    /// error when no form fits (a pointer or a cut copy refused, or a single value over the
    /// limit with no bucket and nothing to cut).
    async fn refit_one(&self, sent: &Outgoing, limit: usize) -> Result<Vec<Outgoing>, QueueError> {
        let unfit = || QueueError {
            failed: 1,
            total: 1,
            reason: format!(
                "SQS refused a message for its size and it cannot be split, stored in S3 or cut to {limit} bytes"
            ),
        };
        if matches!(sent.form, Form::Pointer | Form::Cut) {
            return Err(unfit());
        }
        let pieces = self.prepare(&sent.body).await?;
        if pieces.is_empty() || pieces.iter().any(|piece| piece.sqs_bytes() > limit) {
            return Err(unfit());
        }
        Ok(pieces)
    }

    /// Sends one `SendMessageBatch` and returns the indexes (into `bodies`) that failed, with
    /// what SQS said of each; `Err` when SQS refused the whole call.
    async fn send_batch(&self, bodies: &[Outgoing], indexes: &[usize]) -> Result<Vec<(usize, Verdict)>, Refused> {
        let entries = indexes
            .iter()
            .map(|&i| {
                let size = bodies[i].payload_size.map(|size| {
                    MessageAttributeValue::builder()
                        .data_type(NUMBER_TYPE)
                        .string_value(size.to_string())
                        .build()
                });
                let mut entry = SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&bodies[i].body);
                if let Some(size) = size {
                    entry = entry.message_attributes(PAYLOAD_SIZE_ATTRIBUTE, size.map_err(|e| e.to_string())?);
                }
                entry.build().map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(Refused::Other)?;
        let output = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| Refused::of_call(&e))?;
        Ok(output
            .failed()
            .iter()
            .filter_map(|f| {
                let index = f.id().parse::<usize>().ok()?;
                Some((index, Verdict::of_entry(f)))
            })
            .collect())
    }

    /// One round over `pending`: the indexes to re-send after a pause, those to re-send at once
    /// (pieces of bodies refused for their size), those given up on, and the last error seen. A
    /// refused entry does not stop the round, so every other body is still sent and the error's
    /// count is the true one.
    async fn send_round(&self, outgoing: &mut Vec<Outgoing>, pending: &[usize]) -> Round {
        let mut round = Round::default();
        // A batch is held to the message limit too: SQS may bound a batch by the queue's
        // MaximumMessageSize rather than by 1 MiB.
        let batch_bytes = SQS_MAX_BATCH_BYTES.min(self.max_message_bytes());
        let sizes = pending.iter().map(|&i| outgoing[i].sqs_bytes());
        for chunk in pack(sizes.collect::<Vec<_>>(), 0, batch_bytes, SQS_MAX_BATCH_ENTRIES) {
            let indexes = &pending[chunk];
            match self.send_batch(outgoing, indexes).await {
                Ok(entry_failures) => self.settle_entries(outgoing, entry_failures, &mut round).await,
                Err(Refused::Size(named)) => self.refit(outgoing, indexes, named, &mut round).await,
                Err(Refused::Other(error)) => {
                    round.failed.extend_from_slice(indexes);
                    round.reason = error;
                }
            }
        }
        round
    }

    /// Sorts the entries SQS failed inside a 200 answer: retried as they are, refitted when
    /// refused for size, or moved to their next form after another sender fault.
    async fn settle_entries(&self, outgoing: &mut Vec<Outgoing>, failures: Vec<(usize, Verdict)>, round: &mut Round) {
        for (index, verdict) in failures {
            match verdict {
                Verdict::Retry(code) => {
                    round.reason = format!("SQS failed some batch entries ({code})");
                    round.failed.push(index);
                }
                Verdict::Size(named) => self.refit(outgoing, &[index], named, round).await,
                Verdict::Sender(code) => match self.fallback(&outgoing[index], &code).await {
                    Ok(next) => {
                        round.reason = format!("SQS failed some batch entries ({code})");
                        outgoing[index] = next;
                        round.failed.push(index);
                    }
                    Err(error) => {
                        round.reason = error.reason;
                        round.given_up.push(index);
                    }
                },
            }
        }
    }
}

/// What SQS said of one entry it failed inside a 200 answer.
enum Verdict {
    /// Not the sender's fault: the same body may succeed later. Holds the code.
    Retry(String),
    /// Refused for its size; holds the limit SQS's message named, if any.
    Size(Option<usize>),
    /// Another sender fault (characters, say). Holds the code.
    Sender(String),
}

impl Verdict {
    fn of_entry(failure: &aws_sdk_sqs::types::BatchResultErrorEntry) -> Self {
        let (code, message) = (failure.code(), failure.message().unwrap_or_default());
        if !failure.sender_fault() {
            Self::Retry(code.to_owned())
        } else if refused_for_size(code, message) {
            Self::Size(limit_named(message))
        } else {
            Self::Sender(code.to_owned())
        }
    }
}

/// Why SQS refused a whole `SendMessageBatch`.
enum Refused {
    /// For size (`BatchRequestTooLong`, or moto's `InvalidParameterValue` "Message must be
    /// shorter than N bytes"); holds the limit the message named, if any.
    Size(Option<usize>),
    /// Anything else, for the logs: the SDK's whole error chain.
    Other(String),
}

impl Refused {
    fn of_call<R: std::fmt::Debug>(error: &SdkError<SendMessageBatchError, R>) -> Self {
        if let Some(service) = error.as_service_error() {
            let message = service.message().unwrap_or_default();
            if refused_for_size(service.code().unwrap_or_default(), message) {
                return Self::Size(limit_named(message));
            }
        }
        Self::Other(format!("SendMessageBatch failed: {}", sdk_error_text(error)))
    }
}

/// An SQS SDK error as one log line: for an answer SQS gave, its code, message and request id;
/// otherwise (timeout, no connection) the error chain. Never the raw response's headers or
/// body, which the SDK's own display of a service error includes.
fn sdk_error_text<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + RequestId + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error.as_service_error() {
        Some(service) => format!(
            "{}: {} (request id {})",
            service.code().unwrap_or("unknown error"),
            service.message().unwrap_or_default(),
            service.request_id().unwrap_or("none")
        ),
        None => DisplayErrorContext(error).to_string(),
    }
}

/// The queue's name, the last part of its URL: enough to tell queues apart in a log line.
fn queue_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

/// What one round of sends left: entries to retry after a pause, entries to re-send at once
/// (refitted after a refusal for size), entries given up on, and the last error.
#[derive(Default)]
struct Round {
    failed: Vec<usize>,
    refit: Vec<usize>,
    given_up: Vec<usize>,
    reason: String,
}

fn refused(code: &str) -> QueueError {
    QueueError {
        failed: 1,
        total: 1,
        reason: format!("SQS refused a message (sender fault: {code}) and no other form is left"),
    }
}

#[async_trait]
impl Park for SqsQueue {
    async fn park(&self, bodies: &[String]) -> Result<(), QueueError> {
        let mut outgoing = Vec::with_capacity(bodies.len());
        for body in bodies {
            outgoing.extend(self.prepare(body).await.map_err(|e| QueueError {
                total: bodies.len(),
                ..e
            })?);
        }
        let mut pending: Vec<usize> = (0..outgoing.len()).collect();
        let (mut given_up, mut reason) = (0, String::new());
        let (mut tries, mut refits) = (0, 0);
        while !pending.is_empty() && tries < MAX_SEND_ROUNDS && refits < MAX_REFIT_ROUNDS {
            let round = self.send_round(&mut outgoing, &pending).await;
            given_up += round.given_up.len();
            if !round.reason.is_empty() {
                reason = round.reason;
            }
            if round.failed.is_empty() {
                refits += 1;
            } else {
                tries += 1;
                if tries < MAX_SEND_ROUNDS {
                    tokio::time::sleep(Duration::from_millis(100 << tries)).await;
                }
            }
            pending = [round.failed, round.refit].concat();
            pending.sort_unstable();
        }
        if pending.is_empty() && given_up == 0 {
            return Ok(());
        }
        Err(QueueError {
            failed: pending.len() + given_up,
            total: outgoing.len(),
            reason,
        })
    }
}

#[async_trait]
impl Postpone for SqsQueue {
    async fn postpone(&self, receipt_handle: &str, delay: Duration) -> Result<(), QueueError> {
        let seconds = delay.as_secs().min(SQS_MAX_VISIBILITY_SECS) as i32;
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| QueueError {
                failed: 1,
                total: 1,
                reason: format!("ChangeMessageVisibility failed: {}", sdk_error_text(&e)),
            })
    }
}

/// An SQS client from the standard AWS settings. `AWS_ENDPOINT_URL` points it at a stand-in
/// such as moto. Timeouts are short: a queue that does not answer in time must turn into a 503
/// while the invocation can still answer.
pub async fn client_from_env() -> Client {
    Client::new(&aws_sdk_config().await)
}

/// The AWS SDK configuration every client of ours shares: the standard chain for region,
/// credentials and `AWS_ENDPOINT_URL`, with short timeouts so a call that cannot reach AWS
/// fails within the invocation (1 s connect, 2 s per attempt, 5 s per operation).
pub(crate) async fn aws_sdk_config() -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .load()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_counts_its_body_and_each_attribute_name_type_and_value() {
        let plain = Outgoing {
            body: "x".repeat(100),
            form: Form::AsGiven,
            payload_size: None,
        };
        assert_eq!(plain.sqs_bytes(), 100);
        let pointer = Outgoing {
            payload_size: Some(123_456),
            ..plain
        };
        // "ExtendedPayloadSize" (19) + "Number" (6) + "123456" (6).
        assert_eq!(pointer.sqs_bytes(), 100 + 19 + 6 + 6);
    }

    fn queue() -> SqsQueue {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .build();
        SqsQueue::new(Client::from_conf(config), "https://sqs.example/000000000000/q")
    }

    /// Cutting is a last resort: an envelope with no event over the excerpt size is left as it
    /// is (and so keeps its chance of an ASCII retry), not relabelled as cut.
    #[test]
    fn an_envelope_with_nothing_to_cut_is_not_cut() {
        let at = time::OffsetDateTime::UNIX_EPOCH;
        let mut envelope = crate::park::Envelope::new("default", at, 0, "x");
        envelope.events = vec![serde_json::value::RawValue::from_string(r#"{"id":"e"}"#.into()).unwrap(); 500];
        let small = envelope.to_json();
        assert!(small.len() > 4_096);
        assert!(queue().cut(&small, 4_096).is_none());

        let big = format!(r#"{{"id":"e","p":"{}"}}"#, "y".repeat(20_000));
        envelope
            .events
            .push(serde_json::value::RawValue::from_string(big).unwrap());
        let cut = queue().cut(&envelope.to_json(), 4_096).expect("the big event is cut");
        assert_eq!(cut.form, Form::Cut);
        assert!(cut.body.len() < small.len() + 17_000);
    }
}
