//! The JSON documents commands print with `--format json`, as types (here, or the
//! protocol's own where a command prints an agent's answer as it comes): what serde writes
//! and what schemars describes are the same declaration, so the schemas checked in under
//! `schemas/json/` (one per document, [`schemas`]) cannot drift from the output. A test
//! regenerates them and fails on a difference (`STRATA_BLESS=1` rewrites them), and the
//! integration tests validate real output against them.

use schemars::{JsonSchema, Schema, schema_for};
use serde::Serialize;

use crate::config::Problem;
use crate::config::diagnostics::Omitted;

mod cluster;
mod secret;

pub use cluster::{
    CommitJson, ConfirmJson, DeleteGroupJson, GroupJson, JoinJson, MembershipAction,
    MembershipJson, PrepjoinAddJson, PrepjoinHostJson, PrepjoinListJson, RenameGroupJson,
    RenameMachineJson, RepairJson, RolloutJson, SetGroupJson, SetNameJson, UserJson,
};
pub use secret::{EncryptJson, RecipientsJson, ReencryptJson, RotateJson, SiteJson};

/// A problem found in a file: what diagnostics show, as data.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ProblemJson {
    /// The problem's code (`strata::ref::unknown-section`, say).
    pub code: String,
    /// `error` or `warning`.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
    /// The file, as named on the command line or from the repo's root.
    pub file: Option<String>,
    /// The line, from 1.
    pub line: Option<usize>,
    /// The column, from 1.
    pub column: Option<usize>,
    /// What the underlined span is.
    pub label: Option<String>,
    /// How to fix it.
    pub help: Option<String>,
    /// The repo it was found in, when a command checked several (`validate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
}

/// Whether a problem stops the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// It does: the config is invalid.
    Error,
    /// It does not.
    Warning,
}

impl ProblemJson {
    /// `p` as data.
    pub fn of(p: &Problem) -> ProblemJson {
        let (line, column) = p
            .line_col()
            .map_or((None, None), |(l, c)| (Some(l), Some(c)));
        ProblemJson {
            code: p.code.to_owned(),
            severity: if p.is_error() {
                Severity::Error
            } else {
                Severity::Warning
            },
            message: p.message.clone(),
            file: p.at.as_ref().map(|l| l.file.name.clone()),
            line,
            column,
            label: p.at.as_ref().map(|l| l.label.clone()),
            help: p.help.clone(),
            repo: None,
        }
    }
}

/// Problems of one kind that were counted and not shown.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct OmittedJson {
    /// Their code.
    pub code: String,
    /// How many of them are errors.
    pub errors: usize,
    /// How many are warnings.
    pub warnings: usize,
    /// The "and N more like this" line.
    pub message: String,
}

impl OmittedJson {
    /// `o` as data.
    pub fn of(o: &Omitted) -> OmittedJson {
        OmittedJson {
            code: o.code.to_owned(),
            errors: o.errors,
            warnings: o.warnings,
            message: o.line(),
        }
    }
}

/// What every command prints on stdout when it fails with `--format json`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ErrorJson {
    /// The error.
    pub error: String,
    /// Its kind, which decides the exit code (`invalid`, `unreachable`, …).
    pub kind: String,
    /// The diagnostic's code, when it has one.
    pub code: Option<String>,
    /// How to fix it.
    pub help: Option<String>,
    /// The diagnostics it carries (what an edit would break, say).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<RelatedJson>,
}

/// A diagnostic an error carries.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RelatedJson {
    /// What is wrong.
    pub error: String,
    /// Its code.
    pub code: Option<String>,
    /// How to fix it.
    pub help: Option<String>,
}

/// `strata validate --format json`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ValidateJson {
    /// Whether every repo is valid (no errors; warnings allowed).
    pub valid: bool,
    /// Errors in all repos.
    pub errors: usize,
    /// Warnings in all repos.
    pub warnings: usize,
    /// Each repo checked, in the order given.
    pub repos: Vec<RepoSummary>,
    /// The problems kept (the per-code caps apply to the whole run).
    pub problems: Vec<ProblemJson>,
    /// The problems counted and not shown.
    pub omitted: Vec<OmittedJson>,
}

