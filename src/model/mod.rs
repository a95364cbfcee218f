//! The pure data model: levels and modes, and the canonical, span-free form of a
//! section's contents that layering, planning and equality work on.

mod level;
mod node;

pub use level::{Level, Mode, ModeParseError};
pub use node::{Node, Value};

/// The group every machine belongs to unless it names another one, as in AsyncOS.
pub const MAIN_GROUP: &str = "Main_Group";
