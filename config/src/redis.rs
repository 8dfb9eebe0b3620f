//! Redis: the server the Redis trigger subscribes to
//! (`[application.trigger.redis]`), its subscriptions (`[[trigger.redis]]`),
//! and the address form that both the trigger and guests' outbound
//! connections use.
//!
//! The address rules are public because a templated address, and every
//! address a guest opens, can only be checked once it is known.

use crate::diagnostic::Location;

/// `[application.trigger.redis]`: Spin's Redis trigger metadata.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisServer {
    /// `redis://…` or `rediss://…`, possibly with `{{ variable }}` templates.
    pub address: String,
    pub address_location: Location,
}

/// A `[[trigger.redis]]` entry: a channel whose messages run a component.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisTrigger {
    /// As written, or generated the way Spin does it:
    /// `<component>-redis-trigger`, else `redis-trigger<n>`.
    pub id: String,
    pub component: String,
    pub component_location: Location,
    /// The channel (`SUBSCRIBE`, not a pattern), possibly with templates.
    pub channel: String,
    pub channel_location: Location,
    /// This trigger's own server, overriding the application's (Spin allows
    /// it); possibly with templates.
    pub address: Option<String>,
    pub address_location: Option<Location>,
    pub location: Location,
}

/// The addresses' credentials stay out of debug output, as
/// [`RedisAddress`]'s do.
impl std::fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisServer")
            .field("address", &redacted(&self.address))
            .field("address_location", &self.address_location)
            .finish()
    }
}

impl std::fmt::Debug for RedisTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTrigger")
            .field("id", &self.id)
            .field("component", &self.component)
            .field("component_location", &self.component_location)
            .field("channel", &self.channel)
            .field("channel_location", &self.channel_location)
            .field("address", &self.address.as_deref().map(redacted))
            .field("address_location", &self.address_location)
            .field("location", &self.location)
            .finish()
    }
}

/// A Redis address as Spin's client (the `redis` crate) reads it:
/// `redis[s]://[[user]:password@]host[:port][/db]`, the credentials
/// percent-encoded.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisAddress {
    /// A name or an IP address; an IPv6 address without its brackets.
    pub host: String,
    pub port: u16,
    /// `rediss://`: the connection speaks TLS.
    pub tls: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Selected after connecting unless 0.
    pub db: i64,
}

/// Credentials stay out of debug output and logs.
impl std::fmt::Debug for RedisAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisAddressError {
    #[error("a Redis address must start with `redis://` or `rediss://`")]
    Scheme,
    #[error("`{0}` is not a host name or IP address")]
    Host(String),
    #[error("`{0}` is not a port (1-65535)")]
    Port(String),
    #[error("`{0}` is not a database number")]
    Database(String),
    #[error(
        "the credentials are not valid percent-encoded UTF-8 (`/`, `?`, `#` and `@` in them must be percent-encoded)"
    )]
    Credentials,
    #[error(
        "unsupported `{0}`: Flint speaks RESP2 and never turns TLS verification off (`#insecure`)"
    )]
    Unsupported(String),
}

impl RedisAddress {
    /// The `redis` crate's port, for `rediss://` too.
    pub const DEFAULT_PORT: u16 = 6379;

    pub fn parse(address: &str) -> Result<Self, RedisAddressError> {
        let (tls, rest) = match strip_scheme(address)? {
            rest if address.starts_with("rediss://") => (true, rest),
            rest => (false, rest),
        };
        // Everything before the last `@` is credentials, and nothing of it
        // may reach an error (they are logged, and shown for the manifest).
        // A `/`, `?` or `#` in it must be percent-encoded: a URL parser
        // would end the authority there and echo the secret's tail.
        let (userinfo, rest) = match rest.rsplit_once('@') {
            Some((userinfo, _)) if userinfo.contains(['/', '?', '#']) => {
                return Err(RedisAddressError::Credentials);
            }
            Some((userinfo, rest)) => (Some(userinfo), rest),
            None => (None, rest),
        };
        if let Some(at) = rest.find('#') {
            return Err(RedisAddressError::Unsupported(rest[at..].to_owned()));
        }
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        // The `redis` crate's only query setting is the protocol; RESP2 is
        // what Flint speaks.
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            if !matches!(pair, "protocol=resp2" | "protocol=2") {
                return Err(RedisAddressError::Unsupported(pair.to_owned()));
            }
        }
        let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (username, password) = match userinfo {
            None => (None, None),
            Some(userinfo) => {
                let (user, password) = match userinfo.split_once(':') {
                    Some((user, password)) => (user, Some(password)),
                    None => (userinfo, None),
                };
                let decode = |s: &str| percent_decode(s).ok_or(RedisAddressError::Credentials);
                let user = Some(decode(user)?).filter(|u| !u.is_empty());
                let password = password.map(decode).transpose()?;
                (user, password.filter(|p| !p.is_empty()))
            }
        };
        let (host, port) = split_host_port(hostport)?;
        let port = match port {
            None => Self::DEFAULT_PORT,
            Some(port) => port
                .parse()
                .ok()
                .filter(|&port| port != 0)
                .ok_or_else(|| RedisAddressError::Port(port.to_owned()))?,
        };
        let db = match path.trim_matches('/') {
            "" => 0,
            db => db
                .parse()
                .map_err(|_| RedisAddressError::Database(db.to_owned()))?,
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            tls,
            username,
            password,
            db,
        })
    }

    /// The address without its credentials, for logs and status.
    pub fn display(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.db {
            0 => format!("{scheme}://{host}:{}", self.port),
            db => format!("{scheme}://{host}:{}/{db}", self.port),
        }
    }
}

