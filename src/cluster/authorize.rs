//! What the agent accepts, whoever sends it: every write checked as `validate` checks a
//! repo, against the catalogue the store will record once the writes are in — values
//! of the kind their keys say, known sections at levels their schemas allow with
//! contents that match, sections and machines only of declared modes and groups,
//! machines registered to join (`@prepjoin:`) with a serial and a host key that parses
//! and not members already — and changes to users and membership (the pending-join list
//! included), and to the schemas of the security sections ([`SECURITY_SECTIONS`]), only
//! from administrators.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::caller::{Authority, Refusal};
use crate::config::{Diagnostics, SourceFile, diagnostics::render};
use crate::model::{EntryValue, Key, MachineName, Mode, Node, PendingJoin};
use crate::resolve::entries::{EntryLayers, catalogue_of};
use crate::resolve::entry_reference_problems;
use crate::schema::Catalogue;
use crate::state::{Live, Writes};
use crate::validate::section_rules;

/// The sections that decide who may log in and change what, and how the mesh and its
/// freezes behave: only administrators may replace their schemas (a repo's
/// `schemas/users.kdl` redefining `users`, say), whatever an operator may write in them.
pub const SECURITY_SECTIONS: [&str; 4] = ["users", "ssh", "cluster-mesh", crate::freeze::SECTION];

/// The keys only administrators may write: membership, the cluster's identities, and the
/// users section.
pub fn is_restricted(key: &Key) -> bool {
    key.is_membership()
        || key.is_secret()
        || matches!(key, Key::Section { section, .. } if section.as_str() == "users")
}

/// Whether `key` is the schema of a security section ([`SECURITY_SECTIONS`]).
pub fn is_security_schema(key: &Key) -> bool {
    matches!(key, Key::Schema(s) if SECURITY_SECTIONS.contains(&s.as_str()))
}

fn refuse(message: String, help: &str) -> Refusal {
    Refusal::Invalid {
        message,
        help: Some(help.to_owned()),
    }
}

/// Refuses writes the caller may not make.
pub fn check_authority(writes: &Writes, authority: Authority) -> Result<(), Refusal> {
    if authority == Authority::All {
        return Ok(());
    }
    let denied = |restricted: fn(&Key) -> bool| -> Vec<String> {
        writes
            .keys()
            .filter(|k| restricted(k))
            .map(Key::to_string)
            .collect()
    };
    let members = denied(is_restricted);
    if !members.is_empty() {
        return Err(Refusal::Denied(format!(
            "only administrators may change users, roles and membership; the change set writes {}",
            members.join(", ")
        )));
    }
    let schemas = denied(is_security_schema);
    if !schemas.is_empty() {
        return Err(Refusal::Denied(format!(
            "only administrators may change the schemas of the security sections ({}); the change set writes {}",
            SECURITY_SECTIONS.join(", "),
            schemas.join(", ")
        )));
    }
    let left_out = security_sections_left_out(writes);
    if !left_out.is_empty() {
        return Err(Refusal::Denied(format!(
            "only administrators may leave security sections out of the catalogue; the change set's #catalogue leaves out {}",
            left_out.join(", ")
        )));
    }
    Ok(())
}

/// The security sections ([`SECURITY_SECTIONS`]) a written `#catalogue` leaves out: a
/// cluster without them has no users, no SSH settings, no mesh settings or no freezes,
/// which is the administrators' call, as their schemas are.
fn security_sections_left_out(writes: &Writes) -> Vec<&'static str> {
    match writes.get(&Key::Catalogue) {
        Some(Some(EntryValue::Catalogue(spec))) => SECURITY_SECTIONS
            .into_iter()
            .filter(|s| !spec.builtin.iter().any(|b| b.as_str() == *s))
            .collect(),
        _ => Vec::new(),
    }
}

