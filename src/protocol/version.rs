//! Which Strata versions share a cluster: the seed's rule that "a cluster must consist
//! entirely of machines running the same version", applied to Strata itself (the
//! appliances' own versions are compared by `validate` and `check`, see
//! [`crate::model::appliance`]).
//!
//! The rule, in one place ([`compatible`]): two versions mix when they are the same
//! release — equal major and minor numbers (`1.4.0` and `1.4.2` mix, `1.4.2` and `1.5.0`
//! do not). A patch release changes neither the protocol, the encoding of entries nor how
//! they merge, so it may be rolled out one machine at a time with links up; any other
//! upgrade goes as the seed says: disconnect, upgrade, reconnect. A version that is not
//! plain `MAJOR.MINOR.PATCH` (a pre-release, `1.5.0-rc.1`) mixes only with itself.
//! Being the same release is an equivalence, so machines that link only with compatible
//! peers can never bridge two incompatible ones by routing.
//!
//! Where it is enforced: a joiner checks the member's version (from its hello) and the
//! member the joiner's ([`super::JoinRequest::strata_version`]); both ends of a mesh link
//! check the other's hello; `cluster reconnect` run on the machine itself checks the
//! others. [`PROTOCOL`](super::PROTOCOL) is checked before all of these, on every
//! connection.

use std::sync::OnceLock;

/// The environment variable a debug build reads its version from (tests only).
pub const TEST_VERSION_ENV: &str = "STRATA_TEST_VERSION";

/// This build's Strata version: what its hello says, what its membership records and what
/// the version checks compare.
///
/// Test-only override: a debug build (`cfg(debug_assertions)`, what `cargo test` runs)
/// takes the version from `STRATA_TEST_VERSION` when it is set, so an integration test can
/// run agents of two versions without two builds. Release builds ignore the variable.
pub fn strata_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        #[cfg(debug_assertions)]
        if let Ok(v) = std::env::var(TEST_VERSION_ENV)
            && !v.trim().is_empty()
        {
            return v.trim().to_owned();
        }
        env!("CARGO_PKG_VERSION").to_owned()
    })
}

/// The release a version belongs to: `MAJOR.MINOR` for a plain `MAJOR.MINOR.PATCH`, the
/// whole version otherwise.
pub fn release(version: &str) -> &str {
    let v = version.trim();
    let parts: Vec<&str> = v.split('.').collect();
    let numeric = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        [major, minor, patch] if numeric(major) && numeric(minor) && numeric(patch) => {
            &v[..major.len() + 1 + minor.len()]
        }
        _ => v,
    }
}

/// Whether machines running `a` and `b` may be in one mesh: the same release.
pub fn compatible(a: &str, b: &str) -> bool {
    release(a) == release(b)
}

/// Why two machines of different Strata releases are refused, and how to fix it: the
/// message names both machines (`a` and `b`, as the caller calls them: "lab2 (this
/// machine)") and their versions; the help gives the upgrade path.
pub fn mismatch(a: &str, a_version: &str, b: &str, b_version: &str) -> (String, String) {
    (
        format!(
            "machines of a cluster run the same Strata version (the seed's rule; patch releases mix): {a} runs {a_version}, {b} {b_version}"
        ),
        "upgrade every machine: `strata cluster disconnect` it, upgrade it, then `strata cluster reconnect` it once the others run the same release (docs/operations.md: Upgrading a cluster)"
            .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_releases_mix_and_nothing_else_does() {
        assert!(compatible("1.4.0", "1.4.0"));
        assert!(compatible("1.4.0", "1.4.12"), "patch releases mix");
        assert!(compatible(" 0.1.0", "0.1.3"));
        assert!(!compatible("1.4.2", "1.5.0"), "another minor release");
        assert!(!compatible("1.4.2", "2.4.2"), "another major release");
        assert!(!compatible("0.1.0", "0.2.0"));
        assert!(
            !compatible("1.5.0-rc.1", "1.5.0"),
            "a pre-release mixes only with itself"
        );
        assert!(compatible("1.5.0-rc.1", "1.5.0-rc.1"));
        assert!(!compatible("dev", "1.5.0"));
        assert_eq!(release("1.4.2"), "1.4");
        assert_eq!(release("1.4"), "1.4", "not MAJOR.MINOR.PATCH: itself");
        assert_eq!(release("1.4.x"), "1.4.x");
    }

    #[test]
    fn a_mismatch_names_both_machines_both_versions_and_the_way_out() {
        let (message, help) = mismatch("lab1", "0.1.0", "lab2 (this machine)", "0.2.0");
        assert_eq!(
            message,
            "machines of a cluster run the same Strata version (the seed's rule; patch releases mix): lab1 runs 0.1.0, lab2 (this machine) 0.2.0"
        );
        assert!(help.contains("`strata cluster disconnect`"), "{help}");
        assert!(help.contains("`strata cluster reconnect`"), "{help}");
    }
}
