//! A replica's limits as the typed spec keeps them: the quantity as written (so a
//! document reads back as the user wrote it) and its value, parsed once when the
//! document is decoded. Whoever holds a spec holds valid limits: the controller
//! never parses a string, and cannot meet one that does not parse.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::image::{ImageRef, ImageRefError};
use crate::quantity::{QuantityError, parse_cpu, parse_memory};

/// Reads a quantity written as a string or a bare number (`cpu: 2`).
fn quantity_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        String(String),
        Number(serde_json::Number),
    }
    Ok(match Text::deserialize(deserializer)? {
        Text::String(s) => s,
        Text::Number(n) => n.to_string(),
    })
}

macro_rules! quantity {
    ($name:ident, $unit:ident, $parse:ident, $what:literal) => {
        #[doc = concat!("A ", $what, " quantity and its value in ", stringify!($unit), ".")]
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name {
            text: String,
            $unit: u64,
        }

        impl $name {
            #[doc = concat!("Parses a ", $what, " quantity.")]
            ///
            /// # Errors
            /// The text is not a quantity of this kind.
            pub fn parse(text: &str) -> Result<Self, QuantityError> {
                Ok(Self {
                    $unit: $parse(text)?,
                    text: text.to_owned(),
                })
            }

            #[doc = concat!("The value in ", stringify!($unit), ".")]
            #[must_use]
            pub fn $unit(&self) -> u64 {
                self.$unit
            }

            /// As written.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.text
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.text)
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.text == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.text)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = quantity_text(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }

        /// Written as a string (the checks in `validation` give its bounds).
        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }

            fn json_schema(generator: &mut SchemaGenerator) -> Schema {
                String::json_schema(generator)
            }
        }
    };
}

quantity!(Memory, bytes, parse_memory, "memory");
quantity!(Cpu, millicores, parse_cpu, "CPU");

/// The image a replica runs: the reference as written and taken apart once, when the
/// document is decoded. Decoding checks the grammar only; validation also refuses
/// image IDs (`ImageRef::check_not_an_id`) with a message naming the field, so a spec
/// stored before that rule still reads back rather than making its row unreadable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    text: String,
    reference: ImageRef,
}

impl Image {
    /// Parses an image reference.
    ///
    /// # Errors
    /// The text is not a reference, or names an image ID.
    pub fn parse(text: &str) -> Result<Self, ImageRefError> {
        Ok(Self {
            reference: ImageRef::parse(text)?,
            text: text.to_owned(),
        })
    }

    /// Taken apart.
    #[must_use]
    pub fn reference(&self) -> &ImageRef {
        &self.reference
    }

    /// As written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq<&str> for Image {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl Serialize for Image {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Image {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Written as a string (the checks in `validation` give its grammar).
impl JsonSchema for Image {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Image")
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        String::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_back_as_written_and_keep_their_value() {
        let memory: Memory = serde_json::from_value(serde_json::json!("512Mi")).expect("memory");
        assert_eq!((memory.as_str(), memory.bytes()), ("512Mi", 512 << 20));
        assert_eq!(serde_json::to_value(&memory).expect("json"), "512Mi");
        let cpu: Cpu = serde_json::from_value(serde_json::json!(2)).expect("number");
        assert_eq!((cpu.as_str(), cpu.millicores()), ("2", 2000));
        let cpu: Cpu = serde_json::from_value(serde_json::json!("250m")).expect("millicores");
        assert_eq!(cpu.millicores(), 250);
    }

    #[test]
    fn a_quantity_that_does_not_parse_is_not_a_quantity() {
        assert!(serde_json::from_value::<Memory>(serde_json::json!("lots")).is_err());
        assert!(serde_json::from_value::<Cpu>(serde_json::json!("1x")).is_err());
        assert!(Memory::parse("12Qi").is_err());
        assert!(serde_json::from_value::<Image>(serde_json::json!("UPPER/case")).is_err());
    }

    #[test]
    fn an_image_keeps_its_parts() {
        let image = Image::parse("127.0.0.1:5000/longin/httpd:1.0").expect("image");
        assert_eq!(
            image.reference().registry.as_deref(),
            Some("127.0.0.1:5000")
        );
        assert_eq!(image.reference().tag.as_deref(), Some("1.0"));
        assert_eq!(
            serde_json::to_value(&image).expect("json"),
            "127.0.0.1:5000/longin/httpd:1.0"
        );
    }
}
