//! Loading a cluster configuration file onto other appliances, as the seed's "Load
//! Cluster Configuration" does: each appliance of the cluster is assigned a group of the
//! file, and either the configuration of one of the file's appliances is copied to it
//! or, "Don't Copy", none is. Pure: the assignments are read from the command line
//! (`--assign NAME=MACHINE`, `--assign NAME=group:GROUP`), checked against the file, and
//! turned into the repo's files by [`super::import::from_cluster_assigned`].

use crate::config::Repo;
use crate::model::MachineName;

/// Where one appliance of the cluster gets its configuration from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The file's machine of that name: its group and its machine-level settings.
    Copy(String),
    /// That group of the file, and no machine-level settings ("Don't Copy").
    DontCopy(String),
}

/// One appliance of the cluster and where its configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The appliance's machine name in the cluster.
    pub machine: String,
    /// What it takes from the file.
    pub from: Source,
}

impl Assignment {
    /// Reads `NAME=MACHINE` or `NAME=group:GROUP`.
    pub fn parse(text: &str) -> Result<Assignment, String> {
        let (machine, from) = text.split_once('=').ok_or_else(|| {
            format!("`{text}`: write NAME=MACHINE (copy that machine of the file) or NAME=group:GROUP (don't copy)")
        })?;
        MachineName::new(machine).map_err(|e| format!("`{text}`: {e}"))?;
        let from = match from.strip_prefix("group:") {
            Some(group) if !group.is_empty() => Source::DontCopy(group.to_owned()),
            None if !from.is_empty() => Source::Copy(from.to_owned()),
            _ => {
                return Err(format!(
                    "`{text}`: nothing to take: name a machine of the file, or group:GROUP"
                ));
            }
        };
        Ok(Assignment {
            machine: machine.to_owned(),
            from,
        })
    }

    /// The group the appliance joins: the copied machine's, or the one named.
    pub fn group<'a>(&'a self, file: &'a Repo) -> &'a str {
        match &self.from {
            Source::DontCopy(group) => group,
            Source::Copy(m) => file.machine(m).map_or("", |d| d.group_name()),
        }
    }
}

/// Checks `assignments` against the file: every machine copied from exists in it, every
/// group named is one of its groups, and no appliance is assigned twice. Every problem
/// is returned, each naming what the file offers.
pub fn check(file: &Repo, assignments: &[Assignment]) -> Vec<String> {
    let mut problems = Vec::new();
    let machines: Vec<&str> = file.machines.iter().filter_map(|m| m.mode.name()).collect();
    let groups: Vec<&str> = file.groups.iter().filter_map(|g| g.mode.name()).collect();
    for (i, a) in assignments.iter().enumerate() {
        if assignments[..i].iter().any(|b| b.machine == a.machine) {
            problems.push(format!("{} is assigned twice", a.machine));
        }
        match &a.from {
            Source::Copy(m) if !machines.contains(&m.as_str()) => problems.push(format!(
                "{}={m}: the file has no machine {m} (it has {})",
                a.machine,
                list(&machines)
            )),
            Source::DontCopy(g) if !groups.contains(&g.as_str()) => problems.push(format!(
                "{}=group:{g}: the file has no group {g} (it has {})",
                a.machine,
                list(&groups)
            )),
            _ => {}
        }
    }
    problems
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_read_as_the_seed_offers_them() {
        assert_eq!(
            Assignment::parse("mail1.example.com=lab1.example.com").unwrap(),
            Assignment {
                machine: "mail1.example.com".into(),
                from: Source::Copy("lab1.example.com".into())
            }
        );
        assert_eq!(
            Assignment::parse("mail2.example.com=group:Paris")
                .unwrap()
                .from,
            Source::DontCopy("Paris".into())
        );
        for bad in ["mail1", "mail1=", "mail1=group:", "=lab1", "bad name=lab1"] {
            assert!(Assignment::parse(bad).is_err(), "{bad}");
        }
    }
}
