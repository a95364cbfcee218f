//! Why an edit was refused: each a diagnostic with a stable code and a help line.

use crate::config::Problem;
use crate::model::Mode;

/// An edit that cannot be made. Nothing is changed when one is returned.
#[derive(Debug, Clone, thiserror::Error, miette::Diagnostic)]
pub enum EditError {
    /// The section is not in the catalogue.
    #[error("unknown section `{section}`")]
    #[diagnostic(code("strata::edit::unknown-section"), help("{help}"))]
    UnknownSection {
        /// The section asked for.
        section: String,
        /// A suggestion.
        help: String,
    },

    /// A mode argument is not `cluster`, `group:NAME` or `machine:NAME`.
    #[error("`{text}` is not a mode")]
    #[diagnostic(code("strata::edit::bad-mode"), help("{help}"))]
    BadMode {
        /// What was written.
        text: String,
        /// The accepted forms.
        help: String,
    },

    /// The repo declares no such group or machine (or no cluster).
    #[error("{mode} is not declared in the repo")]
    #[diagnostic(code("strata::edit::unknown-mode"), help("{help}"))]
    UnknownMode {
        /// The mode asked for.
        mode: Mode,
        /// A suggestion, or the declared names.
        help: String,
    },

    /// The source mode of a copy or move does not define the section.
    #[error("`{section}` is not defined at {mode}")]
    #[diagnostic(code("strata::edit::not-defined"), help("{help}"))]
    NotDefined {
        /// The section.
        section: String,
        /// The source mode.
        mode: Mode,
        /// Where it is defined instead.
        help: String,
    },

    /// A delete at a mode that does not define the section.
    #[error("`{section}` is not defined at {mode}, so there is nothing to delete")]
    #[diagnostic(code("strata::edit::nothing-to-delete"), help("{help}"))]
    NothingToDelete {
        /// The section.
        section: String,
        /// The mode.
        mode: Mode,
        /// Where it is defined instead.
        help: String,
    },

    /// A copy or move onto the mode it comes from.
    #[error("cannot {verb} `{section}` from {mode} to itself")]
    #[diagnostic(
        code("strata::edit::same-mode"),
        help("name a different mode with --to, or `all-groups`")
    )]
    SameMode {
        /// "copy" or "move".
        verb: &'static str,
        /// The section.
        section: String,
        /// The mode given as both source and target.
        mode: Mode,
    },

    /// `--to all-groups` when there is no group other than the source.
    #[error("there is no group to {verb} `{section}` to")]
    #[diagnostic(
        code("strata::edit::no-groups"),
        help(
            "`all-groups` copies to every declared group, and the source group is the only one; declare another group first"
        )
    )]
    NoOtherGroups {
        /// "copy" or "move".
        verb: &'static str,
        /// The section.
        section: String,
    },

    /// The section's schema does not allow the target's level (restricted commands).
    #[error("`{section}` is {levels} (AsyncOS `{command}`) and cannot be defined at {target}")]
    #[diagnostic(code("strata::edit::level"), help("{help}"))]
    LevelNotAllowed {
        /// The section.
        section: String,
        /// "cluster-only", "machine-only", "cluster, group", ….
        levels: String,
        /// The AsyncOS command the section mirrors.
        command: String,
        /// The refused target ("group:Paris", "every group").
        target: String,
        /// Which levels are allowed.
        help: String,
    },

    /// The edited repo would not validate: the edit would break what refers to the
    /// section (a listener naming an interface a machine no longer has), say.
    #[error("{what} would leave the repo invalid ({count}); nothing was written")]
    #[diagnostic(
        code("strata::edit::invalidates"),
        help(
            "the errors below name what would break: change that first (define what it refers to, or stop referring to it), then run the edit again"
        )
    )]
    Invalidates {
        /// The edit: "deleting `interfaces` at machine:lab1.example.com".
        what: String,
        /// "1 error".
        count: String,
        /// The errors the edited repo would have, pointing into the edited text.
        #[related]
        problems: Vec<Problem>,
    },

    /// The edit did not come out as intended; nothing was changed. A bug in Strata.
    #[error("internal error: {message}")]
    #[diagnostic(
        code("strata::edit::internal"),
        help(
            "this is a bug in strata and no file was changed; please report it with the files involved"
        )
    )]
    Internal {
        /// What went wrong.
        message: String,
    },
}
