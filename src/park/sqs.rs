//! The production [`Park`] and [`Postpone`] adapter over one SQS queue. Every body it sends is
//! one SQS will store: refused characters are escaped, an envelope over the queue's message
//! limit goes to S3 behind an extended-client pointer (or, with no bucket, is cut down), and a
//! sender-fault refusal is answered with a form SQS takes rather than an error no re-send fixes.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};

use super::envelope::fit_within;
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
    max_message_bytes: usize,
    store: Option<Arc<dyn PayloadStore>>,
    function: &'static str,
}

impl SqsQueue {
    /// A queue taking bodies up to SQS's default 256 KiB and no large-payload store.
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
            max_message_bytes: SQS_DEFAULT_MESSAGE_BYTES,
            store: None,
            function: "ingest",
        }
    }

    /// The queue's `MaximumMessageSize` in bytes (`PARK_MESSAGE_MAX_BYTES`); larger bodies are
    /// offloaded or cut.
    pub fn with_max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Where bodies over the limit, or refused by SQS, are stored whole (`LARGE_PAYLOAD_BUCKET`).
    pub fn with_payload_store(mut self, store: Arc<dyn PayloadStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The `Function` dimension of the `Truncated` metric this queue emits ("ingest", "replay").
    pub fn with_metrics_function(mut self, function: &'static str) -> Self {
        self.function = function;
        self
    }

    /// Makes `body` one SQS will store: escaped, then offloaded (or cut) when too large.
    async fn prepare(&self, body: &str) -> Result<Outgoing, QueueError> {
        let safe = sqs_safe(body);
        if safe.len() <= self.max_message_bytes {
            return Ok(Outgoing {
                body: safe.into_owned(),
                form: Form::AsGiven,
                payload_size: None,
            });
        }
        if self.store.is_some() {
            return self.offload(&safe).await;
        }
        Ok(self.cut(&safe, self.max_message_bytes).unwrap_or_else(|| Outgoing {
            body: safe.into_owned(),
            form: Form::AsGiven,
            payload_size: None,
        }))
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

    /// Sends one `SendMessageBatch` and returns the indexes (into `bodies`) that failed, with
    /// whether retrying them as they are could help and SQS's error code.
    async fn send_batch(&self, bodies: &[Outgoing], indexes: &[usize]) -> Result<Vec<(usize, bool, String)>, String> {
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
            .collect::<Result<Vec<_>, _>>()?;
        let output = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| {
                format!(
                    "SendMessageBatch failed: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                )
            })?;
        Ok(output
            .failed()
            .iter()
            .filter_map(|f| {
                let index = f.id().parse::<usize>().ok()?;
                Some((index, !f.sender_fault(), f.code().to_owned()))
            })
            .collect())
    }

    /// One round over `pending`: the indexes still to send, the indexes given up on (refused in
    /// every form), and the last error seen. A refused entry does not stop the round, so every
    /// other body is still sent and the error's count is the true one.
    async fn send_round(&self, outgoing: &mut [Outgoing], pending: &[usize]) -> Round {
        let mut round = Round::default();
        let chunks = pack(
            pending.iter().map(|&i| outgoing[i].sqs_bytes()),
            0,
            SQS_MAX_BATCH_BYTES,
            SQS_MAX_BATCH_ENTRIES,
        );
        for chunk in chunks {
            let indexes = &pending[chunk];
            match self.send_batch(outgoing, indexes).await {
                Ok(entry_failures) => {
                    for (index, retryable, code) in entry_failures {
                        round.reason = format!("SQS failed some batch entries ({code})");
                        if retryable {
                            round.failed.push(index);
                            continue;
                        }
                        match self.fallback(&outgoing[index], &code).await {
                            Ok(next) => {
                                outgoing[index] = next;
                                round.failed.push(index);
                            }
                            Err(error) => {
                                round.reason = error.reason;
                                round.given_up.push(index);
                            }
                        }
                    }
                }
                Err(error) => {
                    round.failed.extend_from_slice(indexes);
                    round.reason = error;
                }
            }
        }
        round.failed.sort_unstable();
        round
    }
}

/// What one round of sends left: entries to retry, entries given up on, and the last error.
#[derive(Default)]
struct Round {
    failed: Vec<usize>,
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
            outgoing.push(self.prepare(body).await.map_err(|e| QueueError {
                total: bodies.len(),
                ..e
            })?);
        }
        let mut pending: Vec<usize> = (0..bodies.len()).collect();
        let mut given_up = 0;
        let mut reason = String::new();
        for round in 0..MAX_SEND_ROUNDS {
            if pending.is_empty() {
                break;
            }
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(100 << round)).await;
            }
            let result = self.send_round(&mut outgoing, &pending).await;
            (pending, reason) = (result.failed, result.reason);
            given_up += result.given_up.len();
        }
        if pending.is_empty() && given_up == 0 {
            return Ok(());
        }
        Err(QueueError {
            failed: pending.len() + given_up,
            total: bodies.len(),
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
                reason: format!(
                    "ChangeMessageVisibility failed: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                ),
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
