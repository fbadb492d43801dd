//! What the fuzz targets share: the committed test key set as a fixed,
//! in-memory key lookup, the rules tokens are checked against, a signer, and
//! a reference model of the permission mapping (contract §5) written
//! independently of `levels.rs`, so the fuzzer can compare the two.

use std::sync::{Arc, OnceLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Map, Value};

use _core::error::{Error, Result};
use _core::keys::{parse_key_set, KeyLookup, KeyMap, VerifyKey};
use _core::levels::{Level, Policy};
use _core::token::Rules;

/// The project the seed corpus is issued for (`fuzz/make_corpus.py` uses it too).
pub const PROJECT: &str = "P2FuzzProject0001";

/// The fixed "now" of every check: after the corpus tokens' `iat`, before
/// their `exp` (the expired ones excepted).
pub const NOW: i64 = 1_800_000_000;

/// [`NOW`] as a float, for comparing with fractional time claims.
pub const NOW_F64: f64 = 1_800_000_000.0;

const JWKS: &str = include_str!("../../tests/keys/jwks.json");

/// A fixed key lookup over the committed test key set; never touches the network.
pub struct StaticKeys(KeyMap);

impl StaticKeys {
    /// The four committed test keys, parsed once per process.
    ///
    /// # Panics
    /// When the committed key set does not parse (a broken checkout).
    #[must_use]
    pub fn shared() -> &'static Self {
        static KEYS: OnceLock<StaticKeys> = OnceLock::new();
        KEYS.get_or_init(|| {
            let (keys, skipped) = parse_key_set(JWKS.as_bytes()).expect("committed key set");
            assert_eq!(skipped, 0, "every committed test key is usable");
            Self(keys)
        })
    }
}

impl KeyLookup for StaticKeys {
    fn key(&self, kid: &str, _blocking: bool) -> Result<Arc<VerifyKey>> {
        self.0
            .get(kid)
            .cloned()
            .ok_or_else(|| Error::InvalidToken("unknown signing key (kid)".to_owned()))
    }
}

/// The rules every target verifies against (the core's defaults).
#[must_use]
pub fn rules() -> Rules {
    Rules {
        project_id: PROJECT.to_owned(),
        leeway: 5,
        max_token_bytes: 16384,
    }
}

/// One of the committed private keys, with its kid and algorithm.
pub struct Signer {
    /// The kid the key set publishes it under.
    pub kid: &'static str,
    /// Its algorithm, as `jsonwebtoken` names it.
    pub alg: Algorithm,
    /// Its algorithm as written in a JWT header.
    pub alg_name: &'static str,
    key: EncodingKey,
}

/// The four committed private keys, chosen by a fuzz-input byte.
///
/// # Panics
/// When a committed key does not load (a broken checkout).
#[must_use]
pub fn signer(choice: u8) -> &'static Signer {
    static SIGNERS: OnceLock<Vec<Signer>> = OnceLock::new();
    let signers = SIGNERS.get_or_init(|| {
        let rsa = |der: &[u8]| EncodingKey::from_rsa_der(der);
        let ec = |der: &[u8]| EncodingKey::from_ec_der(der);
        vec![
            Signer {
                kid: "test-rsa-1",
                alg: Algorithm::RS256,
                alg_name: "RS256",
                key: rsa(include_bytes!("../../tests/keys/rsa2048.der")),
            },
            Signer {
                kid: "test-rsa-2",
                alg: Algorithm::RS256,
                alg_name: "RS256",
                key: rsa(include_bytes!("../../tests/keys/rsa2048-b.der")),
            },
            Signer {
                kid: "test-ec-256",
                alg: Algorithm::ES256,
                alg_name: "ES256",
                key: ec(include_bytes!("../../tests/keys/ec-p256.der")),
            },
            Signer {
                kid: "test-ec-384",
                alg: Algorithm::ES384,
                alg_name: "ES384",
                key: ec(include_bytes!("../../tests/keys/ec-p384.der")),
            },
        ]
    });
    &signers[usize::from(choice) % signers.len()]
}

impl Signer {
    /// A token over raw header and payload bytes, with a real signature.
    ///
    /// # Panics
    /// When signing fails (it does not for these keys).
    #[must_use]
    pub fn sign(&self, header: &[u8], payload: &[u8]) -> String {
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &self.key, self.alg).expect("signing");
        format!("{message}.{signature}")
    }
}

/// A list-of-strings claim as the contract reads it: a string is one item,
/// an array's string items count, anything else is empty.
#[must_use]
pub fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Contract §5, read literally, for one scope (the project or one tenant).
fn reference_granted(scope: Option<&Map<String, Value>>, admin_roles: &[String]) -> Option<Level> {
    let scope = scope?;
    let roles = strings(scope.get("roles")).into_iter().map(|role| {
        if admin_roles.iter().any(|admin| admin == role) {
            return Some(Level::Manage);
        }
        match role {
            "mlflow-manager" => Some(Level::Manage),
            "mlflow-editor" => Some(Level::Edit),
            "mlflow-viewer" => Some(Level::Read),
            _ => None,
        }
    });
    let permissions = strings(scope.get("permissions"))
        .into_iter()
        .map(|permission| match permission {
            "mlflow:manage" => Some(Level::Manage),
            "mlflow:edit" | "mlflow:write" => Some(Level::Edit),
            "mlflow:read" => Some(Level::Read),
            _ => None,
        });
    roles.chain(permissions).flatten().max()
}

/// The level a claims object earns under `policy`, computed from the raw
/// JSON without the core's claims model.
#[must_use]
pub fn reference_level(raw: &Map<String, Value>, policy: &Policy) -> Level {
    let Some(tenant) = policy.tenant.as_deref() else {
        return reference_granted(Some(raw), &policy.admin_roles).unwrap_or(policy.default);
    };
    let in_tenant = match raw.get("tenants") {
        // An entry that is not an object puts the user in the tenant with no grants.
        Some(Value::Object(entries)) => entries.get(tenant).map(Value::as_object),
        Some(list @ (Value::Array(_) | Value::String(_))) => {
            strings(Some(list)).contains(&tenant).then_some(None)
        }
        // "Tenant only" token template: grants at the top level, `dct` names the tenant.
        None | Some(Value::Null) => raw
            .get("dct")
            .and_then(Value::as_str)
            .is_some_and(|dct| !dct.is_empty() && dct == tenant)
            .then_some(Some(raw)),
        Some(_) => None,
    };
    match in_tenant {
        None => Level::NoPermissions,
        Some(scope) => reference_granted(scope, &policy.admin_roles).unwrap_or(policy.default),
    }
}

/// True when no string anywhere in the scope's `roles`/`permissions` could
/// grant anything: no admin role, no `mlflow-*` role, no `mlflow:*` permission.
#[must_use]
pub fn grants_nothing(scope: &Map<String, Value>, admin_roles: &[String]) -> bool {
    let roles = strings(scope.get("roles"));
    let permissions = strings(scope.get("permissions"));
    !roles
        .iter()
        .any(|role| role.starts_with("mlflow-") || admin_roles.iter().any(|admin| admin == role))
        && !permissions
            .iter()
            .any(|permission| permission.starts_with("mlflow:"))
}
