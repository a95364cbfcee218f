//! Whether the members' hostnames resolve on this machine, for `strata check`: the seed's
//! machines "must have resolvable hostnames in DNS", or all be addressed by IP address.
//! Each member's address that is a hostname is looked up as the system resolves names
//! (`/etc/hosts`, DNS), all at once, for a bounded time: a lookup that has not answered
//! by then counts as not resolving, and its thread is left to finish on its own.

use std::collections::BTreeMap;
use std::net::ToSocketAddrs;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::model::{MachineName, Membership, host_of, is_ip};
use crate::protocol::consistency::Unresolved;

/// How long the lookups may take together.
pub const RESOLVE_WITHIN: Duration = Duration::from_secs(3);

/// The members of `members` whose address is a hostname that does not resolve here
/// within `within`, sorted by machine.
pub fn unresolved(
    members: &BTreeMap<MachineName, Membership>,
    within: Duration,
) -> Vec<Unresolved> {
    let (tx, rx) = mpsc::channel();
    let mut waiting: BTreeMap<MachineName, String> = BTreeMap::new();
    for (machine, info) in members {
        let host = host_of(&info.address).to_owned();
        if host.is_empty() || is_ip(&host) {
            continue;
        }
        waiting.insert(machine.clone(), host.clone());
        let (sender, asked) = (tx.clone(), machine.clone());
        let spawned = std::thread::Builder::new()
            .name("strata-resolve".into())
            .spawn(move || {
                let said = match (host.as_str(), 0).to_socket_addrs().map(Iterator::count) {
                    Ok(0) => Some("it resolves to no address".to_owned()),
                    Ok(_) => None,
                    Err(e) => Some(e.to_string()),
                };
                let _ = sender.send((asked, said));
            });
        if let Err(e) = spawned {
            let _ = tx.send((
                machine.clone(),
                Some(format!("it could not be looked up: {e}")),
            ));
        }
    }
    drop(tx);
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while !waiting.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok((machine, said)) = rx.recv_timeout(left) else {
            break;
        };
        let Some(hostname) = waiting.remove(&machine) else {
            continue;
        };
        if let Some(why) = said {
            out.push(Unresolved {
                machine,
                hostname,
                why,
            });
        }
    }
    out.extend(waiting.into_iter().map(|(machine, hostname)| Unresolved {
        machine,
        hostname,
        why: format!("no answer within {} s", within.as_secs()),
    }));
    out.sort_by(|a, b| a.machine.cmp(&b.machine));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GroupName;

    fn at(address: &str) -> Membership {
        Membership::undeclared(GroupName::new("Main_Group").unwrap(), address)
    }

    #[test]
    fn hostnames_that_do_not_resolve_are_named_and_ip_addresses_are_not_looked_up() {
        let members: BTreeMap<MachineName, Membership> = [
            ("lab1", at("localhost")),
            ("lab2", at("lab2.strata-test.invalid")),
            ("lab3", at("127.0.0.13:2222")),
            ("lab4", at("::1")),
        ]
        .into_iter()
        .map(|(m, info)| (MachineName::new(m).unwrap(), info))
        .collect();
        let found = unresolved(&members, RESOLVE_WITHIN);
        let named: Vec<(&str, &str)> = found
            .iter()
            .map(|u| (u.machine.as_str(), u.hostname.as_str()))
            .collect();
        assert_eq!(named, [("lab2", "lab2.strata-test.invalid")], "{found:?}");
        assert!(!found[0].why.is_empty());
    }
}
