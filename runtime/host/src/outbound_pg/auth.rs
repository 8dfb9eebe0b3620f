//! The password exchanges a PostgreSQL server may ask for: MD5 (its own
//! `md5(md5(password || user) || salt)`) and SCRAM-SHA-256 (RFC 5802 and
//! 7677, without channel binding, as `channel_binding=prefer` falls back
//! to), whose server signature is verified before the server is believed.

use ring::{digest, hmac, pbkdf2};

use crate::base64;

/// More than any real server uses (PostgreSQL's default is 4096), few
/// enough that a hostile server cannot hold a worker for long.
const MAX_SCRAM_ITERATIONS: u32 = 1_000_000;

/// The answer to `AuthenticationMD5Password`.
pub fn md5_password(user: &str, password: &str, salt: [u8; 4]) -> String {
    let inner = hex(&md5(&[password.as_bytes(), user.as_bytes()].concat()));
    let outer = hex(&md5(&[inner.as_bytes(), &salt].concat()));
    format!("md5{outer}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// MD5 (RFC 1321), for the legacy `md5` authentication only: ring has none.
fn md5(input: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    // K[i] = floor(abs(sin(i + 1)) * 2^32), spelled out rather than computed
    // with a platform's `sin`.
    const K: [u32; 64] = [
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
        0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
        0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
        0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
        0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
        0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
        0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
        0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
        0xeb86d391,
    ];
    let mut state: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
    let mut message = input.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&((input.len() as u64).wrapping_mul(8)).to_le_bytes());
    for block in message.chunks_exact(64) {
        let m: [u32; 16] = std::array::from_fn(|i| {
            u32::from_le_bytes([
                block[4 * i],
                block[4 * i + 1],
                block[4 * i + 2],
                block[4 * i + 3],
            ])
        });
        let [mut a, mut b, mut c, mut d] = state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let rotated = a
                .wrapping_add(f)
                .wrapping_add(K[i])
                .wrapping_add(m[g])
                .rotate_left(S[i]);
            (a, d, c) = (d, c, b);
            b = b.wrapping_add(rotated);
        }
        for (s, v) in state.iter_mut().zip([a, b, c, d]) {
            *s = s.wrapping_add(v);
        }
    }
    let mut out = [0; 16];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    out
}

/// One SCRAM-SHA-256 exchange, from the client's first message to the
/// check of the server's signature.
pub struct Scram {
    password: String,
    client_nonce: String,
    client_first_bare: String,
    /// The server key and the auth message `server-final` must sign, once
    /// `client-final` is computed.
    server: Option<(hmac::Key, String)>,
}

pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
/// `n,,`: no channel binding, no authorization identity.
const GS2_HEADER: &str = "n,,";

impl Scram {
    pub fn new(password: &str, nonce: [u8; 18]) -> Self {
        let client_nonce = base64::encode(&nonce, true);
        // PostgreSQL ignores the SCRAM user name: the startup message's counts.
        let client_first_bare = format!("n=,r={client_nonce}");
        Self {
            password: password.to_owned(),
            client_nonce,
            client_first_bare,
            server: None,
        }
    }

    /// `client-first-message`.
    pub fn client_first(&self) -> String {
        format!("{GS2_HEADER}{}", self.client_first_bare)
    }

