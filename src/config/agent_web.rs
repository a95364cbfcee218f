//! `agent.kdl`'s `web` setting: where the web console is served, over HTTPS only, and
//! with which certificate (`web listen="ADDR:PORT" cert="PATH" key="PATH"`; without
//! `cert=`/`key=` the agent makes a self-signed one on first start and keeps it in its
//! state dir).

use std::net::SocketAddr;
use std::path::PathBuf;

use kdl::KdlNode;

/// Parsed `web` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Web {
    /// Where the console listens.
    pub listen: SocketAddr,
    /// A PEM certificate chain and its PEM private key; `None`: the agent's own
    /// self-signed certificate (`web.crt`, `web.key` in the state dir).
    pub cert: Option<(PathBuf, PathBuf)>,
}

/// Reads a `web` node; `Err` is the message for the setting.
pub fn parse(node: &KdlNode) -> Result<Web, String> {
    let text = |key: &str| node.get(key).and_then(|v| v.as_string());
    for entry in node.entries() {
        match entry.name().map(|n| n.value()) {
            Some("listen" | "cert" | "key") => {}
            Some(other) => {
                return Err(format!(
                    "`web` takes listen=, cert= and key=, not `{other}=`"
                ));
            }
            None => {
                return Err("`web` takes properties only: web listen=\"0.0.0.0:8443\"".into());
            }
        }
    }
    let listen = text("listen").ok_or_else(|| {
        "`web` needs where to serve the console: web listen=\"0.0.0.0:8443\"".to_owned()
    })?;
    let listen = listen.parse().map_err(|_| {
        format!(
            "`web listen=\"{listen}\"` is not an address and port, e.g. \"0.0.0.0:8443\" or \"[::]:8443\""
        )
    })?;
    let cert = match (text("cert"), text("key")) {
        (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
        (None, None) => None,
        _ => {
            return Err(
                "`web` takes cert= and key= together (a PEM certificate and its PEM key), or neither for a self-signed one".into(),
            );
        }
    };
    Ok(Web { listen, cert })
}

/// The setting as `agent.kdl` writes it, after its comment.
pub fn render(web: Option<&Web>) -> String {
    let mut out = String::from(
        "// The web console over HTTPS at https://ADDR/ (a self-signed certificate unless\n\
         // cert= and key= name PEM files), e.g.:\n\
         // web listen=\"0.0.0.0:8443\"\n",
    );
    if let Some(web) = web {
        out.push_str(&format!("web listen=\"{}\"", web.listen));
        if let Some((cert, key)) = &web.cert {
            let q = |p: &PathBuf| kdl::KdlValue::String(p.display().to_string()).to_string();
            out.push_str(&format!(" cert={} key={}", q(cert), q(key)));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(text: &str) -> KdlNode {
        text.parse::<kdl::KdlDocument>().unwrap().nodes()[0].clone()
    }

    #[test]
    fn reads_listen_and_a_certificate_pair() {
        let web = parse(&node(
            r#"web listen="127.0.0.1:8443" cert="/c.pem" key="/k.pem""#,
        ))
        .unwrap();
        assert_eq!(web.listen, "127.0.0.1:8443".parse().unwrap());
        assert_eq!(web.cert, Some(("/c.pem".into(), "/k.pem".into())));
        let again = render(Some(&web));
        assert!(again.ends_with("web listen=\"127.0.0.1:8443\" cert=\"/c.pem\" key=\"/k.pem\"\n"));
    }

    #[test]
    fn refuses_what_it_cannot_serve() {
        for (text, says) in [
            ("web", "needs where"),
            (r#"web listen="8443""#, "not an address"),
            (r#"web listen="[::]:8443" cert="/c.pem""#, "together"),
            (r#"web listen="[::]:8443" port=1"#, "not `port=`"),
            (r#"web "0.0.0.0:8443""#, "properties only"),
        ] {
            let e = parse(&node(text)).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
