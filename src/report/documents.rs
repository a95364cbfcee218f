//! What `show` and `where` print with `--format json`, as types (their schemas are under
//! `schemas/json/`, listed by `cli::json::schemas`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use crate::model::Mode;

/// `strata show --machine M --format json`: a machine's effective config.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ShowMachineJson {
    /// The machine.
    pub machine: Option<String>,
    /// Its group.
    pub group: String,
    /// Its address, as the repo declares it.
    pub address: String,
    /// Each effective section, by name.
    pub sections: BTreeMap<String, EffectiveSectionJson>,
}

/// One of a machine's effective sections.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EffectiveSectionJson {
    /// Where it comes from.
    pub origin: OriginJson,
    /// Whether it holds nothing.
    pub empty: bool,
    /// Its content, as canonical KDL.
    pub kdl: String,
}

/// Where an effective section comes from: a mode's definition, or the factory default.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum OriginJson {
    /// The mode that defines it, and where.
    Mode {
        /// The mode.
        mode: Mode,
        /// The file.
        file: String,
        /// The line, from 1.
        line: usize,
    },
    /// `"factory-default"`: no mode defines it.
    Factory(FactoryDefault),
}

/// The factory default, as `show` names it.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
pub enum FactoryDefault {
    /// No mode defines the section.
    #[serde(rename = "factory-default")]
    FactoryDefault,
}

/// `strata show --group G|--cluster --format json`: what one mode defines.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ShowModeJson {
    /// The mode.
    pub mode: Mode,
    /// Each section it defines, by name.
    pub sections: BTreeMap<String, ModeSectionJson>,
}

/// A section a mode defines.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ModeSectionJson {
    /// The file.
    pub file: String,
    /// The line, from 1.
    pub line: usize,
    /// Whether it is defined empty (overriding with nothing).
    pub empty: bool,
    /// Its content, as canonical KDL.
    pub kdl: String,
}

/// `strata where SECTION --format json`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct WhereJson {
    /// The section.
    pub section: String,
    /// Every mode that defines it.
    pub defined_at: Vec<DefinedAtJson>,
}

/// A mode that defines the section, and the machines its definition reaches.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct DefinedAtJson {
    /// The mode.
    pub mode: Mode,
    /// The file.
    pub file: Option<String>,
    /// The line, from 1.
    pub line: Option<usize>,
    /// The machines it reaches (none when lower levels override it everywhere).
    pub machines: Vec<String>,
}
