//! Test helpers shared by the unit tests: the committed test keys, a token
//! factory, and a key lookup over the test key set.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::keys::{parse_key_set, KeyLookup, KeyMap, VerifyKey};

pub const PROJECT: &str = "P2TestProject0001";
pub const JWKS: &str = include_str!("../tests/keys/jwks.json");

pub fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_der(include_bytes!("../tests/keys/rsa2048.der"))
}

pub fn rsa_key_b() -> EncodingKey {
    EncodingKey::from_rsa_der(include_bytes!("../tests/keys/rsa2048-b.der"))
}

pub fn ec256_key() -> EncodingKey {
    EncodingKey::from_ec_der(include_bytes!("../tests/keys/ec-p256.der"))
}

pub fn ec384_key() -> EncodingKey {
    EncodingKey::from_ec_der(include_bytes!("../tests/keys/ec-p384.der"))
}

/// The JWK of one test key, by kid.
pub fn jwk(kid: &str) -> Value {
    let document: Value = serde_json::from_str(JWKS).unwrap();
    document["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == kid)
        .unwrap()
        .clone()
}

/// A key set document holding the given test keys.
pub fn jwks(kids: &[&str]) -> String {
    let keys: Vec<Value> = kids.iter().map(|kid| jwk(kid)).collect();
    json!({ "keys": keys }).to_string()
}

/// Descope-style session claims issued at `now`, with `overrides` applied
/// (a `null` override keeps the claim with the value null).
pub fn payload(now: i64, overrides: &Value) -> Value {
    let mut claims = json!({
        "sub": "U2alice",
        "iss": format!("https://api.descope.com/{PROJECT}"),
        "iat": now,
        "exp": now + 600,
        "drn": "DS",
        "amr": ["email"],
        "roles": ["mlflow-editor"],
        "permissions": [],
        "tenants": {},
    });
    for (name, value) in overrides.as_object().unwrap() {
        claims[name] = value.clone();
    }
    claims
}

fn encode(value: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(value)
}

/// Signs arbitrary payload bytes under an arbitrary header.
pub fn sign_bytes(header: &Value, payload: &[u8], key: &EncodingKey, alg: Algorithm) -> String {
    let message = format!(
        "{}.{}",
        encode(&serde_json::to_vec(header).unwrap()),
        encode(payload)
    );
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

pub fn sign_raw(header: &Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
    sign_bytes(header, &serde_json::to_vec(claims).unwrap(), key, alg)
}

pub fn rs256(claims: &Value) -> String {
    let header = json!({"alg": "RS256", "kid": "test-rsa-1", "typ": "JWT"});
    sign_raw(&header, claims, &rsa_key(), Algorithm::RS256)
}

pub fn rs256_b(claims: &Value) -> String {
    let header = json!({"alg": "RS256", "kid": "test-rsa-2", "typ": "JWT"});
    sign_raw(&header, claims, &rsa_key_b(), Algorithm::RS256)
}

pub fn es256(claims: &Value) -> String {
    let header = json!({"alg": "ES256", "kid": "test-ec-256", "typ": "JWT"});
    sign_raw(&header, claims, &ec256_key(), Algorithm::ES256)
}

pub fn es384(claims: &Value) -> String {
    let header = json!({"alg": "ES384", "kid": "test-ec-384", "typ": "JWT"});
    sign_raw(&header, claims, &ec384_key(), Algorithm::ES384)
}

pub fn hmac(header: &Value, claims: &Value, secret: &[u8]) -> String {
    sign_raw(
        header,
        claims,
        &EncodingKey::from_secret(secret).unwrap(),
        Algorithm::HS256,
    )
}

/// A token with an empty-looking but present signature segment.
pub fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.c2ln",
        encode(&serde_json::to_vec(header).unwrap()),
        encode(&serde_json::to_vec(claims).unwrap())
    )
}

/// A fixed key lookup over the committed test key set.
pub struct Keys(KeyMap);

impl Keys {
    pub fn all() -> Self {
        Self(parse_key_set(JWKS.as_bytes()).unwrap().0)
    }
}

impl KeyLookup for Keys {
    fn key(&self, kid: &str, _blocking: bool) -> Result<Arc<VerifyKey>> {
        self.0
            .get(kid)
            .cloned()
            .ok_or_else(|| Error::invalid("unknown signing key (kid)"))
    }
}

/// One request as the stub server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: String,
}

/// What the stub server does with a request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Answers with a status, headers and a body.
    Answer(u16, Vec<(String, String)>, String),
    /// Holds the connection open this long, then closes it unanswered.
    Hang(std::time::Duration),
    /// Closes the connection unanswered.
    Close,
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Self {
        Self::Answer(status, Vec::new(), body.to_owned())
    }

    pub fn with_header(self, name: &str, value: &str) -> Self {
        match self {
            Self::Answer(status, mut headers, body) => {
                headers.push((name.to_owned(), value.to_owned()));
                Self::Answer(status, headers, body)
            }
            other => other,
        }
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// A tiny HTTP/1.1 server on 127.0.0.1 for tests: one thread per
/// connection, one request per connection, stopped when dropped.
pub struct StubServer {
    port: u16,
    stop: Arc<std::sync::atomic::AtomicBool>,
    requests: Arc<parking_lot::Mutex<Vec<Request>>>,
}

impl StubServer {
    /// Answers with `replies` in order; the last one repeats.
    pub fn start(replies: Vec<Reply>) -> Self {
        let next = std::sync::atomic::AtomicUsize::new(0);
        Self::start_with(move |_| {
            let index = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            replies[index.min(replies.len() - 1)].clone()
        })
    }

    /// Answers each request with what `handler` says.
    pub fn start_with(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (stop_flag, log) = (stop.clone(), requests.clone());
        std::thread::spawn(move || {
            while !stop_flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (handler, log, stop) =
                            (handler.clone(), log.clone(), stop_flag.clone());
                        std::thread::spawn(move || serve(stream, &*handler, &log, &stop));
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(2)),
                }
            }
        });
        Self {
            port,
            stop,
            requests,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().clone()
    }

    pub fn count(&self, path_prefix: &str) -> usize {
        self.requests
            .lock()
            .iter()
            .filter(|request| request.path.starts_with(path_prefix))
            .count()
    }
}

impl Drop for StubServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn serve(
    mut stream: std::net::TcpStream,
    handler: &Handler,
    log: &parking_lot::Mutex<Vec<Request>>,
    stop: &std::sync::atomic::AtomicBool,
) {
    use std::io::{BufRead, BufReader, Read, Write};
    stream.set_nonblocking(false).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).unwrap_or(0) == 0 {
        return;
    }
    let mut words = first.split_whitespace();
    let method = words.next().unwrap_or_default().to_owned();
    let path = words.next().unwrap_or_default().to_owned();
    let (mut length, mut authorization) = (0usize, None);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or((&line, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap_or(0),
            "authorization" => authorization = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap_or_default();
    let request = Request {
        method,
        path,
        authorization,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let reply = handler(&request);
    log.lock().push(request);
    match reply {
        Reply::Answer(status, headers, body) => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                head += &[name.as_str(), ": ", value.as_str(), "\r\n"].concat();
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
        }
        Reply::Hang(duration) => {
            let until = std::time::Instant::now() + duration;
            while std::time::Instant::now() < until
                && !stop.load(std::sync::atomic::Ordering::SeqCst)
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        Reply::Close => {}
    }
}
