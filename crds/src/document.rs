//! Reading applied documents: YAML streams (`---` separated) and JSON, with the line and
//! column of a syntax error.

use serde::Deserialize;
use serde_json::Value;

/// A document that is not well-formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    pub message: String,
    /// 1-based, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
}

/// The documents of a YAML stream, in order; empty documents are skipped.
///
/// # Errors
/// The first syntax error, with its position.
pub fn parse_yaml_documents(text: &str) -> Result<Vec<Value>, SyntaxError> {
    let mut documents = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Value::deserialize(document).map_err(|err| {
            let location = err.location();
            SyntaxError {
                message: err.to_string(),
                line: location.as_ref().map(serde_yaml_ng::Location::line),
                column: location.as_ref().map(serde_yaml_ng::Location::column),
            }
        })?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    Ok(documents)
}

/// The documents of a JSON body: one object, or a list of them.
///
/// # Errors
/// A syntax error, with its position.
pub fn parse_json_documents(text: &str) -> Result<Vec<Value>, SyntaxError> {
    let value: Value = serde_json::from_str(text).map_err(|err| SyntaxError {
        message: err.to_string(),
        line: Some(err.line()),
        column: Some(err.column()),
    })?;
    Ok(match value {
        Value::Array(items) => items,
        other => vec![other],
    })
}

/// An application as YAML (for `Accept: application/yaml` and the CLI).
///
/// # Errors
/// Only if the value cannot be represented, which does not happen for resources.
pub fn to_yaml<T: serde::Serialize>(value: &T) -> Result<String, serde_yaml_ng::Error> {
    serde_yaml_ng::to_string(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_stream_yields_each_document() {
        let docs = parse_yaml_documents("a: 1\n---\nb: 2\n---\n").expect("valid");
        assert_eq!(
            docs,
            vec![serde_json::json!({"a": 1}), serde_json::json!({"b": 2})]
        );
    }

    #[test]
    fn yaml_syntax_error_has_line_and_column() {
        let err = parse_yaml_documents("a: 1\nb: [1, 2\nc: 3\n").expect_err("invalid");
        assert!(err.line.is_some() && err.column.is_some(), "{err:?}");
        assert!(err.line >= Some(2), "{err:?}");
    }

    #[test]
    fn json_body_may_be_one_document_or_a_list() {
        assert_eq!(parse_json_documents(r#"{"a":1}"#).expect("valid").len(), 1);
        assert_eq!(
            parse_json_documents(r#"[{"a":1},{"b":2}]"#)
                .expect("valid")
                .len(),
            2
        );
        let err = parse_json_documents("{\n  \"a\": }").expect_err("invalid");
        assert_eq!((err.line, err.column), (Some(2), Some(8)));
    }
}
