//! Verification cost: the RSA signature alone, a full cold verification
//! (signature, claims, level; cache bypassed) and a verified-session cache hit.
//!
//! `scripts/bench_verify.py` runs this next to `openssl speed rsa2048` and the
//! Python comparison; docs/benchmarks.md records the figures.

#![allow(
    clippy::unwrap_used,
    reason = "a benchmark may panic on a broken setup"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;

use _core::core::{Core, Settings};
use _core::error::Result;
use _core::keys::KeySetSource;

const PROJECT: &str = "P2BenchProject0001";
const JWKS: &str = include_str!("../tests/keys/jwks.json");

struct StaticKeys;

impl KeySetSource for StaticKeys {
    fn fetch_key_set(&self) -> Result<Vec<u8>> {
        Ok(JWKS.as_bytes().to_vec())
    }
}

/// A Descope-shaped session token signed with the committed RSA test key.
fn token() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = json!({"alg": "RS256", "kid": "test-rsa-1", "typ": "JWT"});
    let claims = json!({
        "sub": "U2benchuser0000000000000000", "iss": format!("https://api.descope.com/{PROJECT}"),
        "iat": now, "exp": now + 3600, "drn": "DS", "amr": ["email"],
        "roles": ["mlflow-editor"], "permissions": ["mlflow:read"],
        "tenants": {"T1": {"roles": ["mlflow-viewer"], "permissions": []}},
        "email": "bench@example.com", "name": "Bench User",
    });
    let encode = |value: &serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let message = format!("{}.{}", encode(&header), encode(&claims));
    let key = EncodingKey::from_rsa_der(include_bytes!("../tests/keys/rsa2048.der"));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::RS256).unwrap();
    format!("{message}.{signature}")
}

fn core() -> Core {
    let settings = Settings::new(PROJECT, "http://127.0.0.1:9");
    let core = Core::with_key_source(settings, Some(Arc::new(StaticKeys))).unwrap();
    core.load_keys().unwrap();
    core
}

fn verify(c: &mut Criterion) {
    let core = core();
    let token = token();
    let (message, signature) = token.rsplit_once('.').unwrap();
    let key = core.key_lookup().key("test-rsa-1", false).unwrap();
    core.validate_session(&token, false).unwrap();

    c.bench_function("rsa2048_signature_only", |b| {
        b.iter(|| {
            assert!(key
                .verify(black_box(message.as_bytes()), black_box(signature))
                .unwrap());
        });
    });
    c.bench_function("verify_cold", |b| {
        b.iter(|| core.verify_uncached(black_box(&token), false).unwrap());
    });
    c.bench_function("verify_cached", |b| {
        b.iter(|| core.validate_session(black_box(&token), false).unwrap());
    });
}

criterion_group!(benches, verify);
criterion_main!(benches);
