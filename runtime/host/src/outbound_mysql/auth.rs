//! The password scrambles of the two authentication plugins MySQL and
//! MariaDB use by default, as mysql_async computes them.

use ring::digest::{Context, SHA1_FOR_LEGACY_USE_ONLY, SHA256, digest};

/// An authentication plugin Flint can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plugin {
    /// MariaDB's default and MySQL's before 8.0.
    NativePassword,
    /// MySQL 8's default.
    CachingSha2Password,
}

impl Plugin {
    pub(super) fn by_name(name: &[u8]) -> Option<Self> {
        match name {
            b"mysql_native_password" => Some(Self::NativePassword),
            b"caching_sha2_password" => Some(Self::CachingSha2Password),
            _ => None,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::NativePassword => "mysql_native_password",
            Self::CachingSha2Password => "caching_sha2_password",
        }
    }

    /// What the client sends for `password` against the server's 20-byte
    /// `nonce`; an empty password is sent as nothing.
    pub(super) fn scramble(self, password: &[u8], nonce: &[u8]) -> Vec<u8> {
        if password.is_empty() {
            return Vec::new();
        }
        match self {
            // SHA1(password) XOR SHA1(nonce + SHA1(SHA1(password)))
            Self::NativePassword => {
                let stage1 = digest(&SHA1_FOR_LEGACY_USE_ONLY, password);
                let stage2 = digest(&SHA1_FOR_LEGACY_USE_ONLY, stage1.as_ref());
                let mut ctx = Context::new(&SHA1_FOR_LEGACY_USE_ONLY);
                ctx.update(nonce);
                ctx.update(stage2.as_ref());
                xor(stage1.as_ref(), ctx.finish().as_ref())
            }
            // SHA256(password) XOR SHA256(SHA256(SHA256(password)) + nonce)
            Self::CachingSha2Password => {
                let p1 = digest(&SHA256, password);
                let p2 = digest(&SHA256, p1.as_ref());
                let mut ctx = Context::new(&SHA256);
                ctx.update(p2.as_ref());
                ctx.update(nonce);
                xor(p1.as_ref(), ctx.finish().as_ref())
            }
        }
    }
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// The 20 bytes a scramble is computed over: the server sends them with a
/// trailing NUL (in the greeting and in an auth switch), and servers pad a
/// shorter one with zeros, as mysql_async does.
pub(super) fn nonce(data: &[u8]) -> Vec<u8> {
    let mut nonce = data.to_vec();
    nonce.resize(20, 0);
    nonce
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values from Python's hashlib with the same formulas.
    const NONCE: [u8; 20] = [
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
    ];

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn native_password_scramble() {
        assert_eq!(
            hex(&Plugin::NativePassword.scramble(b"secret", &NONCE)),
            "b32bb3a583e1340c0a1108d58b1be49781ad8c2f"
        );
    }

    #[test]
    fn caching_sha2_scramble() {
        assert_eq!(
            hex(&Plugin::CachingSha2Password.scramble(b"secret", &NONCE)),
            "746ebe205d56a0707acb3e796e834e0dd7b1d61743b26bd5202c7a623230c7c9"
        );
    }

    #[test]
    fn empty_passwords_send_nothing() {
        assert!(Plugin::NativePassword.scramble(b"", &NONCE).is_empty());
        assert!(Plugin::CachingSha2Password.scramble(b"", &NONCE).is_empty());
    }

    #[test]
    fn nonces_are_twenty_bytes() {
        let mut with_nul = NONCE.to_vec();
        with_nul.push(0);
        assert_eq!(nonce(&with_nul), NONCE);
        assert_eq!(nonce(&[1, 2]).len(), 20);
    }
}