/// Checks `writes` against what the store will hold once they are in: the same section
/// rules `validate` applies to a repo, on every written section. `me` may hold sections
/// before it is a member (its standalone settings).
pub fn check_writes(writes: &Writes, live: &Live, me: &MachineName) -> Result<(), Refusal> {
    let after = after_writes(writes, live);
    let mut diags = Diagnostics::default();
    let catalogue = catalogue_of(after.iter().copied(), &mut diags);
    if diags.has_errors() {
        let problems: Vec<String> = diags.problems().iter().map(|p| p.message.clone()).collect();
        return Err(refuse(
            format!(
                "the section schemas of the change set do not load: {}",
                problems.join("; ")
            ),
            "validate the repo with `strata validate`: its schemas/ has the same problems",
        ));
    }
    let groups: BTreeSet<&str> = after
        .iter()
        .filter_map(|(k, _)| match k {
            Key::Group(g) => Some(g.as_str()),
            _ => None,
        })
        .collect();
    let machines: BTreeSet<&str> = after
        .iter()
        .filter_map(|(k, _)| match k {
            Key::Machine(m) => Some(m.as_str()),
            _ => None,
        })
        .collect();
    let joined: BTreeSet<&str> = after
        .iter()
        .filter_map(|(k, v)| match (k, v) {
            (Key::Machine(m), EntryValue::Machine(info)) if info.joined() => Some(m.as_str()),
            _ => None,
        })
        .collect();
    let cluster = after.iter().any(|(k, _)| **k == Key::Cluster);
    let written: Vec<(&Key, &EntryValue)> = writes
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
    let failure = first_failure(&written, |(key, value)| {
        if let Some(why) = value.misfit(key) {
            return Some(why);
        }
        match (key, value) {
            (Key::Machine(m), EntryValue::Machine(info))
                if !groups.contains(info.group.as_str()) =>
            {
                Some(format!(
                    "machine `{m}` belongs to group `{}`, which the cluster does not declare",
                    info.group
                ))
            }
            (Key::Pending(host), EntryValue::Pending(p)) => {
                pending_problem(host, p, joined.contains(host.as_str()))
            }
            (Key::Section { mode, .. }, EntryValue::Section(node)) => {
                let declared = match mode {
                    Mode::Cluster => cluster,
                    Mode::Group(g) => groups.contains(g.as_str()),
                    Mode::Machine(m) => machines.contains(m.as_str()) || m == me,
                };
                if !declared {
                    Some(format!("{key}: {mode} is not part of the cluster"))
                } else if node.name == "users" {
                    // Logins are read from it: every user needs a role the agent knows.
                    section_problems(key, mode, node, &catalogue).or_else(|| {
                        super::users::parse_users(node)
                            .err()
                            .map(|e| format!("{key}: {e}"))
                    })
                } else {
                    section_problems(key, mode, node, &catalogue)
                }
            }
            _ => None,
        }
    });
    match failure {
        Some(message) => Err(refuse(
            format!("the change set was refused, nothing was written: {message}"),
            "plan from a repo that `strata validate` accepts",
        )),
        None => Ok(()),
    }
}

/// Checks the references of every machine's effective config once `writes` are in
/// `live` (the whole live state), as `validate` checks a repo's: a saved plan that
/// makes a listener name an interface no machine it reaches has is refused with
/// validate's words, whoever wrote the plan.
pub fn check_references(writes: &Writes, live: &Live) -> Result<(), Refusal> {
    let after = after_writes(writes, live);
    let mut diags = Diagnostics::default();
    let catalogue = catalogue_of(after.iter().copied(), &mut diags);
    let layers = EntryLayers::new(after.iter().copied());
    let problems = entry_reference_problems(&layers, &catalogue);
    match problems.first() {
        None => Ok(()),
        Some(first) => Err(refuse(
            format!(
                "the change set was refused, nothing was written: {first}{}",
                match problems.len() {
                    1 => String::new(),
                    n => format!(" (and {} more unresolved references)", n - 1),
                }
            ),
            "plan from a repo that `strata validate` accepts",
        )),
    }
}

/// Why a machine cannot be registered to join with this entry, if it cannot: it needs a
/// serial number and a host key that parses, and must not be a member already.
fn pending_problem(host: &MachineName, p: &PendingJoin, joined: bool) -> Option<String> {
    if p.serial.trim().is_empty() {
        Some(format!("@prepjoin:{host}: no serial number"))
    } else if let Err(e) = russh::keys::PublicKey::from_openssh(&p.host_key) {
        Some(format!(
            "@prepjoin:{host}: the host key is not an OpenSSH public key: {e}"
        ))
    } else if joined {
        Some(format!(
            "@prepjoin:{host}: {host} is already a member of the cluster"
        ))
    } else {
        None
    }
}

/// The section rules of `validate` on one written section. The node is checked as it
/// came; only when it fails is it checked again from its canonical text (named after its
/// key), so the diagnostic points at the line.
fn section_problems(key: &Key, mode: &Mode, node: &Node, catalogue: &Catalogue) -> Option<String> {
    let unplaced = SourceFile::new(key.to_string(), String::new());
    if errors_of(mode, node, &unplaced, catalogue).is_empty() {
        return None;
    }
    let file = SourceFile::new(key.to_string(), node.to_canonical());
    let Ok(doc) = crate::config::parse_kdl(&file.text) else {
        return Some(format!("{key}: the value is not a KDL node"));
    };
    let [kdl] = doc.nodes() else {
        return Some(format!("{key}: the value is not one KDL node"));
    };
    let errors = errors_of(mode, &Node::from_kdl(kdl), &file, catalogue);
    Some(
        errors
            .iter()
            .map(|p| render(p, 100, false))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// The errors `validate`'s section rules find in `node` defined at `mode`.
fn errors_of(
    mode: &Mode,
    node: &Node,
    file: &Arc<SourceFile>,
    catalogue: &Catalogue,
) -> Vec<crate::config::Problem> {
    let mut diags = Diagnostics::default();
    section_rules(mode, node, file, catalogue, &mut diags);
    diags
        .into_problems()
        .into_iter()
        .filter(|p| p.is_error())
        .collect()
}

/// The entries `live` holds once `writes` are applied: the live values of keys not
/// written, then the written values (a removal leaves the key out).
fn after_writes<'a>(writes: &'a Writes, live: &'a Live) -> Vec<(&'a Key, &'a EntryValue)> {
    live.iter()
        .filter(|(k, _)| !writes.contains_key(*k))
        .filter_map(|(k, e)| e.value.as_ref().map(|v| (k, v)))
        .chain(
            writes
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| (k, v))),
        )
        .collect()
}

