//! Located errors. Configuration mistakes are fixed by people editing a file,
//! so every one of them names the file, line and column to look at.

use std::fmt;
use std::path::PathBuf;

/// A 1-based line and column in a configuration file. Columns count
/// characters, not bytes, so they match what an editor shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `text` (TOML spans are byte ranges).
    /// An offset past the end means the end; one inside a multi-byte
    /// character means that character.
    pub fn from_offset(text: &str, offset: usize) -> Self {
        let before = &text[..text.floor_char_boundary(offset)];
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        Self {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }

    /// A diagnostic at this location, for callers (such as the runtime) that
    /// find a problem with a value long after the file was parsed.
    pub fn diagnostic(self, file: impl Into<PathBuf>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.into(),
            line: self.line,
            column: self.column,
            message: message.into(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

impl Diagnostic {
    pub fn location(&self) -> Location {
        Location {
            line: self.line,
            column: self.column,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// Every problem found in one file, in file order, so a user can fix them all
/// in one pass instead of one per run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => f.write_str("no errors"),
            [only] => write!(f, "{only}"),
            all @ [first, ..] => {
                write!(f, "{} errors in {}:", all.len(), first.file.display())?;
                for diagnostic in all {
                    write!(f, "\n{diagnostic}")?;
                }
                Ok(())
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] Diagnostics),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize, column: usize) -> Location {
        Location { line, column }
    }

    #[test]
    fn offsets_become_one_based_lines_and_character_columns() {
        let text = "ab\ncé d\n";
        assert_eq!(Location::from_offset(text, 0), at(1, 1));
        assert_eq!(Location::from_offset(text, 1), at(1, 2));
        assert_eq!(Location::from_offset(text, 3), at(2, 1));
        // `é` is two bytes but one column.
        assert_eq!(Location::from_offset(text, 6), at(2, 3));
        // Inside `é`: still that character, and no panic.
        assert_eq!(Location::from_offset(text, 5), at(2, 2));
        assert_eq!(Location::from_offset(text, 999), at(3, 1));
        assert_eq!(Location::from_offset("", 4), at(1, 1));
    }

    #[test]
    fn diagnostics_print_one_per_line_after_a_count() {
        let d = |line, message: &str| at(line, 2).diagnostic("spin.toml", message);
        let one = Diagnostics(vec![d(3, "bad")]);
        assert_eq!(one.to_string(), "spin.toml:3:2: bad");
        let two = Diagnostics(vec![d(3, "bad"), d(9, "worse")]);
        assert_eq!(
            two.to_string(),
            "2 errors in spin.toml:\nspin.toml:3:2: bad\nspin.toml:9:2: worse"
        );
    }
}
