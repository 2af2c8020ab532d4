//! A scripted Segment settings CDN: a [`FetchSettings`] fake that answers per write key and
//! counts requests, so tests can revoke and restore keys between steps.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use currents_segment::keycheck::KeyHealth;
use currents_segment::ports::{FetchSettings, SettingsAnswer};
use currents_segment::secret::Secret;

/// Segment's 404 body for a write key it does not know.
pub const INVALID_KEY_BODY: &str = "Cannot GET - Invalid path or write key provided.";

/// Answers 200 `{}` for every key unless told otherwise.
#[derive(Default)]
pub struct ScriptedSettings {
    answers: Mutex<HashMap<String, SettingsAnswer>>,
    requests: AtomicUsize,
}

impl ScriptedSettings {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// From now on, `write_key` gets `answer`.
    pub fn answer(&self, write_key: &str, answer: SettingsAnswer) {
        self.answers.lock().unwrap().insert(write_key.to_owned(), answer);
    }

    /// From now on, `write_key` is unknown to Segment (404 with Segment's text).
    pub fn revoke(&self, write_key: &str) {
        self.answer(write_key, SettingsAnswer::NotFound(INVALID_KEY_BODY.into()));
    }

    /// From now on, `write_key`'s source ingests at `api_host` (e.g. `events.eu1.segmentapis.com/v1`).
    pub fn ingests_at(&self, write_key: &str, api_host: &str) {
        let body = serde_json::json!({"integrations": {"Segment.io": {"apiKey": write_key, "apiHost": api_host}}});
        self.answer(write_key, SettingsAnswer::Found(body.to_string().into_bytes()));
    }

    /// Settings requests made so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl FetchSettings for ScriptedSettings {
    async fn fetch_settings(&self, _endpoint: &str, write_key: &Secret, _timeout: Duration) -> SettingsAnswer {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let answers = self.answers.lock().unwrap();
        answers
            .get(write_key.expose())
            .cloned()
            .unwrap_or_else(|| SettingsAnswer::Found(b"{}".to_vec()))
    }
}

/// A [`KeyHealth`] on `settings`, with a short timeout.
pub fn key_health(settings: &Arc<ScriptedSettings>) -> Arc<KeyHealth> {
    Arc::new(KeyHealth::new(settings.clone(), Duration::from_millis(200)))
}

/// A [`KeyHealth`] on a fresh [`ScriptedSettings`] that knows every key.
pub fn trusting_key_health() -> Arc<KeyHealth> {
    key_health(&ScriptedSettings::new())
}
