//! Users and roles, pure: the cluster-only `users` section parsed into accounts, and
//! what each role may do.

use russh::keys::PublicKey;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, including `cluster create`.
    Administrator,
    /// Plan and apply.
    Operator,
    /// Plan, check, show and log only (AsyncOS's "Read-Only Operator"; also guest,
    /// technician and help-desk, which Strata treats as read-only).
    ReadOnly,
}

impl Role {
    /// Reads a role name from the `users` section.
    pub fn parse(s: &str) -> Role {
        match s {
            "administrator" => Role::Administrator,
            "operator" => Role::Operator,
            _ => Role::ReadOnly,
        }
    }

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::Operator => "operator",
            Role::ReadOnly => "read-only",
        }
    }

    /// May this role commit change sets (apply, rollback)?
    pub fn may_apply(self) -> bool {
        matches!(self, Role::Administrator | Role::Operator)
    }

    /// May this role change membership (cluster create)?
    pub fn may_administer(self) -> bool {
        self == Role::Administrator
    }
}

/// One account.
#[derive(Debug, Clone)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// argon2id PHC string, if the user may log in with a passphrase.
    pub passphrase_hash: Option<String>,
    /// SSH public keys the user may log in with.
    pub keys: Vec<PublicKey>,
    /// A locked account cannot log in.
    pub locked: bool,
}

/// Parses a `users` section's canonical KDL. Keys that do not parse are skipped (the
/// schema check already validated the repo; a bad key simply cannot log in).
pub fn parse_users(section: &str) -> Vec<User> {
    let Ok(doc) = crate::config::parse_kdl(section) else {
        return Vec::new();
    };
    let Some(children) = doc.nodes().first().and_then(|n| n.children()) else {
        return Vec::new();
    };
    children
        .nodes()
        .iter()
        .filter(|n| n.name().value() == "user")
        .filter_map(|n| {
            let name = n.get(0)?.as_string()?.to_owned();
            let string = |k: &str| n.get(k).and_then(|v| v.as_string()).map(str::to_owned);
            let keys = n
                .children()
                .map(|c| {
                    c.nodes()
                        .iter()
                        .filter(|k| k.name().value() == "key")
                        .filter_map(|k| k.get(0)?.as_string())
                        .filter_map(|k| PublicKey::from_openssh(k).ok())
                        .collect()
                })
                .unwrap_or_default();
            Some(User {
                name,
                role: Role::parse(&string("role").unwrap_or_default()),
                passphrase_hash: string("passphrase-hash"),
                keys,
                locked: n.get("locked").and_then(|v| v.as_bool()).unwrap_or(false),
            })
        })
        .collect()
}

/// Hashes a passphrase as an argon2id PHC string (default parameters, random salt).
pub fn hash_passphrase(passphrase: &str) -> Result<String, String> {
    use argon2::password_hash::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(passphrase.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Checks a passphrase against a PHC string; false for a malformed hash.
pub fn verify_passphrase(passphrase: &str, hash: &str) -> bool {
    use argon2::password_hash::PasswordVerifier;
    argon2::Argon2::default()
        .verify_password(passphrase.as_bytes(), hash)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdZ7qJ8HiMf5Fxe6ThYtAczQh0wkZ7iMdQ1j6IcFuQ9 ada@example";

    #[test]
    fn users_parse_with_roles_keys_and_hashes() {
        let hash = hash_passphrase("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        let text = format!(
            "users {{\n user \"ada\" role=\"operator\" passphrase-hash=\"{hash}\" {{ key \"{KEY}\"; key \"not a key\" }}\n user \"ro\" role=\"read-only\" locked=#true\n}}\n"
        );
        let users = parse_users(&text);
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].role, Role::Operator);
        assert_eq!(users[0].keys.len(), 1);
        assert!(verify_passphrase(
            "correct horse",
            users[0].passphrase_hash.as_deref().unwrap()
        ));
        assert!(!verify_passphrase(
            "wrong",
            users[0].passphrase_hash.as_deref().unwrap()
        ));
        assert!(!verify_passphrase("x", "not a hash"));
        assert!(users[1].locked && !users[1].role.may_apply());
        assert!(Role::Operator.may_apply() && !Role::Operator.may_administer());
    }
}