/// One repo `validate` checked.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RepoSummary {
    /// The paths checked as one repo, joined by spaces.
    pub path: String,
    /// Whether it has no errors.
    pub valid: bool,
    /// The cluster's name, when the repo gives one.
    pub cluster: Option<String>,
    /// Groups declared.
    pub groups: usize,
    /// Machines declared.
    pub machines: usize,
    /// Sections defined, at every mode.
    pub sections_defined: usize,
    /// Its errors.
    pub errors: usize,
    /// Its warnings.
    pub warnings: usize,
}

/// `strata hash-passphrase --format json`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HashPassphraseJson {
    /// Always `argon2id`.
    pub algorithm: String,
    /// The PHC string to put in `passphrase-hash=`.
    pub hash: String,
}

/// `strata plan --format json`: the plan (as `--out` saves it) and what it means.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanJson {
    /// The plan itself.
    #[serde(flatten)]
    pub plan: crate::plan::Plan,
    /// Whether applying it would change anything (exit 2).
    pub changes: bool,
    /// The machine whose agent was asked.
    pub agent: String,
    /// What `apply` does only with an explicit `--allow-…` flag.
    pub hazards: Vec<crate::plan::Hazard>,
}

/// `strata apply --format json` (and `rollback`): applied, or nothing to apply.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ApplyJson {
    /// The change set was committed.
    Applied {
        /// Always true.
        #[schemars(extend("const" = true))]
        applied: bool,
        /// The change set, as `log` lists it.
        change_set: Box<crate::state::ChangeSetSummary>,
        /// What it did on the applying machine.
        running: crate::protocol::RunReport,
        /// The hazards applied on purpose (their `--allow-…` flags given).
        hazards: Vec<crate::plan::Hazard>,
        /// With `--wait`: where it stands on every member; `null` without it, or when
        /// the agent cannot say.
        propagation: Option<Vec<crate::protocol::consistency::MachinePropagation>>,
    },
    /// Nothing to apply: the live state is already the desired one.
    Unchanged {
        /// Always false.
        #[schemars(extend("const" = false))]
        applied: bool,
        /// Always false.
        #[schemars(extend("const" = false))]
        changes: bool,
    },
}

impl ApplyJson {
    /// Nothing to apply.
    pub fn unchanged() -> ApplyJson {
        ApplyJson::Unchanged {
            applied: false,
            changes: false,
        }
    }
}

/// `strata manpages DIR --format json`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ManpagesJson {
    /// The directory written.
    pub dir: String,
    /// The pages written into it (`strata.1`, `strata-cluster-join.1`, …).
    pub pages: Vec<String>,
}

/// `strata export-xml --format json`: what was exported.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ExportXmlJson {
    /// `machine` or `cluster`.
    pub exported: String,
    /// The machine exported (`null` for the cluster form).
    pub machine: Option<String>,
    /// The document's size in bytes, in its own encoding.
    pub bytes: usize,
    /// The file written (`null` without `--out`).
    pub out: Option<String>,
    /// Without `--out`: the encoding its declaration names, to write `xml` in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Without `--out`: the document, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xml: Option<String>,
}

/// `strata show --sections --format json`: the catalogue.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SectionsJson {
    /// Every section the repo may define, by name.
    pub sections: Vec<SectionInfoJson>,
}

/// One section of the catalogue.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SectionInfoJson {
    /// Its name.
    pub name: String,
    /// The AsyncOS command it mirrors.
    pub command: String,
    /// The levels it may be defined at (`cluster`, `group`, `machine`).
    pub levels: Vec<String>,
    /// What it configures.
    pub summary: String,
}

/// `strata copy|move|delete --format json`: what the edit did to the repo's files.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EditJson {
    /// What was done, in a line.
    pub summary: String,
    /// The files changed, from the repo's root.
    pub changed: Vec<String>,
    /// The shadowing notices (modes the change will not affect).
    pub notices: Vec<String>,
    /// Machines left on a section's empty factory default where they had content.
    pub left_blank: Vec<String>,
    /// To `all-groups`: each group and what became of it.
    pub groups: Vec<crate::edit::GroupEdit>,
    /// Warnings the edited repo has.
    pub problems: Vec<ProblemJson>,
}

/// `strata import-xml --format json`: the files written and what they hold.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ImportXmlJson {
    /// What was imported, in a line (`machine lab3 of group Paris`, say).
    pub imported: String,
    /// The files written, from the repo's root.
    pub files: Vec<String>,
    /// What the import did: per label (`overrides`, `dropped`, …), its items.
    pub summary: std::collections::BTreeMap<String, Vec<String>>,
    /// Warnings the repo has afterwards.
    pub warnings: usize,
}