/// The fewest items [`first_failure`] checks on a thread of their own.
const MIN_CHUNK: usize = 64;

/// The first failure `check` reports on `items`, checked on all cores. A check that
/// panics fails too: a value nobody could check is never taken for a good one.
pub fn first_failure<T: Sync>(
    items: &[T],
    check: impl Fn(&T) -> Option<String> + Sync,
) -> Option<String> {
    // Asked only for a list worth splitting: it reads the cgroup's files each time.
    let chunk = if items.len() <= MIN_CHUNK {
        MIN_CHUNK
    } else {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        items.len().div_ceil(threads).max(MIN_CHUNK)
    };
    let check = &check;
    if items.len() <= chunk {
        // One chunk: checked here, not on a thread of its own (a peer's change set of a
        // few entries is checked at every merge).
        return std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            items.iter().find_map(check)
        }))
        .unwrap_or_else(|_| Some("a value could not be checked".to_owned()));
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().find_map(check)))
            .collect();
        handles.into_iter().find_map(|h| {
            h.join()
                .unwrap_or_else(|_| Some("a value could not be checked".to_owned()))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SectionName;

    #[test]
    fn a_check_that_panics_refuses_instead_of_passing() {
        let items: Vec<u32> = (0..200).collect();
        assert_eq!(first_failure(&items, |_| None), None);
        assert_eq!(
            first_failure(&items, |i| (*i == 150).then(|| "bad 150".to_owned())),
            Some("bad 150".to_owned())
        );
        let panicking = first_failure(&items, |i| {
            assert!(*i != 150, "the checker broke");
            None
        });
        assert_eq!(panicking.as_deref(), Some("a value could not be checked"));
    }

    fn schema(name: &str) -> (Key, Option<EntryValue>) {
        let doc: kdl::KdlDocument = format!("schema \"{name}\"").parse().unwrap();
        let node = Node::from_kdl(&doc.nodes()[0]);
        (
            Key::Schema(SectionName::new(name).unwrap()),
            Some(EntryValue::Schema(node)),
        )
    }

    fn denied(writes: &Writes, authority: Authority) -> Option<String> {
        match check_authority(writes, authority) {
            Ok(()) => None,
            Err(Refusal::Denied(m)) => Some(m),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_administrators_replace_the_schema_of_a_security_section() {
        for section in SECURITY_SECTIONS {
            let writes: Writes = [schema(section)].into_iter().collect();
            let message = denied(&writes, Authority::NoMembership)
                .unwrap_or_else(|| panic!("an operator replaced the schema of `{section}`"));
            assert_eq!(
                message,
                format!(
                    "only administrators may change the schemas of the security sections (users, ssh, cluster-mesh, change-freeze); the change set writes #schema:{section}"
                )
            );
            assert_eq!(denied(&writes, Authority::All), None);
            // Removing one is changing it too.
            let removed: Writes = [(Key::Schema(SectionName::new(section).unwrap()), None)]
                .into_iter()
                .collect();
            assert!(denied(&removed, Authority::NoMembership).is_some());
        }
        // Other sections' schemas stay the operators' to change.
        let writes: Writes = [schema("dns"), schema("listeners")].into_iter().collect();
        assert_eq!(denied(&writes, Authority::NoMembership), None);
    }

    #[test]
    fn only_administrators_leave_a_security_section_out_of_the_catalogue() {
        let catalogue = |names: &[&str]| -> Writes {
            let builtin = names
                .iter()
                .map(|n| SectionName::new(*n).unwrap())
                .collect();
            [(
                Key::Catalogue,
                Some(EntryValue::Catalogue(crate::model::CatalogueSpec {
                    builtin,
                })),
            )]
            .into_iter()
            .collect()
        };
        let narrow = catalogue(&["dns", "ssh", "cluster-mesh", "change-freeze"]);
        assert_eq!(
            denied(&narrow, Authority::NoMembership).as_deref(),
            Some(
                "only administrators may leave security sections out of the catalogue; the change set's #catalogue leaves out users"
            )
        );
        assert_eq!(denied(&narrow, Authority::All), None);
        let whole = catalogue(&["dns", "users", "ssh", "cluster-mesh", "change-freeze"]);
        assert_eq!(denied(&whole, Authority::NoMembership), None);
        // No entry: every built-in section.
        let every: Writes = [(Key::Catalogue, None)].into_iter().collect();
        assert_eq!(denied(&every, Authority::NoMembership), None);
    }
}
