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

    /// Property tests: what holds for every claim set, not just the examples.
    mod properties {
        use super::*;
        use proptest::prelude::*;
        use proptest::sample::{select, subsequence};

        const ADMINS: [&str; 4] = ["admin", "mlflow-admin", "a", "mlflow-viewer"];

        /// Names that mean something to the mapping, near misses, and noise.
        fn name() -> impl Strategy<Value = String> {
            let meaningful = select(vec![
                "mlflow-manager",
                "mlflow-editor",
                "mlflow-viewer",
                "admin",
                "mlflow-admin",
                "mlflow:manage",
                "mlflow:edit",
                "mlflow:write",
                "mlflow:read",
                "MLflow-editor",
                "mlflow-editor ",
                "mlflow:Read",
                "mlflow",
                "a",
                "",
            ]);
            prop_oneof![meaningful.prop_map(str::to_owned), "[a-z:-]{0,12}"]
        }

        /// A name that no table and no candidate admin role can match.
        fn unrelated() -> impl Strategy<Value = String> {
            "[b-z]{2,10}-x"
        }

        fn names() -> impl Strategy<Value = Vec<String>> {
            prop::collection::vec(name(), 0..6)
        }

        fn policy_strategy() -> impl Strategy<Value = Policy> {
            let levels = vec![
                Level::NoPermissions,
                Level::Read,
                Level::Edit,
                Level::Manage,
            ];
            (subsequence(ADMINS.to_vec(), 0..=3), select(levels)).prop_map(|(admins, default)| {
                Policy {
                    admin_roles: admins.into_iter().map(str::to_owned).collect(),
                    default,
                    tenant: None,
                }
            })
        }

        /// Any JSON value, nested a few levels, with meaningful strings in it.
        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                name().prop_map(Value::from),
            ];
            leaf.prop_recursive(4, 32, 5, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
                    prop::collection::btree_map(name(), inner, 0..5)
                        .prop_map(|members| Value::Object(members.into_iter().collect())),
                ]
            })
        }

        /// Contract §5, role by role and permission by permission.
        fn contract_level(roles: &[String], permissions: &[String], policy: &Policy) -> Level {
            let from_roles = roles.iter().filter_map(|role| match role.as_str() {
                _ if policy.admin_roles.contains(role) => Some(Level::Manage),
                "mlflow-manager" => Some(Level::Manage),
                "mlflow-editor" => Some(Level::Edit),
                "mlflow-viewer" => Some(Level::Read),
                _ => None,
            });
            let from_permissions =
                permissions
                    .iter()
                    .filter_map(|permission| match permission.as_str() {
                        "mlflow:manage" => Some(Level::Manage),
                        "mlflow:edit" | "mlflow:write" => Some(Level::Edit),
                        "mlflow:read" => Some(Level::Read),
                        _ => None,
                    });
            from_roles
                .chain(from_permissions)
                .max()
                .unwrap_or(policy.default)
        }

        fn project_claims(roles: &[String], permissions: &[String]) -> Value {
            json!({"sub": "U", "roles": roles, "permissions": permissions})
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]

            #[test]
            fn level_is_exactly_what_the_grants_give(
                roles in names(), permissions in names(), policy in policy_strategy(),
            ) {
                let got = level(&project_claims(&roles, &permissions), &policy);
                prop_assert_eq!(got, contract_level(&roles, &permissions, &policy));
                let granting = roles.iter().any(|role| {
                    role.starts_with("mlflow-") || policy.admin_roles.contains(role)
                }) || permissions.iter().any(|permission| permission.starts_with("mlflow:"));
                if !granting {
                    prop_assert_eq!(got, policy.default);
                }
            }

            #[test]
            fn order_of_roles_and_permissions_never_matters(
                (roles, shuffled_roles) in names().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
                (permissions, shuffled_permissions) in names().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
                policy in policy_strategy(),
            ) {
                prop_assert_eq!(
                    level(&project_claims(&roles, &permissions), &policy),
                    level(&project_claims(&shuffled_roles, &shuffled_permissions), &policy)
                );
            }

            #[test]
            fn an_unrelated_role_or_permission_never_changes_the_level(
                roles in names(), permissions in names(), policy in policy_strategy(),
                extra in unrelated(), at in any::<prop::sample::Index>(),
            ) {
                let before = level(&project_claims(&roles, &permissions), &policy);
                let mut more_roles = roles.clone();
                more_roles.insert(at.index(roles.len() + 1), extra.clone());
                let mut more_permissions = permissions.clone();
                more_permissions.insert(at.index(permissions.len() + 1), format!("mlflow-{extra}"));
                prop_assert_eq!(level(&project_claims(&more_roles, &permissions), &policy), before);
                prop_assert_eq!(level(&project_claims(&roles, &more_permissions), &policy), before);
            }

            #[test]
            fn tenant_mode_ignores_project_level_grants(
                project_roles in names(), project_permissions in names(),
                tenant_roles in names(), tenant_permissions in names(),
                policy in policy_strategy(), listed in any::<bool>(),
            ) {
                let tenant = if listed { "T1" } else { "T2" };
                let payload = json!({
                    "sub": "U", "dct": "T1", "roles": project_roles,
                    "permissions": project_permissions,
                    "tenants": {tenant: {"roles": tenant_roles, "permissions": tenant_permissions}},
                });
                let in_t1 = Policy { tenant: Some("T1".to_owned()), ..policy };
                let expected = if listed {
                    contract_level(&tenant_roles, &tenant_permissions, &in_t1)
                } else {
                    Level::NoPermissions
                };
                prop_assert_eq!(level(&payload, &in_t1), expected);
            }

            #[test]
            fn odd_shapes_never_panic_and_a_string_is_one_item(
                roles in json_value(), permissions in json_value(), tenants in json_value(),
                dct in json_value(), sub in json_value(), policy in policy_strategy(),
            ) {
                let payload = json!({
                    "sub": sub, "roles": roles, "permissions": permissions,
                    "tenants": tenants, "dct": dct,
                });
                let raw = payload.as_object().unwrap().clone();
                if let Ok(claims) = Claims::from_payload(raw, 0, "sub") {
                    let in_t1 = Policy { tenant: Some("T1".to_owned()), ..policy.clone() };
                    let _ = (policy.level_for(&claims), in_t1.level_for(&claims));
                    let _ = claims.approximate_size();
                }
                for (one, wrapped) in [(&roles, json!([roles])), (&permissions, json!([permissions]))] {
                    if one.is_string() {
                        let as_list = |value: &Value| {
                            level(&json!({"sub": "U", "roles": value, "permissions": value}), &policy)
                        };
                        prop_assert_eq!(as_list(one), as_list(&wrapped));
                    }
                }
            }
        }
    }
}
