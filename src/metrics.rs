//! CloudWatch Embedded Metric Format: JSON log lines that CloudWatch turns into metrics, with
//! no SDK call and no latency on the request path
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>).
//!
//! Written by hand, on purpose. Two crates were judged against it (November 2026) and neither
//! keeps both the documents the template's alarms and dashboard read and a per-invocation
//! [`Metrics`] that tests can render:
//!
//! - `metrics` 0.24 + `metrics_cloudwatch_embedded` 0.10 (`lambda` feature): its `Builder::init`
//!   installs a process-wide recorder with `metrics::set_global_recorder`, and the recorder type
//!   is private, so `metrics::with_local_recorder` cannot scope one to an invocation. Counters
//!   are then shared by every invocation in the process: the tests that run many handlers in
//!   parallel in one binary would read each other's counts, and `render(&self, ..)` per
//!   invocation cannot exist. The `Function` dimension is fixed at `init`, and a histogram keeps
//!   at most 100 unflushed values (more are dropped with an error log).
//! - AWS's `metrique` 0.1 with `emf`: a formatter can write to any `io::Write` with no global
//!   state, but one `Emf` publishes every metric under its default dimension sets (an extra
//!   `directive` adds sets, it does not replace them: a by-reason `DeadLettered` would also count
//!   under `Function` alone and double the totals the alarms read). So the `Function` and the
//!   `Function`+`Reason` documents need two formatters, and a metric name chosen at run time
//!   (one document per metric and reason) needs a hand-written `Entry` impl: about the code this
//!   module has. It also writes a latency list as `{"Values":[..],"Counts":[..]}` (or a bare
//!   number for one value) instead of today's `[..]` array, which changes the log lines
//!   operators query and the assertion on `SegmentLatencyMs` below; and it adds about 30
//!   crates to the build (`metrics-util`, `quanta`, `sketches-ddsketch`, eight `metrique-*`).

use serde_json::{Map, Value, json};

/// The CloudWatch namespace of every metric, used by the template's alarms.
pub const NAMESPACE: &str = "CurrentsSegment";

crate::string_enum::string_enum! {
    /// Every metric the functions emit, by its CloudWatch name. The template's alarms and
    /// dashboard name only these; `tests/template.rs` checks that they do.
    pub enum Metric {
        /// Events in a request body (ingest).
        Received = "Received",
        /// Events Segment answered 2xx for (ingest).
        Delivered = "Delivered",
        /// Events SQS accepted onto RetryQueue (ingest).
        Parked = "Parked",
        /// Events left out by a documented rule; with `Reason` (ingest, replay).
        Skipped = "Skipped",
        /// Events handed to DeadLetterQueue; with `Reason` (ingest, replay).
        DeadLettered = "DeadLettered",
        /// Invalid events, with `Reason` = the invalid-event code (ingest).
        InvalidEvent = "InvalidEvent",
        /// Events replay delivered (replay).
        Replayed = "Replayed",
        /// Events replay dead-lettered for age (replay).
        Expired = "Expired",
        /// HTTP requests made to Segment (ingest, replay).
        SegmentRequests = "SegmentRequests",
        /// Segment requests after the first for a batch (ingest, replay).
        SegmentRetries = "SegmentRetries",
        /// Milliseconds per Segment batch, retries included (ingest).
        SegmentLatencyMs = "SegmentLatencyMs",
        /// Raw events or bodies cut to an excerpt because an envelope was over the SQS message
        /// limit and no `LARGE_PAYLOAD_BUCKET` is configured (ingest, replay).
        Truncated = "Truncated",
        /// Events held (parked, never sent) because Segment's settings CDN does not know the
        /// route's write key or the source ingests in another region; also with `Route`
        /// (ingest, replay; backfill refuses and logs instead).
        WriteKeyInvalid = "WriteKeyInvalid",
        /// Write-key checks that ended "unknown" (timeout, 5xx, odd body): delivered as usual;
        /// also with `Route` (ingest, replay).
        WriteKeyCheckFailed = "WriteKeyCheckFailed",
    }
}

impl Metric {
    /// The CloudWatch metric name.
    pub const fn name(self) -> &'static str {
        self.as_str()
    }
}

