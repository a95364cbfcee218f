//! Users and roles, pure: the cluster-only `users` section read once into typed accounts,
//! and what each role may do.

use russh::keys::PublicKey;

use crate::model::{Node, Value};

/// What a user may do: the AsyncOS predefined roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, including `cluster create`.
    Administrator,
    /// Plan and apply.
    Operator,
    /// Plan, check, show and log only (AsyncOS's "Read-Only Operator").
    ReadOnly,
    /// AsyncOS's guest: read-only in Strata.
    Guest,
    /// AsyncOS's technician: read-only in Strata.
    Technician,
    /// AsyncOS's help-desk user: read-only in Strata.
    HelpDesk,
}

impl Role {
    /// Every role, as the `users` schema lists them.
    pub const ALL: [Role; 6] = [
        Role::Administrator,
        Role::Operator,
        Role::ReadOnly,
        Role::Guest,
        Role::Technician,
        Role::HelpDesk,
    ];

    /// Reads a role name from the `users` section.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::Operator => "operator",
            Role::ReadOnly => "read-only",
            Role::Guest => "guest",
            Role::Technician => "technician",
            Role::HelpDesk => "help-desk",
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

/// The `users` section could not be read as accounts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsersError {
    /// A user without a name.
    #[error("a user in the users section has no name")]
    Unnamed,
    /// A role Strata does not know.
    #[error("user `{user}` has role `{role}`, which is not a role")]
    UnknownRole {
        /// The user.
        user: String,
        /// What the section says.
        role: String,
    },
}

/// Reads the accounts of a `users` section node. A key that does not parse is left out
/// (it could never log in); a user without a name or with an unknown role is an error.
pub fn parse_users(section: &Node) -> Result<Vec<User>, UsersError> {
    section
        .children
        .iter()
        .filter(|n| n.name == "user")
        .map(|n| {
            let name = n
                .args
                .first()
                .and_then(Value::as_str)
                .ok_or(UsersError::Unnamed)?
                .to_owned();
            let string = |k: &str| n.prop(k).and_then(Value::as_str).map(str::to_owned);
            let role_text = string("role").unwrap_or_default();
            let role = Role::parse(&role_text).ok_or_else(|| UsersError::UnknownRole {
                user: name.clone(),
                role: role_text,
            })?;
            let keys = n
                .children
                .iter()
                .filter(|k| k.name == "key")
                .filter_map(|k| k.args.first()?.as_str())
                .filter_map(|k| PublicKey::from_openssh(k).ok())
                .collect();
            Ok(User {
                name,
                role,
                passphrase_hash: string("passphrase-hash"),
                keys,
                locked: n.prop("locked") == Some(&Value::Bool(true)),
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
        let doc: kdl::KdlDocument = text.parse().unwrap();
        let users = parse_users(&Node::from_kdl(&doc.nodes()[0])).unwrap();
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
        assert!(!Role::Guest.may_apply() && Role::parse("help-desk") == Some(Role::HelpDesk));
    }

    #[test]
    fn an_unknown_role_is_an_error_naming_the_user() {
        let doc: kdl::KdlDocument = "users { user \"eve\" role=\"root\"; }".parse().unwrap();
        let err = parse_users(&Node::from_kdl(&doc.nodes()[0])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "user `eve` has role `root`, which is not a role"
        );
    }
}
