//! An SQS client for the tests that talk to moto, and reading queues as Lambda's SQS trigger
//! would hand them over.

use std::time::Duration;

use aws_lambda_events::sqs::SqsMessage;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::MessageSystemAttributeName;

/// A client for `endpoint` with dummy credentials and short timeouts.
pub fn client(endpoint: &str) -> Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .timeout_config(
            aws_sdk_sqs::config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(2))
                .connect_timeout(Duration::from_millis(500))
                .build(),
        )
        .build();
    Client::from_conf(config)
}

/// One ReceiveMessage call as SQS event records; `visibility` overrides the queue's timeout.
pub async fn receive_once(client: &Client, url: &str, visibility: Option<i32>) -> Vec<SqsMessage> {
    let response = client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(0)
        .set_visibility_timeout(visibility)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .unwrap();
    response
        .messages
        .unwrap_or_default()
        .into_iter()
        .map(|message| {
            let mut record = SqsMessage::default();
            record.message_id = message.message_id;
            record.receipt_handle = message.receipt_handle;
            record.body = message.body;
            for (name, value) in message.attributes.unwrap_or_default() {
                record.attributes.insert(name.as_str().to_owned(), value);
            }
            record
        })
        .collect()
}

/// Everything visible now; with `delete`, each message is deleted as it is read, as Lambda's
/// event source does after a successful invocation.
pub async fn receive_all(client: &Client, url: &str, delete: bool) -> Vec<SqsMessage> {
    let mut out = Vec::new();
    loop {
        let batch = receive_once(client, url, None).await;
        if batch.is_empty() {
            return out;
        }
        if delete {
            delete_all(client, url, &batch).await;
        }
        out.extend(batch);
    }
}

/// Deletes the records, as Lambda's event source does after a successful invocation.
pub async fn delete_all(client: &Client, url: &str, records: &[SqsMessage]) {
    for record in records {
        let handle = record.receipt_handle.clone().expect("a receipt handle");
        client
            .delete_message()
            .queue_url(url)
            .receipt_handle(handle)
            .send()
            .await
            .unwrap();
    }
}
