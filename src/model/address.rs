//! Machine addresses as operators write them and as the mesh dials them: a host (a name
//! or an IP address, IPv6 in brackets when a port follows) and an optional port.

use std::net::IpAddr;

/// The host and port of `address` when it names a port (`10.0.0.1:2222`,
/// `[2001:db8::1]:2222`, `lab1.example.com:2222`); `None` for a bare host
/// (`10.0.0.1`, `2001:db8::1`, `[2001:db8::1]`, `lab1`) or a port that is not a number.
pub fn split_port(address: &str) -> Option<(&str, u16)> {
    if let Some(rest) = address.strip_prefix('[') {
        let (host, tail) = rest.split_once(']')?;
        return Some((host, tail.strip_prefix(':')?.parse().ok()?));
    }
    match address.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host, port.parse().ok()?)),
        _ => None,
    }
}

/// The host of `address`, without its port and brackets.
pub fn host_of(address: &str) -> &str {
    match split_port(address) {
        Some((host, _)) => host,
        None => address
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(address),
    }
}

/// True when the host of `address` is an IP address rather than a name: the seed's
/// rule is that a cluster's machines are addressed all one way or all the other.
pub fn is_ip(address: &str) -> bool {
    host_of(address).parse::<IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports_split_as_operators_write_them() {
        assert_eq!(split_port("10.0.0.1:2222"), Some(("10.0.0.1", 2222)));
        assert_eq!(split_port("[2001:db8::1]:22"), Some(("2001:db8::1", 22)));
        assert_eq!(
            split_port("lab1.example.com:2222"),
            Some(("lab1.example.com", 2222))
        );
        for bare in ["10.0.0.1", "2001:db8::1", "[2001:db8::1]", "lab1", "lab1:x"] {
            assert_eq!(split_port(bare), None, "{bare}");
        }
        assert_eq!(host_of("[2001:db8::1]"), "2001:db8::1");
        assert_eq!(host_of("[2001:db8::1]:22"), "2001:db8::1");
        assert!(is_ip("127.0.0.71:2222") && is_ip("2001:db8::1") && is_ip("[::1]:22"));
        assert!(!is_ip("localhost:2222") && !is_ip("lab1.example.com"));
    }
}
