//! MLflow permission levels, and the mapping from Descope roles and
//! permissions to them.

use std::fmt;

use crate::claims::{Claims, Grants};

/// A user's MLflow permission level, ordered from none to full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Signed in, but allowed nothing.
    NoPermissions,
    /// Read experiments, runs, models, traces and artifacts.
    Read,
    /// Create and change them.
    Edit,
    /// Delete whole objects and administer the server.
    Manage,
}

impl Level {
    /// The name used in configuration, logs and responses.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NoPermissions => "NO_PERMISSIONS",
            Self::Read => "READ",
            Self::Edit => "EDIT",
            Self::Manage => "MANAGE",
        }
    }

    /// Parses a level name as written in configuration (exact, upper case).
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "NO_PERMISSIONS" => Some(Self::NoPermissions),
            "READ" => Some(Self::Read),
            "EDIT" => Some(Self::Edit),
            "MANAGE" => Some(Self::Manage),
            _ => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How roles and permissions become a level (contract §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Any of these roles gives MANAGE.
    pub admin_roles: Vec<String>,
    /// The level of a user none of whose grants match.
    pub default: Level,
    /// When set, only this tenant's grants count.
    pub tenant: Option<String>,
}

impl Policy {
    /// The level `claims` earn under this policy.
    ///
    /// With a tenant set, that tenant's grants from `tenants` are used; a
    /// token without a `tenants` claim whose `dct` is the tenant carries the
    /// tenant's grants at the top level ("tenant only" token template). A
    /// user outside the tenant gets [`Level::NoPermissions`], not the default.
    #[must_use]
    pub fn level_for(&self, claims: &Claims) -> Level {
        let grants = match &self.tenant {
            None => &claims.grants,
            Some(tenant) => match claims.tenants.get(tenant) {
                Some(grants) => grants,
                None if claims
                    .raw
                    .get("tenants")
                    .is_none_or(serde_json::Value::is_null)
                    && claims.current_tenant.as_deref() == Some(tenant) =>
                {
                    &claims.grants
                }
                None => return Level::NoPermissions,
            },
        };
        self.granted(grants).unwrap_or(self.default)
    }

