//! JSON Schemas for the model's types that serialize as text (names, modes, keys): a
//! string, described, so the schemas of command output (`schemas/json/`) say what the
//! text holds.

/// Implements `schemars::JsonSchema` for `$ty` as a string described by `$what`.
macro_rules! string_schema {
    ($ty:ty, $what:expr) => {
        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "description": $what })
            }
        }
    };
}
