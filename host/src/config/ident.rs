//! Validated identifiers for names that become table, namespace or step names.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A lower-case SQL-safe name: `[a-z_][a-z0-9_]*`, at most 64 characters.
///
/// Step, table and layer names become Iceberg identifiers and DuckDB schema and
/// table names, so they are checked once here instead of quoted everywhere.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ident(String);

impl Ident {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Ident {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let mut chars = value.chars();
        let valid_start = matches!(chars.next(), Some('a'..='z' | '_'));
        let valid_rest = chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'));
        if valid_start && valid_rest && value.len() <= 64 {
            Ok(Ident(value))
        } else {
            Err(format!(
                "`{value}` is not a valid name: use lower-case letters, digits and `_`, \
                 starting with a letter or `_` (for example `stg_orders`)"
            ))
        }
    }
}

impl schemars::JsonSchema for Ident {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Ident".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A lower-case SQL-safe name, for example `stg_orders`",
            "type": "string",
            "pattern": "^[a-z_][a-z0-9_]*$",
            "maxLength": 64
        })
    }
}

impl From<Ident> for String {
    fn from(value: Ident) -> Self {
        value.0
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_sql_safe_names_and_rejects_others() {
        assert!(Ident::try_from("stg_orders".to_string()).is_ok());
        assert!(Ident::try_from("_x1".to_string()).is_ok());
        for bad in ["", "1abc", "Stg", "a-b", "a.b", "a b"] {
            let err = Ident::try_from(bad.to_string()).unwrap_err();
            assert!(err.contains("is not a valid name"), "{bad}: {err}");
        }
    }
}
