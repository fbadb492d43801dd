//! The claims model of a verified Descope token: who the user is and what
//! they were granted, read tolerantly from whatever shape the claims have.
//!
//! Shapes: a lone string where a list belongs counts as a one-element list;
//! null, a missing claim or any other type counts as empty; non-string items
//! of a list are ignored. A string is never iterated per character.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Roles and permissions granted in one scope (the project, or one tenant).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Role names.
    pub roles: Vec<String>,
    /// Permission names.
    pub permissions: Vec<String>,
}

impl Grants {
    /// Reads `roles` and `permissions` from a claims object (or a tenant entry).
    #[must_use]
    pub fn from_object(object: &Map<String, Value>) -> Self {
        Self {
            roles: string_list(object.get("roles")),
            permissions: string_list(object.get("permissions")),
        }
    }
}

/// Everything this product reads from a verified token, plus every claim.
#[derive(Debug, Clone)]
pub struct Claims {
    /// `dsub` when it is a non-empty string, else `sub`.
    pub user_id: String,
    /// The configured username claim when it is a non-empty string (numbers
    /// are written out), else the user id.
    pub username: String,
    /// `email`, when a string.
    pub email: Option<String>,
    /// `name`, when a string.
    pub name: Option<String>,
    /// Project-level roles and permissions.
    pub grants: Grants,
    /// Per-tenant roles and permissions, by tenant id.
    pub tenants: BTreeMap<String, Grants>,
    /// `dct`: the currently selected tenant.
    pub current_tenant: Option<String>,
    /// `exp`, unix seconds.
    pub expires_at: i64,
    /// `iat`, unix seconds, when present and numeric.
    pub issued_at: Option<i64>,
    /// Every claim, as received.
    pub raw: Map<String, Value>,
}

impl Claims {
    /// Builds the model from a verified payload.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] when the token names no subject.
    pub fn from_payload(
        raw: Map<String, Value>,
        expires_at: i64,
        username_claim: &str,
    ) -> Result<Self> {
        let user_id = non_empty_string(raw.get("dsub"))
            .or_else(|| non_empty_string(raw.get("sub")))
            .ok_or_else(|| Error::invalid("token names no subject (sub)"))?;
        let username = username_from(raw.get(username_claim)).unwrap_or_else(|| user_id.clone());
        Ok(Self {
            username,
            email: raw.get("email").and_then(Value::as_str).map(str::to_owned),
            name: raw.get("name").and_then(Value::as_str).map(str::to_owned),
            grants: Grants::from_object(&raw),
            tenants: tenant_grants(raw.get("tenants")),
            current_tenant: non_empty_string(raw.get("dct")),
            issued_at: raw.get("iat").and_then(Value::as_i64),
            expires_at,
            user_id,
            raw,
        })
    }

    /// Approximate heap size, for the session cache's byte bound.
    #[must_use]
    pub fn approximate_size(&self) -> usize {
        let grants = |grants: &Grants| {
            grants
                .roles
                .iter()
                .chain(&grants.permissions)
                .map(|item| item.len() + 24)
                .sum::<usize>()
        };
        let raw: usize = self
            .raw
            .iter()
            .map(|(name, value)| name.len() + value_size(value))
            .sum();
        let tenants: usize = self
            .tenants
            .iter()
            .map(|(id, tenant)| id.len() + 64 + grants(tenant))
            .sum();
        256 + self.user_id.len() + self.username.len() + grants(&self.grants) + tenants + raw
    }
}

fn value_size(value: &Value) -> usize {
    match value {
        Value::String(text) => 32 + text.len(),
        Value::Array(items) => 32 + items.iter().map(value_size).sum::<usize>(),
        Value::Object(members) => {
            48 + members
                .iter()
                .map(|(name, value)| 32 + name.len() + value_size(value))
                .sum::<usize>()
        }
        _ => 32,
    }
}

