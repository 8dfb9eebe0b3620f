//! The names inside a bundle, and the rule every one of them must follow.
//!
//! A bundle path is relative, `/`-separated and normalised: no empty, `.` or
//! `..` segment, no leading `/`, no backslash or control character, at most
//! [`MAX_PATH_BYTES`] bytes (what a ustar header holds). Joined to a fresh
//! directory it therefore always names something inside that directory.

/// The digest manifest: the first member of every bundle.
pub const DIGESTS: &str = "flint-bundle.sha256";
/// The signature over the digest manifest: the second member, when signed.
pub const SIGNATURE: &str = "flint-bundle.sig";
/// The rewritten app manifest.
pub const MANIFEST: &str = "spin.toml";
/// The runtime-config file, when the bundle has one.
pub const RUNTIME_CONFIG: &str = "runtime-config.toml";
/// Where component modules go.
pub const COMPONENTS_DIR: &str = "components";
/// Where the files components mount go.
pub const FILES_DIR: &str = "files";

/// The longest path a ustar header can hold (155-byte prefix, `/`, 100-byte name).
pub const MAX_PATH_BYTES: usize = 255;

/// Checks one bundle path; the reason completes "path `...` ...".
pub fn check(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("is empty");
    }
    if path.len() > MAX_PATH_BYTES {
        return Err("is longer than 255 bytes");
    }
    if path.starts_with('/') {
        return Err("is an absolute path");
    }
    if path.chars().any(|c| c == '\\' || c.is_control()) {
        return Err("contains a backslash or a control character");
    }
    for segment in path.split('/') {
        match segment {
            ".." => return Err("contains `..`, which would leave the bundle's directory"),
            "" | "." => return Err("is not a normalised relative path (an empty or `.` segment)"),
            _ => {}
        }
    }
    Ok(())
}

/// Whether `path` is one of the two members that describe the bundle.
pub fn is_metadata(path: &str) -> bool {
    path == DIGESTS || path == SIGNATURE
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn only_normalised_relative_paths_pass() {
        for good in [
            "spin.toml",
            "files/a/b.txt",
            "components/x.wasm",
            "a b/ü.txt",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "/abs",
            "../x",
            "a/../../x",
            "a/..",
            "./a",
            "a//b",
            "a/",
            "a\\b",
            "a\nb",
            "a\0b",
            &"x".repeat(256),
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
    }
}
