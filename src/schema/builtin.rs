//! The schemas compiled into the binary from the source tree's `schemas/` directory.

use std::sync::{Arc, OnceLock};

use crate::config::SourceFile;

/// (file name, contents) of every built-in schema file. Add new files here.
const BUILTIN: &[(&str, &str)] = &[
    ("alerts.kdl", include_str!("../../schemas/alerts.kdl")),
    (
        "bounce-profiles.kdl",
        include_str!("../../schemas/bounce-profiles.kdl"),
    ),
    (
        "change-freeze.kdl",
        include_str!("../../schemas/change-freeze.kdl"),
    ),
    (
        "cluster-mesh.kdl",
        include_str!("../../schemas/cluster-mesh.kdl"),
    ),
    (
        "default-gateway.kdl",
        include_str!("../../schemas/default-gateway.kdl"),
    ),
    (
        "destination-controls.kdl",
        include_str!("../../schemas/destination-controls.kdl"),
    ),
    (
        "dictionaries.kdl",
        include_str!("../../schemas/dictionaries.kdl"),
    ),
    ("dns.kdl", include_str!("../../schemas/dns.kdl")),
    (
        "drift-ignore.kdl",
        include_str!("../../schemas/drift-ignore.kdl"),
    ),
    ("ethernet.kdl", include_str!("../../schemas/ethernet.kdl")),
    (
        "feature-keys.kdl",
        include_str!("../../schemas/feature-keys.kdl"),
    ),
    (
        "global-unsubscribe.kdl",
        include_str!("../../schemas/global-unsubscribe.kdl"),
    ),
    ("hostname.kdl", include_str!("../../schemas/hostname.kdl")),
    (
        "interfaces.kdl",
        include_str!("../../schemas/interfaces.kdl"),
    ),
    (
        "ldap-queries.kdl",
        include_str!("../../schemas/ldap-queries.kdl"),
    ),
    (
        "ldap-servers.kdl",
        include_str!("../../schemas/ldap-servers.kdl"),
    ),
    ("listeners.kdl", include_str!("../../schemas/listeners.kdl")),
    ("ntp.kdl", include_str!("../../schemas/ntp.kdl")),
    ("ports.kdl", include_str!("../../schemas/ports.kdl")),
    ("rollout.kdl", include_str!("../../schemas/rollout.kdl")),
    ("routes.kdl", include_str!("../../schemas/routes.kdl")),
    (
        "routing-tables.kdl",
        include_str!("../../schemas/routing-tables.kdl"),
    ),
    (
        "scheduled-reports.kdl",
        include_str!("../../schemas/scheduled-reports.kdl"),
    ),
    (
        "smtp-auth-profiles.kdl",
        include_str!("../../schemas/smtp-auth-profiles.kdl"),
    ),
    (
        "smtp-routes.kdl",
        include_str!("../../schemas/smtp-routes.kdl"),
    ),
    ("ssh.kdl", include_str!("../../schemas/ssh.kdl")),
    (
        "text-resources.kdl",
        include_str!("../../schemas/text-resources.kdl"),
    ),
    ("timezone.kdl", include_str!("../../schemas/timezone.kdl")),
    ("users.kdl", include_str!("../../schemas/users.kdl")),
    ("xml-extra.kdl", include_str!("../../schemas/xml-extra.kdl")),
];

/// The built-in schema files, read once.
pub fn files() -> &'static [Arc<SourceFile>] {
    static FILES: OnceLock<Vec<Arc<SourceFile>>> = OnceLock::new();
    FILES.get_or_init(|| {
        BUILTIN
            .iter()
            .map(|(name, text)| SourceFile::new(format!("<builtin>/schemas/{name}"), *text))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::BUILTIN;
    use crate::schema::{Catalogue, NodeSpec};

    #[test]
    fn every_schema_file_is_listed_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".kdl"))
            .collect();
        on_disk.sort();
        let listed: Vec<&str> = BUILTIN.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            listed, on_disk,
            "BUILTIN must list every schemas/*.kdl, sorted by name"
        );
    }

    #[test]
    fn field_defaults_have_their_fields_type() {
        fn walk(spec: &NodeSpec, path: &str, bad: &mut Vec<String>) {
            for field in spec.args.iter().chain(spec.props.values()) {
                if let Some(Err(why)) = field.default.as_ref().map(|d| field.ty.check(d)) {
                    bad.push(format!("{path}: default of `{}`: {why}", field.name));
                }
            }
            for (name, child) in &spec.children {
                walk(&child.spec, &format!("{path} › {name}"), bad);
            }
        }
        let mut bad = Vec::new();
        for schema in Catalogue::builtin().sections.values() {
            walk(&schema.body, &schema.name, &mut bad);
        }
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }
}
