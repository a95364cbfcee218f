//! The cluster's identities, over any [`Store`]: made with the cluster, rotated and
//! retired by administrators (`strata secret rotate|retire`), and used to check and
//! re-encrypt the repo's secrets without a clear value leaving the agent. Each write is
//! one change set through the administrative path ([`Core::commit_admin`]).

use super::caller::{Caller, Refusal, invalid};
use super::core::Core;
use crate::model::{EntryValue, Key};
use crate::protocol::RecipientInfo;
use crate::secret::{self, identity};
use crate::state::{ChangeSet, Live, Store, StoreError, Writes};

impl<S: Store> Core<S> {
    /// The live identities (membership, catalogue and identities are under `@` and `#`).
    fn identity_view(&self) -> Result<Live, StoreError> {
        self.admin_view(&[])
    }

    /// The cluster's recipients, the current one first.
    pub fn secret_recipients(&self) -> Result<Vec<RecipientInfo>, StoreError> {
        let view = self.identity_view()?;
        Ok(identity::all(&view)
            .into_iter()
            .enumerate()
            .map(|(i, (id, ident))| RecipientInfo {
                id,
                recipient: ident.recipient.clone(),
                created_ms: ident.created_ms,
                current: i == 0,
            })
            .collect())
    }

    /// Makes a new identity, the current one from now on. The older ones stay (and
    /// decrypt) until [`Core::secret_retire`].
    pub fn secret_rotate(
        &mut self,
        caller: &Caller,
        wall_ms: u64,
    ) -> Result<Option<ChangeSet>, Refusal> {
        let view = self.identity_view()?;
        if view
            .get(&Key::Cluster)
            .and_then(|e| e.value.as_ref())
            .is_none()
        {
            return Err(invalid(
                "this machine is not in a cluster: it has no identity to rotate",
                Some("create one with `strata cluster create NAME`"),
            ));
        }
        // A new identity is newer than every live one, even on a clock behind theirs.
        let newest = identity::all(&view)
            .first()
            .map_or(0, |(_, i)| i.created_ms + 1);
        let (key, value) = identity::generate(wall_ms.max(newest));
        let writes = Writes::from([(key, Some(value))]);
        self.commit_admin(caller, writes, &view, "secret rotate".into(), wall_ms)
    }

    /// Removes every identity but the current one. Refused while a live section holds a
    /// secret the current identity cannot decrypt, naming each (re-encrypt them first).
    pub fn secret_retire(
        &mut self,
        caller: &Caller,
        wall_ms: u64,
    ) -> Result<Option<ChangeSet>, Refusal> {
        let view = self.identity_view()?;
        let all = identity::all(&view);
        let Some((_, current)) = all.first() else {
            return Err(invalid(
                "the cluster has no identity to keep",
                Some("`strata secret rotate` makes one"),
            ));
        };
        let keys = identity::keys([*current]);
        let sections =
            self.store
                .live_under(&["cluster/".into(), "group:".into(), "machine:".into()])?;
        let mut stuck = Vec::new();
        for (key, entry) in &sections {
            if let Some(EntryValue::Section(node)) = &entry.value {
                let mut node = node.clone();
                stuck.extend(identity::decrypt_node(&mut node, &keys, &key.to_string()));
            }
        }
        if !stuck.is_empty() {
            return Err(invalid(
                format!(
                    "the cluster still runs secrets that only an identity to retire decrypts: {}",
                    stuck.join("; ")
                ),
                Some("re-encrypt them (`strata secret reencrypt --repo DIR`), apply, then retire"),
            ));
        }
        let writes: Writes = all[1..]
            .iter()
            .map(|(id, _)| (Key::Identity(id.clone()), None))
            .collect();
        self.commit_admin(caller, writes, &view, "secret retire".into(), wall_ms)
    }

    /// The indexes of `texts` the cluster's identities (the current one alone, when
    /// `current_only`) cannot decrypt.
    pub fn secret_check(
        &self,
        texts: &[String],
        current_only: bool,
    ) -> Result<Vec<usize>, StoreError> {
        let view = self.identity_view()?;
        let all = identity::all(&view);
        let take = if current_only { 1 } else { all.len() };
        let keys = identity::keys(all.iter().take(take).map(|(_, i)| *i));
        Ok(texts
            .iter()
            .enumerate()
            .filter(|(_, t)| secret::decrypt(t, &keys).is_err())
            .map(|(i, _)| i)
            .collect())
    }

    /// Each of `texts` decrypted and encrypted again to the current recipient and `also`.
    pub fn secret_reencrypt(
        &self,
        texts: &[String],
        also: &[String],
    ) -> Result<Vec<Result<String, String>>, Refusal> {
        let view = self.identity_view()?;
        let all = identity::all(&view);
        let Some((_, current)) = all.first() else {
            return Err(invalid(
                "the cluster has no identity",
                Some("`strata secret rotate` makes one"),
            ));
        };
        let mut recipients = vec![current.recipient.clone()];
        recipients.extend(also.iter().cloned());
        let recipients = secret::parse_recipients(&recipients)
            .map_err(|e| invalid(e.to_string(), Some("give age X25519 recipients (age1…)")))?;
        let keys = identity::keys(all.iter().map(|(_, i)| *i));
        Ok(texts
            .iter()
            .map(|t| {
                secret::decrypt(t, &keys)
                    .and_then(|clear| secret::encrypt(&clear, &recipients))
                    .map_err(|e| e.to_string())
            })
            .collect())
    }
}
