//! Languages for texts the library shows to people (the loopback page; diagnostics build on this).

use serde::{Deserialize, Serialize};

/// A language. `en` and `de` at least; more can be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// English.
    #[default]
    En,
    /// German.
    De,
}

impl Language {
    /// Parse a language tag (`de`, `de-AT`, `en_US.UTF-8`); unknown tags give English.
    pub fn from_tag(tag: &str) -> Language {
        let t = tag.trim().to_ascii_lowercase();
        if t.starts_with("de") {
            Language::De
        } else {
            Language::En
        }
    }

    /// The BCP 47 tag.
    pub fn tag(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::De => "de",
        }
    }
}
