//! `strata secret …`: the cluster's recipients (made on first need, by an administrator),
//! and checking and re-encrypting the repo's secrets with the cluster's identities —
//! answered by index or as ciphertext, never with a clear value. Rotate and retire are
//! commits, dispatched to [`crate::cluster::secrets`] through [`Node::commit`].

use crate::cluster::applier::Applier;
use crate::cluster::caller::{Authority, Caller, Refusal};
use crate::cluster::node::Node;
use crate::protocol::Response;
use crate::state::{Store, wall_ms};

/// The cluster's recipients; for an administrator of a cluster that has none yet (one
/// created before identities existed), its first identity is made now.
pub fn recipients<S: Store, A: Applier>(node: &Node<S, A>, caller: &Caller) -> Response {
    let listed = node.lock_core().secret_recipients();
    match listed {
        Ok(list) if list.is_empty() && caller.authority == Authority::All => {
            match node.commit(|core| core.secret_rotate(caller, wall_ms())) {
                Response::Applied { .. } | Response::Unchanged => recipients_now(node),
                other => other,
            }
        }
        Ok(list) if list.is_empty() => Response::error(
            "the cluster has no identity yet",
            Some("an administrator makes it: `strata secret recipient` or `strata secret rotate`"),
        ),
        Ok(recipients) => Response::SecretRecipients { recipients },
        Err(e) => Response::error(e.to_string(), None),
    }
}

fn recipients_now<S: Store, A: Applier>(node: &Node<S, A>) -> Response {
    match node.lock_core().secret_recipients() {
        Ok(recipients) => Response::SecretRecipients { recipients },
        Err(e) => Response::error(e.to_string(), None),
    }
}

/// Which of `texts` do not decrypt.
pub fn check<S: Store, A: Applier>(
    node: &Node<S, A>,
    texts: &[String],
    current_only: bool,
) -> Response {
    match node.lock_core().secret_check(texts, current_only) {
        Ok(undecryptable) => Response::SecretChecked { undecryptable },
        Err(e) => Response::error(e.to_string(), None),
    }
}

/// `texts` encrypted again to the current recipient and `also`.
pub fn reencrypt<S: Store, A: Applier>(
    node: &Node<S, A>,
    texts: &[String],
    also: &[String],
) -> Response {
    match node.lock_core().secret_reencrypt(texts, also) {
        Ok(texts) => Response::SecretReencrypted { texts },
        Err(Refusal::Invalid { message, help }) => Response::Error { message, help },
        Err(Refusal::Denied(message)) => Response::Denied { message },
        Err(Refusal::Commit(e)) => Response::error(e.to_string(), None),
    }
}
