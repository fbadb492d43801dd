//! Arbitrary JSON as a claims object: claim extraction and the level mapping
//! under fuzzer-chosen admin roles, default level and tenant, compared with
//! the reference reading of contract §5 in `src/lib.rs`.
//!
//! Input: two selector bytes (bits of the policy), then JSON text. A JSON
//! value that is not an object is put in every list-shaped claim instead.

#![no_main]

use _core::claims::{string_list, tenant_grants, Claims};
use _core::levels::{Level, Policy};
use _core::token::check_audience;
use libfuzzer_sys::fuzz_target;
use mlflow_descope_auth_fuzz::{grants_nothing, reference_level, strings, PROJECT};
use serde_json::{json, Map, Value};

/// The `exp` handed to the claims model (verification is not fuzzed here).
const NOW_EXP: i64 = 1_800_000_600;

/// Admin-role candidates, including ones that collide with the mapped roles,
/// a one-letter role (per-character iteration would match it) and "".
const ADMIN_CANDIDATES: [&str; 6] = ["admin", "mlflow-admin", "a", "", "mlflow-viewer", "T1"];

fn policy(bits: u8, more: u8) -> Policy {
    let default = [
        Level::NoPermissions,
        Level::Read,
        Level::Edit,
        Level::Manage,
    ];
    let tenant = match (bits >> 2) & 0b11 {
        0 | 1 => None,
        2 => Some("T1".to_owned()),
        _ => Some("T2".to_owned()),
    };
    let admin_roles = ADMIN_CANDIDATES
        .iter()
        .enumerate()
        .filter(|(index, _)| more & (1 << index) != 0)
        .map(|(_, role)| (*role).to_owned())
        .collect();
    Policy {
        admin_roles,
        default: default[usize::from(bits & 0b11)],
        tenant,
    }
}

fn as_claims(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(object) => object,
        odd => {
            let object = json!({
                "sub": "U2odd", "roles": odd, "permissions": odd, "tenants": odd, "dct": odd,
                "aud": odd,
            });
            object.as_object().cloned().unwrap_or_default()
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [bits, more, json @ ..] = data else {
        return;
    };
    let Ok(value) = serde_json::from_slice::<Value>(json) else {
        return;
    };
    // The tolerant readers on the value itself, whatever its shape.
    let list = string_list(Some(&value));
    assert_eq!(
        list,
        strings(Some(&value)),
        "string items, never characters"
    );
    let _ = tenant_grants(Some(&value));

    let raw = as_claims(value);
    let policy = policy(*bits, *more);
    let _ = check_audience(&raw, None, PROJECT);
    let _ = check_audience(&raw, Some(&["app-1".to_owned()]), PROJECT);

    let has_subject = ["dsub", "sub"].iter().any(|name| {
        raw.get(*name)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    });
    let model = Claims::from_payload(raw.clone(), NOW_EXP, "email");
    assert_eq!(
        model.is_ok(),
        has_subject,
        "a subject is required, and enough"
    );
    let Ok(model) = model else {
        return;
    };
    let _ = model.approximate_size();

    let level = policy.level_for(&model);
    assert_eq!(level, reference_level(&raw, &policy), "contract §5");

    // The brief's invariants, stated directly.
    if policy.tenant.is_none() && grants_nothing(&raw, &policy.admin_roles) {
        assert_eq!(level, policy.default, "nothing granted: the default");
    }
    if let Some(tenant) = &policy.tenant {
        let listed = match raw.get("tenants") {
            Some(Value::Object(entries)) => entries.contains_key(tenant),
            None | Some(Value::Null) => {
                raw.get("dct").and_then(Value::as_str) == Some(tenant.as_str())
            }
            Some(other) => strings(Some(other)).contains(&tenant.as_str()),
        };
        if !listed {
            assert_eq!(level, Level::NoPermissions, "outside the tenant: nothing");
        }
    }
});
