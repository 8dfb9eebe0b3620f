//! The little of URLs a registry client needs: absolute `http(s)://` URLs,
//! `Location` headers (absolute or relative to the registry), query values.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    pub https: bool,
    /// Without brackets for IPv6.
    pub host: String,
    pub port: u16,
    /// Starts with `/`.
    pub path_and_query: String,
}

impl Url {
    /// The registry's API root for `registry` (`host[:port]`).
    pub fn registry(registry: &str, https: bool, path: &str) -> Result<Url, String> {
        let scheme = if https { "https" } else { "http" };
        Url::parse(&format!("{scheme}://{registry}{path}"))
    }

    pub fn parse(text: &str) -> Result<Url, String> {
        let bad = |why: &str| format!("`{}` is not a usable URL: {why}", printable(text));
        let (https, rest) = if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(bad("only http:// and https:// are followed"));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(bad("user information in URLs is not accepted"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| bad("junk after `]`"))?,
                ),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'))
        {
            return Err(bad("no valid host"));
        }
        let port = match port {
            None => {
                if https {
                    443
                } else {
                    80
                }
            }
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| bad("the port is not a number"))?,
        };
        let path_and_query = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        if path_and_query
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'#' || b >= 0x7f)
        {
            return Err(bad(
                "the path holds characters that must be percent-encoded",
            ));
        }
        Ok(Url {
            https,
            host: host.to_owned(),
            port,
            path_and_query,
        })
    }

    /// A `Location` header's target: absolute, or a path on this URL's origin.
    pub fn join(&self, location: &str) -> Result<Url, String> {
        if location.starts_with("http://") || location.starts_with("https://") {
            Url::parse(location)
        } else if location.starts_with('/') && !location.starts_with("//") {
            let mut url = self.clone();
            url.path_and_query = location.to_owned();
            Url::parse(&url.to_string())
        } else {
            Err(format!(
                "`{}` is neither an absolute URL nor a path",
                printable(location)
            ))
        }
    }

    /// This URL with `name=value` added to its query.
    pub fn with_query(&self, name: &str, value: &str) -> Url {
        let mut url = self.clone();
        let separator = if url.path_and_query.contains('?') {
            '&'
        } else {
            '?'
        };
        url.path_and_query = format!(
            "{}{separator}{}={}",
            url.path_and_query,
            percent_encode(name),
            percent_encode(value)
        );
        url
    }

    /// `host[:port]` for the `Host` header; the port only when it is not the
    /// scheme's default.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// Same scheme, host and port.
    pub fn same_origin(&self, other: &Url) -> bool {
        self.https == other.https
            && self.host.eq_ignore_ascii_case(&other.host)
            && self.port == other.port
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority(), self.path_and_query)
    }
}

/// Everything but RFC 3986's unreserved characters, percent-encoded.
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Text from a peer, cut to 200 characters with control characters
/// replaced, so it can go into an error message or a log line.
pub(crate) fn printable(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(200)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(200).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_join_and_print() {
        let base = Url::registry("127.0.0.1:5000", false, "/v2/").expect("url");
        assert_eq!(base.port, 5000);
        assert_eq!(base.to_string(), "http://127.0.0.1:5000/v2/");
        let upload = base
            .join("/v2/app/blobs/uploads/abc?_state=x")
            .expect("relative");
        assert_eq!(
            upload.with_query("digest", "sha256:00").to_string(),
            "http://127.0.0.1:5000/v2/app/blobs/uploads/abc?_state=x&digest=sha256%3A00"
        );
        let cdn = base
            .join("https://cdn.example/blob?sig=1")
            .expect("absolute");
        assert!(cdn.https && cdn.port == 443 && !cdn.same_origin(&base));
        assert_eq!(cdn.authority(), "cdn.example");
        let v6 = Url::parse("https://[::1]:8443/token").expect("v6");
        assert_eq!(
            (v6.host.as_str(), v6.authority()),
            ("::1", "[::1]:8443".into())
        );
        for bad in [
            "ftp://x/",
            "https://user@host/",
            "https:///path",
            "https://h/a b",
            "https://h:99999/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
        assert!(base.join("//evil/x").is_err());
        assert!(base.join("relative").is_err());
    }
}
