//! Reading a TOML file into typed data with located errors, and collecting
//! validation problems so that all of them are reported together.

use std::ops::Range;
use std::path::Path;

use serde::de::DeserializeOwned;

use crate::diagnostic::{ConfigError, Diagnostic, Diagnostics, Location};

/// The text of one configuration file and the path it is reported under.
pub(crate) struct Source<'a> {
    pub text: &'a str,
    pub path: &'a Path,
}

impl<'a> Source<'a> {
    pub fn new(text: &'a str, path: &'a Path) -> Self {
        Self { text, path }
    }

    pub fn location(&self, span: &Range<usize>) -> Location {
        Location::from_offset(self.text, span.start)
    }

    pub fn diagnostic(&self, span: &Range<usize>, message: impl Into<String>) -> Diagnostic {
        self.location(span).diagnostic(self.path, message)
    }

    /// Deserializes the whole file. serde stops at the first error, so this
    /// reports exactly one problem: syntax errors, unknown keys and values
    /// of the wrong type.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        toml::from_str(self.text).map_err(|error| {
            // `message()` is the core message; the error's Display would add
            // toml's own multi-line source snippet, which our format replaces.
            let span = error.span().unwrap_or(0..0);
            let diagnostic = self.diagnostic(&span, error.message().trim_end());
            ConfigError::Invalid(Diagnostics(vec![diagnostic]))
        })
    }
}

/// Reads a configuration file for a `load_*` function.
pub(crate) fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Validation problems found so far in one file.
pub(crate) struct Problems<'a> {
    source: &'a Source<'a>,
    found: Vec<Diagnostic>,
}

impl<'a> Problems<'a> {
    pub fn new(source: &'a Source<'a>) -> Self {
        Self {
            source,
            found: Vec::new(),
        }
    }

    pub fn source(&self) -> &'a Source<'a> {
        self.source
    }

    pub fn report(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let diagnostic = self.source.diagnostic(span, message);
        self.found.push(diagnostic);
    }

    /// `value` if nothing was reported, else every problem in file order.
    pub fn finish<T>(mut self, value: T) -> Result<T, ConfigError> {
        if self.found.is_empty() {
            return Ok(value);
        }
        self.found.sort_by_key(Diagnostic::location);
        Err(ConfigError::Invalid(Diagnostics(self.found)))
    }
}