/// `address` with any credentials (what precedes the last `@`) replaced
/// by `***`, to quote it in an error.
pub fn redacted(address: &str) -> String {
    let Some((userinfo, rest)) = address.rsplit_once('@') else {
        return address.to_owned();
    };
    match userinfo.split_once("://") {
        Some((scheme, _)) => format!("{scheme}://***@{rest}"),
        None => format!("***@{rest}"),
    }
}

/// What follows `redis://` or `rediss://`. Separate so that an address
/// whose host is still a template can have its scheme checked.
pub fn strip_scheme(address: &str) -> Result<&str, RedisAddressError> {
    address
        .strip_prefix("redis://")
        .or_else(|| address.strip_prefix("rediss://"))
        .ok_or(RedisAddressError::Scheme)
}

fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), RedisAddressError> {
    let (host, port) = match authority.strip_prefix('[') {
        // An IPv6 address, whose colons are not the port's.
        Some(bracketed) => {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| RedisAddressError::Host(authority.to_owned()))?;
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => return Err(RedisAddressError::Host(authority.to_owned())),
            }
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || "[]@".contains(c)) {
        return Err(RedisAddressError::Host(host.to_owned()));
    }
    Ok((host, port))
}

/// `%XX` escapes decoded; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            // `from_str_radix` alone would take a sign (`%+1`).
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_the_redis_crate_reads_them() {
        let a = RedisAddress::parse("redis://localhost").expect("plain");
        assert_eq!(
            (a.host.as_str(), a.port, a.tls, a.db),
            ("localhost", 6379, false, 0)
        );
        assert_eq!((a.username, a.password), (None, None));
        let a = RedisAddress::parse("rediss://u%40x:p%3Aw@10.0.0.2:7000/3").expect("full");
        assert_eq!(
            (a.host.as_str(), a.port, a.tls, a.db),
            ("10.0.0.2", 7000, true, 3)
        );
        assert_eq!(a.username.as_deref(), Some("u@x"));
        assert_eq!(a.password.as_deref(), Some("p:w"));
        assert_eq!(a.display(), "rediss://10.0.0.2:7000/3");
        assert!(!format!("{a:?}").contains("p:w"));
        let a = RedisAddress::parse("redis://:secret@[::1]:6380/").expect("password only");
        assert_eq!((a.host.as_str(), a.port), ("::1", 6380));
        assert_eq!(
            (a.username.as_deref(), a.password.as_deref()),
            (None, Some("secret"))
        );
        assert_eq!(a.display(), "redis://[::1]:6380");
        assert!(RedisAddress::parse("redis://h?protocol=resp2").is_ok());
    }

    #[test]
    fn other_forms_are_errors() {
        use RedisAddressError as E;
        let parse = |a| RedisAddress::parse(a).map(drop);
        assert_eq!(parse("localhost:6379"), Err(E::Scheme));
        assert_eq!(parse("redis+unix:///tmp/r.sock"), Err(E::Scheme));
        assert_eq!(parse("redis://"), Err(E::Host(String::new())));
        assert_eq!(parse("redis://h:0"), Err(E::Port("0".into())));
        assert_eq!(parse("redis://h:x"), Err(E::Port("x".into())));
        assert_eq!(parse("redis://h/db"), Err(E::Database("db".into())));
        assert_eq!(parse("redis://u:%zz@h"), Err(E::Credentials));
        assert_eq!(parse("redis://u:%+1@h"), Err(E::Credentials));
        assert_eq!(
            parse("rediss://h/#insecure"),
            Err(E::Unsupported("#insecure".into()))
        );
        assert_eq!(
            parse("redis://h?protocol=resp3"),
            Err(E::Unsupported("protocol=resp3".into()))
        );
    }

    #[test]
    fn errors_never_quote_the_credentials() {
        for address in [
            "redis://u:hun/ter@h",
            "redis://u:hun?ter@h",
            "redis://u:hun#ter@h",
            "redis://u:hun/t:er@h:1",
            "redis://u:hunter@h:x",
            "redis://u:hunter@h/db",
            "redis://u:hunter@[h",
            "rediss://u:hunter@h#insecure",
        ] {
            let error = RedisAddress::parse(address).expect_err(address).to_string();
            assert!(
                !error.contains("hun") && !error.contains("ter"),
                "{address}: {error}"
            );
            assert!(!redacted(address).contains("hun"), "{address}");
        }
        assert_eq!(redacted("redis://u:p@h:1/2"), "redis://***@h:1/2");
        let server = RedisServer {
            address: "redis://u:hunter@h".into(),
            address_location: Location { line: 1, column: 1 },
        };
        assert!(!format!("{server:?}").contains("hun"));
        assert_eq!(redacted("redis://h:1"), "redis://h:1");
    }
}
