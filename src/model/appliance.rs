//! What Strata knows of the appliances a cluster manages, beside their config: the
//! versions they run (the seed: "a cluster must consist entirely of machines running the
//! same version of AsyncOS") and how many one cluster should hold (the seed: "having more
//! than 20 appliances in a cluster can cause errors in cluster communication"). Pure:
//! `validate` reads versions from a repo, `check` from the membership, and `validate` and
//! `cluster join` count machines against [`max_machines`].

use std::collections::BTreeMap;

use super::{Node, Value};

/// The machine count past which `validate` and `cluster join` warn, when the cluster's
/// `cluster-mesh` section sets none: the seed's 20 appliances.
pub const MAX_MACHINES_WARNING: u64 = 20;

/// The `cluster-mesh` property that sets it.
pub const MAX_MACHINES_PROP: &str = "max-machines-warning";

/// The machine count past which a cluster is warned about: the `cluster-mesh` section's
/// `max-machines-warning=N` if it sets one, else [`MAX_MACHINES_WARNING`].
pub fn max_machines(cluster_mesh: Option<&Node>) -> u64 {
    match cluster_mesh.and_then(|n| n.prop(MAX_MACHINES_PROP)) {
        Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(MAX_MACHINES_WARNING),
        _ => MAX_MACHINES_WARNING,
    }
}

/// What to say of a cluster of `machines` machines when that is more than `max`, saying
/// what to watch; `None` when it is not.
pub fn too_many(machines: usize, max: u64) -> Option<String> {
    let n = machines as u64;
    (n > max).then(|| {
        format!(
            "the cluster has {n} machines, more than {max} (cluster-mesh {MAX_MACHINES_PROP}={max}): the seed warns that more than 20 appliances in a cluster can cause errors in cluster communication. Watch the mesh: every machine links to every other ({} links, growing as n²) and pings each one every interval; a change set goes to every member; a joiner is sent the whole history (`cluster connstatus` shows links and round trips, `check` whether all agree)",
            n * n.saturating_sub(1) / 2
        )
    })
}

/// The machines of each version, when there is more than one version (`None`: all run
/// the same, or at most one is known). Versions sorted, machines sorted within each.
pub fn mixed_versions<'a>(
    versions: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<BTreeMap<String, Vec<String>>> {
    let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (machine, version) in versions {
        by.entry(version.trim().to_owned())
            .or_default()
            .push(machine.to_owned());
    }
    for machines in by.values_mut() {
        machines.sort();
    }
    (by.len() > 1).then_some(by)
}

/// `15.0.1-416 on lab1, lab2; 14.2.0-620 on lab3`: mixed versions, for a message.
pub fn describe_versions(by: &BTreeMap<String, Vec<String>>) -> String {
    by.iter()
        .map(|(v, machines)| format!("{v} on {}", machines.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The help line for mixed appliance versions.
pub const MIXED_VERSIONS_HELP: &str = "the seed's rule: a cluster consists entirely of machines running the same AsyncOS version; upgrade one machine at a time (`strata cluster disconnect`, upgrade, `strata cluster reconnect`) until all run the same";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_is_the_cluster_s_or_the_seed_s_20() {
        assert_eq!(max_machines(None), 20);
        let mut mesh = Node::new("cluster-mesh");
        assert_eq!(max_machines(Some(&mesh)), 20);
        mesh.set_prop(MAX_MACHINES_PROP, Value::Int(50));
        assert_eq!(max_machines(Some(&mesh)), 50);
        assert_eq!(too_many(20, 20), None, "20 is not more than 20");
        let said = too_many(21, 20).unwrap();
        assert!(said.contains("21 machines, more than 20"), "{said}");
        assert!(said.contains("210 links"), "{said}");
    }

    #[test]
    fn versions_are_mixed_when_two_differ() {
        assert_eq!(mixed_versions([("lab1", "15.0"), ("lab2", "15.0")]), None);
        assert_eq!(mixed_versions([]), None);
        let by = mixed_versions([
            ("lab3", "15.0.1-416"),
            ("lab2", "14.2.0-620"),
            ("lab1", "15.0.1-416"),
        ])
        .unwrap();
        assert_eq!(
            describe_versions(&by),
            "14.2.0-620 on lab2; 15.0.1-416 on lab1, lab3"
        );
    }
}
