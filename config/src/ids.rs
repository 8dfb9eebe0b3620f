//! Spin's identifier rules (`spin_serde::id::Id`), kept identical so that any
//! manifest Spin accepts, Flint accepts too.
//!
//! An id is one or more words joined by a delimiter. A word is ASCII letters
//! and digits (plus `:` after its first character), all lowercase or all
//! UPPERCASE; the first word starts with a letter, later ones with a letter or
//! a digit. Spin's `KebabId` (component ids) allows UPPERCASE words; its
//! `LowerSnakeId` (variable names) does not.

/// Checks a component id such as `my-component` (Spin's `KebabId`).
pub(crate) fn check_kebab(id: &str) -> Result<(), String> {
    check(id, '-', '_', Case::LowerOrUpper)
}

/// Checks a variable name such as `api_host` (Spin's `LowerSnakeId`).
pub(crate) fn check_lower_snake(id: &str) -> Result<(), String> {
    check(id, '_', '-', Case::Lower)
}

/// Checks a store or database label: Spin accepts kebab-case or snake_case.
pub(crate) fn check_label(label: &str) -> Result<(), String> {
    match check_kebab(label) {
        Ok(()) => Ok(()),
        Err(_) => check(label, '_', '-', Case::LowerOrUpper)
            .map_err(|_| "expected kebab-case or snake_case".to_owned()),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Case {
    Lower,
    LowerOrUpper,
}

fn check(id: &str, delim: char, wrong_delim: char, case: Case) -> Result<(), String> {
    if id.is_empty() {
        return Err("it is empty".to_owned());
    }
    if id.contains(wrong_delim) {
        return Err(format!(
            "words must be separated with `{delim}`, not `{wrong_delim}`"
        ));
    }
    for (index, word) in id.split(delim).enumerate() {
        let mut chars = word.chars();
        let Some(first) = chars.next() else {
            return Err(format!("`{delim}`-separated words must not be empty"));
        };
        if !(first.is_ascii_alphabetic() || (index > 0 && first.is_ascii_digit())) {
            return Err(format!(
                "words must start with an ASCII letter{}; got `{first}`",
                if index > 0 { " or digit" } else { "" }
            ));
        }
        let upper = first.is_ascii_uppercase();
        for c in chars {
            if c.is_ascii_digit() || c == ':' {
                continue;
            }
            if !c.is_ascii_alphabetic() {
                return Err(format!(
                    "words may only contain ASCII letters and digits; got `{c}`"
                ));
            }
            if c.is_ascii_uppercase() != upper {
                return Err(format!(
                    "words must be all lowercase or all UPPERCASE; got `{word}`"
                ));
            }
        }
        if upper && case == Case::Lower {
            return Err(format!("words must be lowercase; got `{word}`"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_ids_follow_spin_kebab_ids() {
        for good in [
            "api",
            "my-app",
            "a1-2b",
            "hello-world-3",
            "API-v2",
            "ns:name",
        ] {
            assert_eq!(check_kebab(good), Ok(()), "{good}");
        }
        for bad in ["", "Api", "my_app", "-a", "a-", "a--b", "1a", "a b", "café"] {
            assert!(check_kebab(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn variable_names_are_lower_snake_case() {
        for good in ["api_host", "token", "v2_key", "a_1"] {
            assert_eq!(check_lower_snake(good), Ok(()), "{good}");
        }
        for bad in ["", "API_HOST", "Api", "api-host", "_x", "x__y", "2x"] {
            assert!(check_lower_snake(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels_are_kebab_or_snake_case() {
        for good in ["default", "user-data", "user_data"] {
            assert_eq!(check_label(good), Ok(()), "{good}");
        }
        for bad in ["b@d", "user data", "-x"] {
            assert!(check_label(bad).is_err(), "{bad}");
        }
    }
}
