//! The value types a schema field can have, and how a value is checked against one.

use std::net::IpAddr;

use crate::model::Value;

/// A field's type and constraints.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueType {
    /// Any string.
    String,
    /// Any string, kept verbatim where XML would otherwise trim it (a listener's HAT, a
    /// disclaimer): leading and trailing blanks are part of the value.
    Text,
    /// An integer, optionally bounded (inclusive).
    Int {
        /// Smallest allowed value.
        min: Option<i128>,
        /// Largest allowed value.
        max: Option<i128>,
    },
    /// `#true` or `#false`.
    Bool,
    /// An IPv4 or IPv6 address.
    Ip,
    /// An address with a prefix length: `10.0.0.1/24`.
    Cidr,
    /// A hostname or an IP address.
    Host,
    /// A domain name; `.example.com` (subdomains) and `*` or `ALL` are allowed.
    Domain,
    /// An email address, or a pattern such as `@example.com`.
    Email,
    /// A netmask, dotted (`255.255.255.0`) or hex (`0xffffff00`).
    Netmask,
    /// One of a fixed set of strings.
    Enum(Vec<String>),
    /// Any value at all.
    Any,
    /// A secret (a password): a string that a repo holds only as age armoured text
    /// encrypted to the cluster ([`crate::secret`]); `validate` refuses it in the clear.
    Secret,
}

impl ValueType {
    /// Parses a `type=` name; `enum` takes its values separately.
    pub fn parse(name: &str) -> Option<ValueType> {
        Some(match name {
            "string" => ValueType::String,
            "text" => ValueType::Text,
            "int" => ValueType::Int {
                min: None,
                max: None,
            },
            "bool" => ValueType::Bool,
            "ip" => ValueType::Ip,
            "cidr" => ValueType::Cidr,
            "host" => ValueType::Host,
            "domain" => ValueType::Domain,
            "email" => ValueType::Email,
            "netmask" => ValueType::Netmask,
            "enum" => ValueType::Enum(Vec::new()),
            "any" => ValueType::Any,
            "secret" => ValueType::Secret,
            _ => return None,
        })
    }

    /// The type names `parse` accepts.
    pub const NAMES: [&'static str; 13] = [
        "string", "text", "int", "bool", "ip", "cidr", "host", "domain", "email", "netmask",
        "enum", "any", "secret",
    ];

    /// What the type expects, for messages ("an IP address").
    pub fn describe(&self) -> String {
        match self {
            ValueType::String => "a string".into(),
            ValueType::Text => "a text".into(),
            ValueType::Int { min, max } => match (min, max) {
                (Some(a), Some(b)) => format!("an integer from {a} to {b}"),
                (Some(a), None) => format!("an integer of at least {a}"),
                (None, Some(b)) => format!("an integer of at most {b}"),
                (None, None) => "an integer".into(),
            },
            ValueType::Bool => "#true or #false".into(),
            ValueType::Ip => "an IP address".into(),
            ValueType::Cidr => "an address with a prefix length, such as \"10.0.0.1/24\"".into(),
            ValueType::Host => "a hostname or IP address".into(),
            ValueType::Domain => "a domain name".into(),
            ValueType::Email => "an email address".into(),
            ValueType::Netmask => "a netmask, such as \"255.255.255.0\" or \"0xffffff00\"".into(),
            ValueType::Enum(values) => format!("one of {}", quoted_list(values)),
            ValueType::Any => "any value".into(),
            ValueType::Secret => "an encrypted secret (age armoured text)".into(),
        }
    }

