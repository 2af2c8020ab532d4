//! Transform throughput against the JSON floor, and scaling with body size.
//!
//! Full pure path: bytes in → parse, validate, map → Segment batch bytes out.
//! Floor: `serde_json::from_slice::<Value>` then `serde_json::to_vec` on the same bytes.
//! Set `CURRENTS_BENCH_BODY=path` to also measure a body from a file (e.g. the 92 MB peer body).

#[path = "support/workload.rs"]
mod workload;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use currents_segment::config::Config;
use currents_segment::segment::{batch_body, plan_batches};
use currents_segment::transform::transform_body;
use time::OffsetDateTime;

fn config() -> Config {
    Config::from_lookup(|k| (k == "SEGMENT_WRITE_KEY").then(|| "bench".to_owned())).unwrap()
}

/// The full pure path; returns the total Segment body bytes so nothing is optimised away.
fn full_path(body: &[u8], config: &Config) -> usize {
    let out = transform_body(body, &config.routing, config.routing.find("default").unwrap()).unwrap();
    let messages: Vec<&str> = out.messages.iter().map(|m| m.json.as_str()).collect();
    plan_batches(&messages)
        .into_iter()
        .map(|r| batch_body(&messages[r], OffsetDateTime::UNIX_EPOCH).len())
        .sum()
}

fn floor(body: &[u8]) -> usize {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap();
    serde_json::to_vec(&value).unwrap().len()
}

fn throughput(c: &mut Criterion) {
    let config = config();
    let mut bodies = vec![
        ("100-events", workload::body(100)),
        ("100k-events", workload::body(100_000)),
    ];
    if let Ok(path) = std::env::var("CURRENTS_BENCH_BODY") {
        bodies.push(("peer-body", std::fs::read(path).unwrap()));
    }
    for (name, body) in &bodies {
        let mut group = c.benchmark_group(format!("throughput/{name}"));
        group.throughput(Throughput::Bytes(body.len() as u64));
        if body.len() > 10_000_000 {
            group.sample_size(10).measurement_time(Duration::from_secs(20));
        }
        group.bench_function("currents-segment", |b| b.iter(|| full_path(black_box(body), &config)));
        group.bench_function("floor-serde-value", |b| b.iter(|| floor(black_box(body))));
        group.finish();
    }
}

fn scaling(c: &mut Criterion) {
    let config = config();
    let mut group = c.benchmark_group("scaling");
    for count in [1usize, 10, 100, 1_000, 10_000] {
        let body = workload::body(count);
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(BenchmarkId::from_parameter(count), &body, |b, body| {
            b.iter(|| full_path(black_box(body), &config))
        });
    }
    group.finish();
}

criterion_group!(benches, throughput, scaling);
criterion_main!(benches);
