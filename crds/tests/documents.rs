//! Reading and checking applied documents over arbitrary input: the bounded parse reads
//! what the plain one reads wherever both finish, and nothing panics on the way.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod arbitrary;

use proptest::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use longin_crds::document::{DocumentError, parse_json_documents, parse_yaml_documents};
use longin_crds::validation::parse_application;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        // A failure prints its minimal input; nothing is written into the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The parse as it was before the budget.
fn unbounded_yaml(text: &str) -> Result<Vec<Value>, serde_yaml_ng::Error> {
    let mut documents = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Value::deserialize(document)?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    Ok(documents)
}

/// What the API does with the documents of a body: every one is checked.
fn validate(documents: &[Value]) -> usize {
    documents
        .iter()
        .filter(|document| match parse_application(document) {
            Ok(_) => true,
            // A refusal always says what is wrong.
            Err(problems) => {
                assert!(!problems.is_empty(), "refused without a reason: {document}");
                false
            }
        })
        .count()
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => arbitrary::yaml_text(),
        1 => any::<String>(),
        2 => arbitrary::mutated_application().prop_map(|doc| arbitrary::to_yaml(&doc)),
        1 => arbitrary::json_value().prop_map(|doc| doc.to_string()),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn yaml_reads_as_it_did_without_the_budget(text in any_text()) {
        match (parse_yaml_documents(&text), unbounded_yaml(&text)) {
            (Ok(ours), Ok(plain)) => prop_assert_eq!(ours, plain),
            (Err(DocumentError::Syntax(_)), Err(_)) => {}
            // Only nesting can be refused here: these texts are too short to expand.
            (Err(DocumentError::TooDeep { .. }), _) => {}
            (ours, plain) => prop_assert!(false, "bounded {ours:?}, plain {plain:?}"),
        }
    }

    #[test]
    fn json_reads_as_serde_json_reads_it(value in arbitrary::json_value(), pretty: bool) {
        let text = if pretty {
            serde_json::to_string_pretty(&value).unwrap()
        } else {
            value.to_string()
        };
        let expected = match serde_json::from_str::<Value>(&text).unwrap() {
            Value::Array(items) => items,
            other => vec![other],
        };
        prop_assert_eq!(parse_json_documents(&text).unwrap(), expected);
    }

    #[test]
    fn malformed_json_is_a_syntax_error(text in any_text()) {
        match (parse_json_documents(&text), serde_json::from_str::<Value>(&text)) {
            (Ok(ours), Ok(plain)) => {
                let plain = match plain {
                    Value::Array(items) => items,
                    other => vec![other],
                };
                prop_assert_eq!(ours, plain);
            }
            (Err(DocumentError::Syntax(ours)), Err(plain)) => {
                prop_assert_eq!((ours.line, ours.column), (Some(plain.line()), Some(plain.column())));
            }
            (ours, plain) => prop_assert!(false, "bounded {ours:?}, plain {plain:?}"),
        }
    }

    #[test]
    fn parse_then_validate_never_panics(text in any_text()) {
        if let Ok(documents) = parse_yaml_documents(&text) {
            validate(&documents);
        }
        if let Ok(documents) = parse_json_documents(&text) {
            validate(&documents);
        }
    }

    #[test]
    fn mutated_applications_are_checked_in_both_syntaxes(doc in arbitrary::mutated_application()) {
        let from_yaml = parse_yaml_documents(&arbitrary::to_yaml(&doc)).unwrap();
        // In a list, as a JSON body's own top-level list would be its documents.
        let from_json = parse_json_documents(&Value::Array(vec![doc]).to_string()).unwrap();
        prop_assert_eq!(validate(&from_yaml), validate(&from_json));
    }

    #[test]
    fn valid_applications_pass(doc in arbitrary::valid_application()) {
        for documents in [
            parse_yaml_documents(&arbitrary::to_yaml(&doc)).unwrap(),
            parse_json_documents(&doc.to_string()).unwrap(),
        ] {
            let app = parse_application(&documents[0]);
            prop_assert!(app.is_ok(), "{doc}: {app:?}");
            let name = app.unwrap().metadata.name;
            prop_assert_eq!(Some(name.as_str()), doc["metadata"]["name"].as_str());
        }
    }
}