/// A list-of-strings claim read tolerantly (see the module docs).
#[must_use]
pub fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// The `tenants` claim read tolerantly: an object of tenant entries (an entry
/// that is not an object, such as `{}` or null, grants nothing), or a list of
/// tenant ids (or one id) with no grants.
#[must_use]
pub fn tenant_grants(value: Option<&Value>) -> BTreeMap<String, Grants> {
    match value {
        Some(Value::Object(entries)) => entries
            .iter()
            .map(|(id, entry)| {
                let grants = entry
                    .as_object()
                    .map(Grants::from_object)
                    .unwrap_or_default();
                (id.clone(), grants)
            })
            .collect(),
        Some(list @ (Value::Array(_) | Value::String(_))) => string_list(Some(list))
            .into_iter()
            .map(|id| (id, Grants::default()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn non_empty_string(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}

fn username_from(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(payload: &Value, username_claim: &str) -> Result<Claims> {
        Claims::from_payload(payload.as_object().unwrap().clone(), 100, username_claim)
    }

    #[test]
    fn dsub_wins_over_sub() {
        let model = claims(&json!({"sub": "K2key", "dsub": "U2user"}), "sub").unwrap();
        assert_eq!(model.user_id, "U2user");
        let model = claims(&json!({"sub": "U2user", "dsub": ""}), "sub").unwrap();
        assert_eq!(model.user_id, "U2user");
    }

    #[test]
    fn token_without_subject_fails() {
        for payload in [json!({}), json!({"sub": ""}), json!({"sub": 7})] {
            assert!(claims(&payload, "sub").is_err(), "{payload}");
        }
    }

    #[test]
    fn username_uses_the_configured_claim_or_falls_back_to_user_id() {
        let payload = json!({"sub": "U2a", "email": "a@example.com", "num": 42, "empty": ""});
        assert_eq!(claims(&payload, "email").unwrap().username, "a@example.com");
        assert_eq!(claims(&payload, "num").unwrap().username, "42");
        assert_eq!(claims(&payload, "empty").unwrap().username, "U2a");
        assert_eq!(claims(&payload, "absent").unwrap().username, "U2a");
    }

    #[test]
    fn roles_as_a_string_count_as_one_role() {
        let model = claims(&json!({"sub": "U", "roles": "mlflow-editor"}), "sub").unwrap();
        assert_eq!(model.grants.roles, vec!["mlflow-editor"]);
    }

    #[test]
    fn roles_null_missing_or_odd_are_empty() {
        for roles in [json!(null), json!(7), json!({"a": 1})] {
            let model = claims(&json!({"sub": "U", "roles": roles}), "sub").unwrap();
            assert!(model.grants.roles.is_empty());
        }
        assert!(claims(&json!({"sub": "U"}), "sub")
            .unwrap()
            .grants
            .roles
            .is_empty());
    }

    #[test]
    fn non_string_items_are_ignored() {
        let model = claims(
            &json!({"sub": "U", "permissions": ["a", 1, null, ["b"], "c"]}),
            "sub",
        );
        assert_eq!(model.unwrap().grants.permissions, vec!["a", "c"]);
    }

    #[test]
    fn tenants_object_with_empty_entries_has_no_grants() {
        let payload = json!({"sub": "U", "tenants": {
            "T1": {"roles": ["mlflow-viewer"], "permissions": "mlflow:read"},
            "T2": {},
            "T3": null,
        }});
        let model = claims(&payload, "sub").unwrap();
        assert_eq!(model.tenants["T1"].roles, vec!["mlflow-viewer"]);
        assert_eq!(model.tenants["T1"].permissions, vec!["mlflow:read"]);
        assert_eq!(model.tenants["T2"], Grants::default());
        assert_eq!(model.tenants["T3"], Grants::default());
    }

    #[test]
    fn tenants_as_a_list_are_ids_without_grants() {
        let model = claims(&json!({"sub": "U", "tenants": ["T1", {}, 3, "T2"]}), "sub").unwrap();
        assert_eq!(model.tenants.keys().collect::<Vec<_>>(), vec!["T1", "T2"]);
        let model = claims(&json!({"sub": "U", "tenants": "T9"}), "sub").unwrap();
        assert_eq!(model.tenants.keys().collect::<Vec<_>>(), vec!["T9"]);
    }

    #[test]
    fn every_claim_is_kept() {
        let payload = json!({"sub": "U", "nsec": {"team": "ml"}, "amr": ["oauth"], "dct": "T1"});
        let model = claims(&payload, "sub").unwrap();
        assert_eq!(model.raw["nsec"]["team"], "ml");
        assert_eq!(model.current_tenant.as_deref(), Some("T1"));
        assert!(model.approximate_size() > 256);
    }
}