    /// Checks a value; on failure says what is wrong with it.
    pub fn check(&self, value: &Value) -> Result<(), String> {
        let want = || format!("expected {}, found {}", self.describe(), value.type_name());
        match self {
            ValueType::Any => Ok(()),
            // The value itself is never quoted back: it may be a password in the clear.
            ValueType::Secret => match value {
                Value::String(s) if super::secret_value::is_encrypted(s) => {
                    super::secret_value::check_encrypted(s)
                }
                Value::String(_) => Err("a secret in clear text".into()),
                _ => Err(want()),
            },
            ValueType::Bool => match value {
                Value::Bool(_) => Ok(()),
                _ => Err(want()),
            },
            ValueType::Int { min, max } => {
                let Value::Int(i) = value else {
                    return Err(want());
                };
                if min.is_some_and(|m| *i < m) || max.is_some_and(|m| *i > m) {
                    return Err(format!("{i} is out of range: expected {}", self.describe()));
                }
                Ok(())
            }
            _ => {
                let Value::String(s) = value else {
                    return Err(want());
                };
                if self.accepts_str(s) {
                    Ok(())
                } else {
                    Err(format!("\"{s}\" is not {}", self.describe()))
                }
            }
        }
    }

    fn accepts_str(&self, s: &str) -> bool {
        match self {
            ValueType::String | ValueType::Text | ValueType::Any => true,
            ValueType::Ip => s.parse::<IpAddr>().is_ok(),
            ValueType::Cidr => is_cidr(s),
            ValueType::Host => s.parse::<IpAddr>().is_ok() || is_hostname(s),
            ValueType::Domain => {
                s == "*" || s == "ALL" || is_hostname(s.strip_prefix('.').unwrap_or(s))
            }
            ValueType::Email => is_email(s),
            ValueType::Netmask => parse_netmask(s).is_some(),
            ValueType::Enum(values) => values.iter().any(|v| v == s),
            ValueType::Int { .. } | ValueType::Bool => false,
            ValueType::Secret => super::secret_value::is_encrypted(s),
        }
    }
}

fn quoted_list(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_cidr(s: &str) -> bool {
    let Some((addr, len)) = s.split_once('/') else {
        return false;
    };
    let (Ok(addr), Ok(len)) = (addr.parse::<IpAddr>(), len.parse::<u8>()) else {
        return false;
    };
    len <= if addr.is_ipv4() { 32 } else { 128 }
}

/// True for an RFC 1123 hostname: dot-separated labels of letters, digits and hyphens.
pub fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

fn is_email(s: &str) -> bool {
    match s.rsplit_once('@') {
        Some((local, domain)) => {
            !local.contains(char::is_whitespace) && (domain.is_empty() || is_hostname(domain))
        }
        None => false,
    }
}

/// A netmask as a prefix length, from dotted or hex notation (`0xffffffe0` → 27).
pub fn parse_netmask(s: &str) -> Option<u8> {
    let bits: u32 = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()?
    } else {
        let addr: std::net::Ipv4Addr = s.parse().ok()?;
        u32::from(addr)
    };
    let len = bits.leading_ones();
    // A netmask is contiguous ones followed by zeros.
    (bits.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    #[test]
    fn netmasks_in_both_spellings() {
        assert_eq!(parse_netmask("255.255.255.224"), Some(27));
        assert_eq!(parse_netmask("0xffffffe0"), Some(27));
        assert_eq!(parse_netmask("0.0.0.0"), Some(0));
        assert_eq!(parse_netmask("255.0.255.0"), None);
    }

    #[test]
    fn types_accept_and_refuse() {
        assert!(ValueType::Ip.check(&s("10.0.0.1")).is_ok());
        assert!(ValueType::Ip.check(&s("10.0.0.300")).is_err());
        assert!(ValueType::Cidr.check(&s("10.0.0.1/24")).is_ok());
        assert!(ValueType::Cidr.check(&s("10.0.0.1/33")).is_err());
        assert!(ValueType::Host.check(&s("mx1.example.com")).is_ok());
        assert!(ValueType::Host.check(&s("bad host")).is_err());
        assert!(ValueType::Domain.check(&s(".example.com")).is_ok());
        assert!(ValueType::Email.check(&s("admin@example.com")).is_ok());
        let port = ValueType::Int {
            min: Some(1),
            max: Some(65535),
        };
        assert!(port.check(&Value::Int(25)).is_ok());
        assert_eq!(
            port.check(&Value::Int(0)).unwrap_err(),
            "0 is out of range: expected an integer from 1 to 65535"
        );
        assert!(port.check(&s("25")).is_err());
    }
}