/// Metrics gathered during one invocation.
#[derive(Debug, Default)]
pub struct Metrics {
    counts: Vec<(&'static str, f64)>,
    latencies_ms: Vec<f64>,
    /// (metric, dimension name, dimension value, count).
    by_dimension: Vec<(&'static str, &'static str, String, f64)>,
}

impl Metrics {
    /// Adds to a count metric, such as `Delivered`.
    pub fn add(&mut self, metric: Metric, value: usize) {
        let name = metric.name();
        match self.counts.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 += value as f64,
            None => self.counts.push((name, value as f64)),
        }
    }

    /// Adds to a count split by reason, such as `DeadLettered` with `expired`.
    pub(crate) fn add_reason(&mut self, metric: Metric, reason: &str, value: usize) {
        self.add_dimension(metric, "Reason", reason, value);
    }

    /// Adds to a count split by route, such as `WriteKeyInvalid` for `brand-a`.
    pub(crate) fn add_route(&mut self, metric: Metric, route: &str, value: usize) {
        self.add_dimension(metric, "Route", route, value);
    }

    fn add_dimension(&mut self, metric: Metric, dimension: &'static str, key: &str, value: usize) {
        let name = metric.name();
        if value == 0 {
            return;
        }
        let slot = self
            .by_dimension
            .iter_mut()
            .find(|(n, d, k, _)| *n == name && *d == dimension && k == key);
        match slot {
            Some(slot) => slot.3 += value as f64,
            None => self.by_dimension.push((name, dimension, key.to_owned(), value as f64)),
        }
    }

    /// Records one Segment batch's latency, in milliseconds.
    pub fn latency(&mut self, millis: f64) {
        self.latencies_ms.push(millis);
    }

    /// One EMF document for the totals and one per (metric, reason or route), all with
    /// dimension `Function`; the others add `Reason` or `Route`.
    pub fn render(&self, function: &str, timestamp_ms: i64) -> Vec<String> {
        let mut lines = Vec::new();
        let mut totals = Map::new();
        let mut definitions = Vec::new();
        for (name, value) in &self.counts {
            totals.insert((*name).to_owned(), json!(value));
            definitions.push(json!({"Name": name, "Unit": "Count"}));
        }
        if !self.latencies_ms.is_empty() {
            let name = Metric::SegmentLatencyMs.name();
            totals.insert(name.to_owned(), json!(self.latencies_ms));
            definitions.push(json!({"Name": name, "Unit": "Milliseconds"}));
        }
        if !definitions.is_empty() {
            lines.push(document(function, timestamp_ms, &[], definitions, totals));
        }
        for (name, dimension, key, value) in &self.by_dimension {
            let mut values = Map::new();
            values.insert((*name).to_owned(), json!(value));
            values.insert((*dimension).to_owned(), json!(key));
            lines.push(document(
                function,
                timestamp_ms,
                &[dimension],
                vec![json!({"Name": name, "Unit": "Count"})],
                values,
            ));
        }
        lines
    }

    /// Writes the documents to stdout, where Lambda hands them to CloudWatch.
    pub(crate) fn emit(&self, function: &str) {
        let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        for line in self.render(function, now_ms) {
            println!("{line}");
        }
    }
}

fn document(
    function: &str,
    timestamp_ms: i64,
    extra: &[&str],
    metrics: Vec<Value>,
    mut values: Map<String, Value>,
) -> String {
    let mut dimensions = vec!["Function"];
    dimensions.extend_from_slice(extra);
    values.insert("Function".to_owned(), json!(function));
    values.insert(
        "_aws".to_owned(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [dimensions], "Metrics": metrics}],
        }),
    );
    Value::Object(values).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_and_reasons_render_as_emf_documents() {
        let mut metrics = Metrics::default();
        metrics.add(Metric::Received, 3);
        metrics.add(Metric::Received, 2);
        metrics.add_reason(Metric::DeadLettered, "expired", 1);
        metrics.add_reason(Metric::Skipped, "no_external_user_id", 0);
        metrics.latency(12.5);
        let lines = metrics.render("ingest", 1_700_000_000_000);
        assert_eq!(lines.len(), 2);
        let totals: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(totals["Received"], 5.0);
        assert_eq!(totals["SegmentLatencyMs"][0], 12.5);
        assert_eq!(totals["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        let reason: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(
            (reason["DeadLettered"].as_f64(), reason["Reason"].as_str()),
            (Some(1.0), Some("expired"))
        );
        assert_eq!(reason["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][1], "Reason");
    }
}
