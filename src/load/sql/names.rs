//! Names and text in the load SQL: a validated `[schema].[table]`, identifiers in brackets,
//! string literals and comment text, each escaped so nothing from the API ends its quotes.

use super::SqlError;
use crate::encode::schema::{column_name, MAX_IDENTIFIER};
use std::str::FromStr;

/// A `[schema].[table]` name, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub schema: String,
    pub table: String,
}

impl FromStr for TableName {
    type Err = SqlError;
    /// `dbo.orders`, `orders` (schema `dbo`), or bracketed parts: `[my schema].[order.lines]`.
    fn from_str(s: &str) -> Result<Self, SqlError> {
        let bad = |why: &str| SqlError::InvalidName(format!("'{s}': {why}"));
        let mut parts = Vec::new();
        let mut rest = s.trim();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('[') {
                // A bracketed part ends at a `]` that is not doubled.
                let mut part = String::new();
                let mut chars = after.char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    if c == ']' {
                        if after[i + 1..].starts_with(']') {
                            part.push(']');
                            chars.next();
                        } else {
                            end = Some(i + 1);
                            break;
                        }
                    } else {
                        part.push(c);
                    }
                }
                let end = end.ok_or_else(|| bad("an unclosed '['"))?;
                parts.push(part);
                rest = &after[end..];
            } else {
                let end = rest.find('.').unwrap_or(rest.len());
                let part = &rest[..end];
                if part.contains(['[', ']']) {
                    return Err(bad(
                        "brackets must enclose a whole part, e.g. [dbo].[orders]",
                    ));
                }
                parts.push(part.to_owned());
                rest = &rest[end..];
            }
            if let Some(after) = rest.strip_prefix('.') {
                rest = after;
                if rest.is_empty() {
                    return Err(bad("ends with '.'"));
                }
            } else if !rest.is_empty() {
                return Err(bad("expected '.' between the schema and the table"));
            }
        }
        let (schema, table) = match parts.as_slice() {
            [table] => ("dbo".to_owned(), table.clone()),
            [schema, table] => (schema.clone(), table.clone()),
            _ => return Err(bad("use schema.table, e.g. dbo.orders")),
        };
        for part in [&schema, &table] {
            if part.trim().is_empty() {
                return Err(bad("a part is empty"));
            }
            if part.chars().count() > MAX_IDENTIFIER {
                return Err(bad("a part is longer than 128 characters"));
            }
            if part.chars().any(char::is_control) {
                return Err(bad("control characters are not allowed"));
            }
        }
        Ok(TableName { schema, table })
    }
}

impl TableName {
    /// `[schema].[table]`.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table))
    }

    /// The same schema, another table name (cut to the identifier limit).
    pub(super) fn sibling(&self, suffix: &str) -> TableName {
        TableName {
            schema: self.schema.clone(),
            table: column_name(&format!("{}{suffix}", self.table)),
        }
    }
}

/// `[name]`, with `]` doubled.
pub fn quote_ident(name: &str) -> String {
    format!("[{}]", name.replace(']', "]]"))
}

/// `N'text'`, with `'` doubled.
pub fn quote_string(text: &str) -> String {
    format!("N'{}'", text.replace('\'', "''"))
}

/// `'text'`, with `'` doubled (for options that take a plain string literal).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Text for a `--` comment: JSON-escaped, so it has no line break.
pub(super) fn comment_text(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"?\"".to_owned())
}
