//! moto for the dead-letter and large-payload tests: its endpoint, fresh queues, queue depth,
//! and an S3 client with a fresh bucket. `scripts/test` starts moto and sets `SQS_ENDPOINT`;
//! S3 is served on the same endpoint.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::QueueAttributeName;
use currents_segment::park::{PayloadStore, S3PayloadStore};

/// moto's endpoint, for SQS and S3 alike.
pub fn endpoint() -> String {
    std::env::var("SQS_ENDPOINT").expect("SQS_ENDPOINT must point at moto_server; run scripts/test")
}

/// One new queue per name, named `{name}-{test}-{random}`; their URLs in the same order.
pub async fn queues(sqs: &aws_sdk_sqs::Client, test: &str, names: &[&str]) -> Vec<String> {
    let suffix = format!("{test}-{}", fastrand::u32(..));
    let mut urls = Vec::new();
    for name in names {
        let created = sqs
            .create_queue()
            .queue_name(format!("{name}-{suffix}"))
            .send()
            .await
            .unwrap();
        urls.push(created.queue_url.unwrap());
    }
    urls
}

/// Messages visible in the queue now (moto's count is exact).
pub async fn visible(sqs: &aws_sdk_sqs::Client, url: &str) -> usize {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    attributes.attributes.unwrap()[&QueueAttributeName::ApproximateNumberOfMessages]
        .parse()
        .unwrap()
}

/// A client for moto at `endpoint` (path-style, dummy credentials).
pub fn client(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A new bucket and the production store on it.
pub async fn store(endpoint: &str, test: &str) -> (String, Arc<dyn PayloadStore>) {
    let client = client(endpoint);
    let bucket = format!("payloads-{test}-{}", fastrand::u32(..));
    client
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("moto creates the bucket");
    (bucket.clone(), Arc::new(S3PayloadStore::new(client, bucket)))
}

/// Every message in `url` (up to 10) as (body, attribute name → string value), read straight
/// from moto.
pub async fn read_with_attributes(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<(String, HashMap<String, String>)> {
    let output = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    output
        .messages
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let attributes = m
                .message_attributes
                .unwrap_or_default()
                .into_iter()
                .map(|(name, value)| (name, value.string_value.unwrap_or_default()))
                .collect();
            (m.body.unwrap(), attributes)
        })
        .collect()
}