    /// The highest level any grant matches, if any does.
    fn granted(&self, grants: &Grants) -> Option<Level> {
        let from_roles = grants.roles.iter().filter_map(|role| {
            if self.admin_roles.iter().any(|admin| admin == role) {
                return Some(Level::Manage);
            }
            match role.as_str() {
                "mlflow-manager" => Some(Level::Manage),
                "mlflow-editor" => Some(Level::Edit),
                "mlflow-viewer" => Some(Level::Read),
                _ => None,
            }
        });
        let from_permissions = grants
            .permissions
            .iter()
            .filter_map(|permission| match permission.as_str() {
                "mlflow:manage" => Some(Level::Manage),
                "mlflow:edit" | "mlflow:write" => Some(Level::Edit),
                "mlflow:read" => Some(Level::Read),
                _ => None,
            });
        from_roles.chain(from_permissions).max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn policy(default: Level, tenant: Option<&str>) -> Policy {
        Policy {
            admin_roles: vec!["admin".to_owned(), "mlflow-admin".to_owned()],
            default,
            tenant: tenant.map(str::to_owned),
        }
    }

    fn level(payload: &Value, policy: &Policy) -> Level {
        let raw = payload.as_object().unwrap().clone();
        policy.level_for(&Claims::from_payload(raw, 0, "sub").unwrap())
    }

    #[test]
    fn admin_role_gives_manage() {
        let read = policy(Level::Read, None);
        assert_eq!(
            level(&json!({"sub": "U", "roles": ["admin"]}), &read),
            Level::Manage
        );
        assert_eq!(
            level(&json!({"sub": "U", "roles": "mlflow-admin"}), &read),
            Level::Manage
        );
    }

    #[test]
    fn permissions_and_roles_map_and_the_highest_wins() {
        let none = policy(Level::NoPermissions, None);
        let cases = [
            (json!({"permissions": ["mlflow:read"]}), Level::Read),
            (json!({"permissions": ["mlflow:write"]}), Level::Edit),
            (
                json!({"permissions": ["mlflow:edit", "mlflow:read"]}),
                Level::Edit,
            ),
            (json!({"permissions": ["mlflow:manage"]}), Level::Manage),
            (json!({"roles": ["mlflow-viewer"]}), Level::Read),
            (
                json!({"roles": ["mlflow-editor", "mlflow-viewer"]}),
                Level::Edit,
            ),
            (json!({"roles": ["mlflow-manager"]}), Level::Manage),
            (
                json!({"roles": ["mlflow-viewer"], "permissions": ["mlflow:manage"]}),
                Level::Manage,
            ),
            (
                json!({"roles": ["mlflow-admin-ish"], "permissions": ["read"]}),
                Level::NoPermissions,
            ),
        ];
        for (mut payload, expected) in cases {
            payload["sub"] = "U".into();
            assert_eq!(level(&payload, &none), expected, "{payload}");
        }
    }

    #[test]
    fn nothing_matched_gives_the_default() {
        let edit = policy(Level::Edit, None);
        assert_eq!(
            level(&json!({"sub": "U", "roles": null}), &edit),
            Level::Edit
        );
        assert_eq!(level(&json!({"sub": "U"}), &edit), Level::Edit);
    }

    #[test]
    fn a_role_string_is_not_iterated_per_character() {
        // "admin" spelled out as characters must not match any single-letter role.
        let odd = Policy {
            admin_roles: vec!["a".to_owned()],
            default: Level::NoPermissions,
            tenant: None,
        };
        assert_eq!(
            level(&json!({"sub": "U", "roles": "admin"}), &odd),
            Level::NoPermissions
        );
    }

    #[test]
    fn with_a_tenant_only_that_tenants_grants_count() {
        let t1 = policy(Level::Read, Some("T1"));
        let payload = json!({"sub": "U", "roles": ["admin"], "tenants": {
            "T1": {"roles": ["mlflow-editor"]},
            "T2": {"roles": ["admin"]},
        }});
        assert_eq!(level(&payload, &t1), Level::Edit);
        let empty_entry = json!({"sub": "U", "roles": ["admin"], "tenants": {"T1": {}}});
        assert_eq!(level(&empty_entry, &t1), Level::Read);
    }

    #[test]
    fn a_user_outside_the_tenant_gets_no_permissions() {
        let t1 = policy(Level::Read, Some("T1"));
        let payload =
            json!({"sub": "U", "roles": ["admin"], "tenants": {"T2": {"roles": ["admin"]}}});
        assert_eq!(level(&payload, &t1), Level::NoPermissions);
        assert_eq!(
            level(&json!({"sub": "U", "roles": ["admin"]}), &t1),
            Level::NoPermissions
        );
    }

    #[test]
    fn tenant_only_template_uses_top_level_grants_when_dct_matches() {
        let t1 = policy(Level::Read, Some("T1"));
        let payload = json!({"sub": "U", "dct": "T1", "roles": ["mlflow-manager"]});
        assert_eq!(level(&payload, &t1), Level::Manage);
        let other = json!({"sub": "U", "dct": "T2", "roles": ["mlflow-manager"]});
        assert_eq!(level(&other, &t1), Level::NoPermissions);
        let with_tenants = json!({"sub": "U", "dct": "T1", "roles": ["admin"], "tenants": {}});
        assert_eq!(level(&with_tenants, &t1), Level::NoPermissions);
    }

    #[test]
    fn tenants_as_a_list_put_the_user_in_the_tenant_with_the_default() {
        let t1 = policy(Level::Read, Some("T1"));
        assert_eq!(
            level(&json!({"sub": "U", "tenants": ["T1"]}), &t1),
            Level::Read
        );
    }

    #[test]
    fn levels_are_ordered_from_none_to_manage() {
        assert!(Level::NoPermissions < Level::Read);
        assert!(Level::Read < Level::Edit);
        assert!(Level::Edit < Level::Manage);
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for level in [
            Level::NoPermissions,
            Level::Read,
            Level::Edit,
            Level::Manage,
        ] {
            assert_eq!(Level::parse(level.as_str()), Some(level));
        }
        assert_eq!(Level::parse("read"), None);
        assert_eq!(Level::parse("ADMIN"), None);
    }
}