/// `strata log --format json`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct LogJson {
    /// The machine that answered.
    pub machine: String,
    /// Its change sets, newest first.
    pub change_sets: Vec<crate::state::ChangeSetSummary>,
}

/// `strata log --conflicts --format json`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ConflictsJson {
    /// The machine that answered.
    pub machine: String,
    /// Each write that lost to one made without knowing of it.
    pub conflicts: Vec<crate::state::LostWrite>,
}

/// Every document with a schema, by the file name (without `.json`) it has under
/// `schemas/json/`.
pub fn schemas() -> Vec<(&'static str, Schema)> {
    vec![
        ("error", schema_for!(ErrorJson)),
        ("validate", schema_for!(ValidateJson)),
        ("hash-passphrase", schema_for!(HashPassphraseJson)),
        (
            "status",
            schema_for!(crate::protocol::sync_status::SyncStatus),
        ),
        (
            "cluster-list",
            schema_for!(crate::protocol::status::ClusterListing),
        ),
        (
            "cluster-connstatus",
            schema_for!(crate::protocol::status::ConnStatus),
        ),
        ("plan", schema_for!(PlanJson)),
        ("apply", schema_for!(ApplyJson)),
        ("check", schema_for!(super::check::CheckJson)),
        ("log", schema_for!(LogJson)),
        ("cluster-join", schema_for!(JoinJson)),
        ("secret-recipients", schema_for!(RecipientsJson)),
        ("import-xml", schema_for!(ImportXmlJson)),
        ("edit", schema_for!(EditJson)),
        ("export-xml", schema_for!(ExportXmlJson)),
        ("show-sections", schema_for!(SectionsJson)),
        ("show-machine", schema_for!(crate::report::ShowMachineJson)),
        ("show-mode", schema_for!(crate::report::ShowModeJson)),
        ("where", schema_for!(crate::report::WhereJson)),
        ("cluster-passwd", schema_for!(CommitJson<UserJson>)),
        ("cluster-create", schema_for!(CommitJson<SetNameJson>)),
        ("cluster-setname", schema_for!(CommitJson<SetNameJson>)),
        ("cluster-addgroup", schema_for!(CommitJson<GroupJson>)),
        ("cluster-setgroup", schema_for!(CommitJson<SetGroupJson>)),
        (
            "cluster-renamegroup",
            schema_for!(CommitJson<RenameGroupJson>),
        ),
        (
            "cluster-renamemachine",
            schema_for!(CommitJson<RenameMachineJson>),
        ),
        (
            "cluster-deletegroup",
            schema_for!(CommitJson<DeleteGroupJson>),
        ),
        (
            "cluster-prepjoin-add",
            schema_for!(CommitJson<PrepjoinAddJson>),
        ),
        (
            "cluster-prepjoin-delete",
            schema_for!(CommitJson<PrepjoinHostJson>),
        ),
        ("cluster-prepjoin-list", schema_for!(PrepjoinListJson)),
        (
            "cluster-prepjoin-print",
            schema_for!(crate::protocol::status::PendingEntry),
        ),
        ("manpages", schema_for!(ManpagesJson)),
        ("log-conflicts", schema_for!(ConflictsJson)),
        (
            "cluster-disconnect",
            schema_for!(CommitJson<MembershipJson>),
        ),
        ("cluster-reconnect", schema_for!(CommitJson<MembershipJson>)),
        ("cluster-remove", schema_for!(CommitJson<MembershipJson>)),
        ("cluster-repair", schema_for!(RepairJson)),
        ("confirm", schema_for!(CommitJson<ConfirmJson>)),
        ("rollout", schema_for!(CommitJson<RolloutJson>)),
        ("secret-encrypt", schema_for!(EncryptJson)),
        ("secret-rotate", schema_for!(RotateJson)),
        ("secret-reencrypt", schema_for!(ReencryptJson)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checked-in schemas are what the types say; `STRATA_BLESS=1` rewrites them.
    #[test]
    fn the_checked_in_schemas_are_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/json");
        let bless = std::env::var_os("STRATA_BLESS").is_some();
        let mut stale = Vec::new();
        for (name, schema) in schemas() {
            let path = dir.join(format!("{name}.json"));
            let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(path.display().to_string());
            }
        }
        assert!(
            stale.is_empty(),
            "stale JSON schemas (run `STRATA_BLESS=1 cargo test --lib json`): {stale:?}"
        );
    }
}