    /// `client-final-message`, answering `server-first-message`.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<String, String> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| "SCRAM: the server's first message is not UTF-8".to_owned())?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attribute in server_first.split(',') {
            match attribute.split_at_checked(2) {
                Some(("r=", v)) => nonce = Some(v),
                Some(("s=", v)) => salt = Some(v),
                Some(("i=", v)) => iterations = Some(v),
                _ => {}
            }
        }
        let nonce = nonce.ok_or("SCRAM: the server sent no nonce")?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err("SCRAM: the server's nonce does not extend the client's".into());
        }
        let salt = salt
            .and_then(base64::decode)
            .ok_or("SCRAM: the server sent no valid salt")?;
        let iterations = iterations
            .and_then(|i| i.parse::<u32>().ok())
            .filter(|i| (1..=MAX_SCRAM_ITERATIONS).contains(i))
            .ok_or_else(|| {
                format!(
                    "SCRAM: the server's iteration count is missing or over {MAX_SCRAM_ITERATIONS}"
                )
            })?;

        let mut salted = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            std::num::NonZeroU32::new(iterations).ok_or("SCRAM: zero iterations")?,
            &salt,
            self.password.as_bytes(),
            &mut salted,
        );
        let salted = hmac::Key::new(hmac::HMAC_SHA256, &salted);
        let client_key = hmac::sign(&salted, b"Client Key");
        let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
        let without_proof = format!(
            "c={},r={nonce}",
            base64::encode(GS2_HEADER.as_bytes(), true)
        );
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(client_signature.as_ref())
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac::sign(&salted, b"Server Key");
        self.server = Some((
            hmac::Key::new(hmac::HMAC_SHA256, server_key.as_ref()),
            auth_message,
        ));
        Ok(format!(
            "{without_proof},p={}",
            base64::encode(&proof, true)
        ))
    }

    /// Checks `server-final-message`: the server must prove it knows the
    /// password too.
    pub fn verify(&self, server_final: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(server_final).unwrap_or_default();
        if let Some(error) = text.strip_prefix("e=") {
            return Err(format!("SCRAM: the server refused: {error}"));
        }
        let signature = text
            .split(',')
            .find_map(|a| a.strip_prefix("v="))
            .and_then(base64::decode)
            .ok_or("SCRAM: the server's final message has no signature")?;
        let (key, auth_message) = self
            .server
            .as_ref()
            .ok_or("SCRAM: the server finished before the client's proof")?;
        // ring compares in constant time.
        hmac::verify(key, auth_message.as_bytes(), &signature).map_err(|_| {
            "SCRAM: the server's signature is wrong (it does not know the password)".into()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_rfc_1321() {
        for (input, digest) in [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ] {
            assert_eq!(hex(&md5(input.as_bytes())), digest, "{input}");
        }
    }

    #[test]
    fn md5_passwords_are_postgres_form() {
        // psql: SELECT 'md5' || md5(md5('secret' || 'bob') || E'\\x01020304')
        let answer = md5_password("bob", "secret", [1, 2, 3, 4]);
        assert_eq!(answer.len(), 35);
        assert!(answer.starts_with("md5"));
        let inner = hex(&md5(b"secretbob"));
        let outer = hex(&md5(&[inner.as_bytes(), &[1, 2, 3, 4]].concat()));
        assert_eq!(answer, format!("md5{outer}"));
    }

    /// RFC 7677 §3's example, with its nonce.
    #[test]
    fn scram_matches_rfc_7677() {
        let mut scram = Scram {
            password: "pencil".into(),
            client_nonce: "rOprNGfwEbeRWgbNEkqO".into(),
            client_first_bare: "n=user,r=rOprNGfwEbeRWgbNEkqO".into(),
            server: None,
        };
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert_eq!(
            scram.client_final(server_first).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        scram
            .verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(
            scram
                .verify(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
                .is_err()
        );
        assert!(
            scram
                .verify(b"e=invalid-proof")
                .unwrap_err()
                .contains("invalid-proof")
        );
    }

    #[test]
    fn scram_refuses_a_foreign_nonce() {
        let mut scram = Scram::new("pw", [7; 18]);
        assert!(scram.client_final(b"r=other,s=AAAA,i=4096").is_err());
        let first = scram.client_first();
        let nonce = first.strip_prefix("n,,n=,r=").unwrap().to_owned();
        let huge = format!("r={nonce}x,s=AAAA,i=4000000000");
        assert!(
            scram
                .client_final(huge.as_bytes())
                .unwrap_err()
                .contains("iteration")
        );
    }
}
