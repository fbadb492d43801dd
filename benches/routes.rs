//! Lookup speed over the real route table: every entry the builder produces
//! for MLflow 3.17.2 under uvicorn (`benches/fixtures/mlflow-routes.tsv`, made
//! by `scripts/export_route_fixture.py`).

#![allow(
    clippy::expect_used,
    reason = "a broken fixture should stop the benchmark loudly"
)]

use std::hint::black_box;

use _core::routes::{RouteSpec, RouteTable};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const FIXTURE: &str = include_str!("fixtures/mlflow-routes.tsv");

/// (first-match tier?, entry) for each line of the fixture.
fn entries() -> Vec<(bool, RouteSpec<'static>)> {
    FIXTURE
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let [tier, method, pattern, level, name] = fields[..] else {
                panic!("bad fixture line {line:?}");
            };
            let spec = RouteSpec::parse(method, pattern, level, name).expect("fixture level");
            (tier == "first-match", spec)
        })
        .collect()
}

fn table(entries: &[(bool, RouteSpec<'static>)]) -> RouteTable {
    let tier = |first: bool| -> Vec<RouteSpec<'static>> {
        entries
            .iter()
            .filter(|(is_first, _)| *is_first == first)
            .map(|(_, spec)| *spec)
            .collect()
    };
    RouteTable::new(&tier(true), &tier(false), "").expect("fixture table")
}

/// A request path for a pattern: an id for each placeholder, two segments for
/// a path placeholder.
fn sample(pattern: &str) -> String {
    let mut path = String::new();
    let mut rest = pattern;
    while let Some(open) = rest.find(['<', '{']) {
        path.push_str(&rest[..open]);
        let close = if rest.as_bytes()[open] == b'<' {
            '>'
        } else {
            '}'
        };
        let end = open + rest[open..].find(close).expect("closed placeholder");
        let body = &rest[open..=end];
        path.push_str(if body.contains("path") {
            "1/model"
        } else {
            "id-1"
        });
        rest = &rest[end + 1..];
    }
    path.push_str(rest);
    path
}

fn lookups(c: &mut Criterion) {
    let entries = entries();
    let table = table(&entries);
    let requests: Vec<(&str, String)> = entries
        .iter()
        .map(|(_, spec)| (spec.method, sample(spec.pattern)))
        .collect();

    let mut group = c.benchmark_group("every route");
    group.throughput(Throughput::Elements(
        u64::try_from(requests.len()).unwrap_or(u64::MAX),
    ));
    group.bench_function("one lookup per table entry", |b| {
        b.iter(|| {
            for (method, path) in &requests {
                black_box(table.lookup(black_box(method), black_box(path)));
            }
        });
    });
    group.finish();

    let long = format!("/api/3.0/mlflow/mcp-servers/{}x", "versions/".repeat(400));
    let cases = [
        ("static Flask rule", "GET", "/api/2.0/mlflow/runs/get"),
        ("POST search", "POST", "/api/2.0/mlflow/runs/search"),
        (
            "Flask placeholder",
            "DELETE",
            "/api/2.0/mlflow/logged-models/m-1/tags/k",
        ),
        (
            "native artifact download",
            "GET",
            "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model/MLmodel",
        ),
        (
            "native MCP, registration order",
            "DELETE",
            "/api/3.0/mlflow/mcp-servers/a/tags/b/versions/c",
        ),
        ("unknown", "GET", "/api/2.0/mlflow/nothing/here"),
        ("UI asset", "GET", "/static-files/static/js/main.3f2a.js"),
        ("4 KB adversarial MCP path", "DELETE", long.as_str()),
    ];
    let mut group = c.benchmark_group("one lookup");
    for (label, method, path) in cases {
        group.bench_function(label, |b| {
            b.iter(|| table.lookup(black_box(method), black_box(path)));
        });
    }
    group.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
