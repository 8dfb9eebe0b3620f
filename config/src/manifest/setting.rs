//! Whole numbers and booleans written the way Spin's trigger plugins read
//! them, as strings (`qos = "1"`), or as plain TOML values.

use std::fmt::Display;

use toml::Spanned;

use super::schema::{Flag, Whole};
use crate::source::Problems;

/// The setting `key` as a `T` of at least `min` and at most `max` (`None`:
/// as large as `T` holds). `None` if it is absent, or invalid and reported.
pub(super) fn whole<T>(
    value: Option<&Spanned<Whole>>,
    key: &str,
    min: T,
    max: Option<T>,
    problems: &mut Problems<'_>,
) -> Option<T>
where
    T: TryFrom<i128> + PartialOrd + Display + Copy,
{
    let value = value?;
    let (number, written) = match value.get_ref() {
        Whole::Integer(n) => (Some(i128::from(*n)), n.to_string()),
        // Any i64 or u64 fits, so overflow is told apart from non-numbers.
        Whole::Text(text) => (text.parse::<i128>().ok(), format!("{text:?}")),
    };
    let message = match number {
        None => format!("`{key}` must be a whole number, not {written}"),
        Some(n) => match (T::try_from(n), max) {
            (Ok(t), _) if t >= min && max.is_none_or(|max| t <= max) => return Some(t),
            (_, Some(max)) => format!("`{key}` must be from {min} to {max}, not {written}"),
            (Err(_), None) if n > 0 => format!("`{key}` is too large: {written}"),
            (_, None) => format!("`{key}` must be at least {min}, not {written}"),
        },
    };
    problems.report(&value.span(), message);
    None
}

/// The setting `key` as a boolean. `None` if it is absent, or invalid and
/// reported.
pub(super) fn flag(
    value: Option<&Spanned<Flag>>,
    key: &str,
    problems: &mut Problems<'_>,
) -> Option<bool> {
    let value = value?;
    match value.get_ref() {
        Flag::Bool(flag) => Some(*flag),
        Flag::Text(text) if text == "true" => Some(true),
        Flag::Text(text) if text == "false" => Some(false),
        Flag::Text(text) => {
            problems.report(
                &value.span(),
                format!("`{key}` must be true or false, not {text:?}"),
            );
            None
        }
    }
}
