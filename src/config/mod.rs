//! Reading a config repo: the files, their KDL, and the declarations they make
//! (the cluster, groups, machines and the sections under each), close to the text
//! and with spans. Nothing here knows the section catalogue; see `schema` and `validate`.

pub mod agent_kdl;
pub mod agent_web;
pub mod diagnostics;
pub mod kdl_text;
pub(crate) mod lex;
mod parse;
pub mod sources;

use std::sync::Arc;

use miette::SourceSpan;

use crate::model::{MAIN_GROUP, Mode, Node};
pub use diagnostics::{Diagnostics, Problem, SourceFile};
pub use kdl_text::{KdlTextError, parse_kdl, value_from_text};
pub use parse::{is_mode_name, parse_files};

/// A string read from a file, with where it was read.
#[derive(Debug, Clone)]
pub struct Spanned {
    /// The value.
    pub value: String,
    /// Where it was read.
    pub span: SourceSpan,
}

/// A section defined at one mode: the section node as written.
#[derive(Debug, Clone)]
pub struct SectionDecl {
    /// The section node (its name is the section name).
    pub node: Node,
    /// The file it is in.
    pub file: Arc<SourceFile>,
}

impl SectionDecl {
    /// The section name.
    pub fn name(&self) -> &str {
        &self.node.name
    }

    /// `file:line` of the section node, for provenance.
    pub fn location(&self) -> String {
        let (line, _) = self.file.line_col(self.node.span.offset());
        format!("{}:{line}", self.file.name)
    }
}

/// A `cluster`, `group` or `machine` node and the sections under it.
#[derive(Debug, Clone)]
pub struct ModeDecl {
    /// Which mode this node declares.
    pub mode: Mode,
    /// The file it is in.
    pub file: Arc<SourceFile>,
    /// The whole node.
    pub span: SourceSpan,
    /// The name argument.
    pub name_span: SourceSpan,
    /// Machines only: the `group=` property.
    pub group: Option<Spanned>,
    /// Machines only: the `address=` property (defaults to the machine name).
    pub address: Option<Spanned>,
    /// Machines only: the `serial=` property.
    pub serial: Option<String>,
    /// Machines only: the `appliance-version=` property (the AsyncOS version the machine
    /// runs, for `validate`'s same-version rule).
    pub appliance_version: Option<Spanned>,
    /// Machines only: the `was=` property, the machine's name before a rename: the
    /// member of that name keeps its host key, membership and history under this one.
    pub was: Option<Spanned>,
    /// The sections defined here, in file order.
    pub sections: Vec<SectionDecl>,
}

impl ModeDecl {
    /// The section called `name`, if this mode defines it (the first, if defined twice).
    pub fn section(&self, name: &str) -> Option<&SectionDecl> {
        self.sections.iter().find(|s| s.name() == name)
    }

    /// Machines only: the group the machine belongs to.
    pub fn group_name(&self) -> &str {
        self.group.as_ref().map_or(MAIN_GROUP, |g| g.value.as_str())
    }

    /// Machines only: the address peers use (the `address=` property, else the name).
    pub fn address(&self) -> &str {
        match (&self.address, self.mode.name()) {
            (Some(a), _) => &a.value,
            (None, Some(n)) => n,
            (None, None) => "",
        }
    }

    /// `file:line` of the node.
    pub fn location(&self) -> String {
        let (line, _) = self.file.line_col(self.span.offset());
        format!("{}:{line}", self.file.name)
    }
}

/// Everything declared by the files of a config repo, as written (duplicates included:
/// validation reports them; lookups take the first).
#[derive(Debug, Clone, Default)]
pub struct Repo {
    /// Every KDL file read, in path order.
    pub files: Vec<Arc<SourceFile>>,
    /// `cluster` nodes (a valid repo has exactly one) and the cluster's name.
    pub clusters: Vec<(ModeDecl, Spanned)>,
    /// `group` nodes.
    pub groups: Vec<ModeDecl>,
    /// `machine` nodes.
    pub machines: Vec<ModeDecl>,
    /// Files that could not be read as configuration at all (syntax errors, refused or
    /// unknown formats): they declare nothing, so repo-wide rules such as "no cluster"
    /// would only echo their errors.
    pub unread: Vec<String>,
}

impl Repo {
    /// The cluster node, if there is one.
    pub fn cluster(&self) -> Option<&ModeDecl> {
        self.clusters.first().map(|(d, _)| d)
    }

    /// The cluster's name, if there is a cluster node.
    pub fn cluster_name(&self) -> Option<&str> {
        self.clusters.first().map(|(_, n)| n.value.as_str())
    }

    /// The group called `name`.
    pub fn group(&self, name: &str) -> Option<&ModeDecl> {
        self.groups.iter().find(|g| g.mode.name() == Some(name))
    }

    /// The machine called `name`.
    pub fn machine(&self, name: &str) -> Option<&ModeDecl> {
        self.machines.iter().find(|m| m.mode.name() == Some(name))
    }

    /// The node that declares `mode`.
    pub fn mode(&self, mode: &Mode) -> Option<&ModeDecl> {
        match mode {
            Mode::Cluster => self.cluster(),
            Mode::Group(n) => self.group(n),
            Mode::Machine(n) => self.machine(n),
        }
    }

    /// Every declared mode: the cluster, then groups, then machines, in file order.
    pub fn modes(&self) -> impl Iterator<Item = &ModeDecl> {
        self.cluster()
            .into_iter()
            .chain(self.groups.iter())
            .chain(self.machines.iter())
    }

    /// [`Repo::modes`], to change (every cluster node, the extra ones too).
    pub fn modes_mut(&mut self) -> impl Iterator<Item = &mut ModeDecl> {
        self.clusters
            .iter_mut()
            .map(|(d, _)| d)
            .chain(self.groups.iter_mut())
            .chain(self.machines.iter_mut())
    }

    /// The machines that belong to group `name`.
    pub fn machines_in<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a ModeDecl> + 'a {
        self.machines
            .iter()
            .filter(move |m| m.group_name() == group)
    }
}
