//! A proxy in front of moto that enforces what moto does not: SQS's character rule for message
//! bodies (`#x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF`, see the SendMessage API
//! reference). A refused `SendMessageBatch` entry comes back in `Failed` with
//! `SenderFault: true` and code `InvalidMessageContents`, as SQS answers; the other entries
//! go on to moto. Everything else is forwarded unchanged.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Which bodies the proxy refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// SQS's own rule.
    SqsCharacters,
    /// Stricter, to drive the fallback: anything not ASCII.
    AsciiOnly,
    /// Stricter still: anything but an S3 pointer.
    PointersOnly,
    /// A queue whose `MaximumMessageSize` is smaller than we were told (refused as
    /// `InvalidParameterValue`, a sender fault, like any other entry refusal here).
    LongerThan(usize),
}

impl Rule {
    fn refuses(self, body: &str) -> bool {
        match self {
            Self::SqsCharacters => !body.chars().all(currents_segment::park::sqs_allows),
            Self::AsciiOnly => !body.is_ascii(),
            Self::PointersOnly => currents_segment::park::PayloadPointer::from_body(body).is_none(),
            Self::LongerThan(limit) => body.len() > limit,
        }
    }
}

pub struct RuleProxy {
    pub server: MockServer,
    /// Entries refused so far.
    pub refused: Arc<AtomicUsize>,
}

impl RuleProxy {
    pub async fn start(moto: &str, rule: Rule) -> Self {
        let server = MockServer::start().await;
        let refused = Arc::new(AtomicUsize::new(0));
        Mock::given(any())
            .respond_with(Forward {
                moto: moto.to_owned(),
                rule,
                refused: refused.clone(),
            })
            .mount(&server)
            .await;
        Self { server, refused }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    pub fn refusals(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

struct Forward {
    moto: String,
    rule: Rule,
    refused: Arc<AtomicUsize>,
}

impl Respond for Forward {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let target = request
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut body: Value = match serde_json::from_slice(&request.body) {
            Ok(body) if target.ends_with(".SendMessageBatch") => body,
            _ => return self.forward(request, request.body.clone()),
        };
        let entries = body["Entries"].as_array().cloned().unwrap_or_default();
        let (refused, kept): (Vec<Value>, Vec<Value>) = entries
            .into_iter()
            .partition(|e| self.rule.refuses(e["MessageBody"].as_str().unwrap_or_default()));
        self.refused.fetch_add(refused.len(), Ordering::SeqCst);
        let failed: Vec<Value> = refused
            .iter()
            .map(|e| {
                json!({"Id": e["Id"], "SenderFault": true, "Code": "InvalidMessageContents",
                "Message": "Invalid characters found."})
            })
            .collect();
        if kept.is_empty() {
            return ResponseTemplate::new(200).set_body_json(json!({"Successful": [], "Failed": failed}));
        }
        body["Entries"] = Value::Array(kept);
        let (_, _, answer) = self.call_moto(request, serde_json::to_vec(&body).unwrap());
        let mut merged: Value = serde_json::from_slice(&answer).unwrap_or(json!({}));
        let mut all_failed = merged["Failed"].as_array().cloned().unwrap_or_default();
        all_failed.extend(failed);
        merged["Failed"] = Value::Array(all_failed);
        ResponseTemplate::new(200).set_body_raw(merged.to_string(), "application/x-amz-json-1.0")
    }
}

impl Forward {
    /// Sends the request on to moto and answers with moto's answer.
    fn forward(&self, request: &Request, body: Vec<u8>) -> ResponseTemplate {
        let (status, content_type, bytes) = self.call_moto(request, body);
        ResponseTemplate::new(status).set_body_raw(bytes, &content_type)
    }

    /// One call to moto, from a thread of its own: `respond` is synchronous.
    fn call_moto(&self, request: &Request, body: Vec<u8>) -> (u16, String, Vec<u8>) {
        let url = format!("{}{}", self.moto.trim_end_matches('/'), request.url.path());
        let url = match request.url.query() {
            Some(query) => format!("{url}?{query}"),
            None => url,
        };
        let headers: Vec<(String, String)> = request
            .headers
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "host" | "content-length"))
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
            .collect();
        let method = request.method.to_string();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let client = reqwest::Client::new();
                let mut call = client.request(method.parse().unwrap(), url).body(body);
                for (name, value) in headers {
                    call = call.header(name, value);
                }
                let answer = call.send().await.expect("moto answers");
                let status = answer.status().as_u16();
                let content_type = answer
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("application/x-amz-json-1.0")
                    .to_owned();
                (status, content_type, answer.bytes().await.unwrap().to_vec())
            })
        })
        .join()
        .expect("the forwarding thread finishes")
    }
}
