//! `allowed_outbound_hosts`, as Spin documents it: `scheme://host[:port]`
//! where the scheme, the host and the port may each be `*`, the host may be
//! `*.domain` or a CIDR range, the port a range `a..b`, and an omitted port
//! means the scheme's default port. An empty list allows nothing.

use std::net::IpAddr;

/// The parsed patterns, each with the entry it came from (metrics label
/// outbound calls by the pattern that allowed them: bounded by the manifest).
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts(Vec<(String, HostPattern)>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct HostPattern {
    /// `None` is `*`.
    scheme: Option<String>,
    host: HostMatch,
    port: PortMatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Exact(String),
    /// `*.example.com`: any subdomain, stored as `.example.com`.
    Subdomain(String),
    Cidr(IpAddr, u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortMatch {
    Any,
    Range(u16, u16),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatternError {
    #[error("`{0}` is not of the form scheme://host[:port]")]
    Form(String),
    #[error("`{0}`: invalid port (a number, `*`, or a range like `8000..8080`)")]
    Port(String),
    #[error("`{0}`: the scheme has no default port, so give one (for example `:8080` or `:*`)")]
    NoDefaultPort(String),
    #[error("`{0}`: invalid CIDR range")]
    Cidr(String),
}

pub fn default_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "http" => 80,
        "https" => 443,
        "mqtt" => 1883,
        "mqtts" => 8883,
        "redis" => 6379,
        "rediss" => 6380,
        "postgres" => 5432,
        "mysql" => 3306,
        _ => return None,
    })
}

impl AllowedHosts {
    /// Parses every entry (templates already expanded).
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, PatternError> {
        entries
            .into_iter()
            .map(|entry| HostPattern::parse(entry).map(|p| (entry.to_owned(), p)))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether a call to `scheme://host:port` is allowed.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.matching(scheme, host, port).is_some()
    }

    /// The index of the first pattern that allows `scheme://host:port`.
    pub fn matching(&self, scheme: &str, host: &str, port: u16) -> Option<usize> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.0
            .iter()
            .position(|(_, p)| p.allows(scheme, host, port))
    }

    /// The entries, as the manifest gave them (templates expanded).
    pub fn entries(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(entry, _)| entry.as_str())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl HostPattern {
    fn parse(entry: &str) -> Result<Self, PatternError> {
        let form = || PatternError::Form(entry.to_owned());
        let (scheme, rest) = entry.split_once("://").ok_or_else(form)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if scheme.is_empty()
            || rest.is_empty()
            || rest.contains(['/', '?', '#', '@']) && !looks_like_cidr(rest)
        {
            return Err(form());
        }
        let scheme = (scheme != "*").then(|| scheme.to_ascii_lowercase());
        let (host, port) = split_port(rest);
        let port = match port {
            Some("*") => PortMatch::Any,
            Some(p) => parse_port_range(p).ok_or_else(|| PatternError::Port(entry.to_owned()))?,
            None => {
                let default = scheme
                    .as_deref()
                    .and_then(default_port)
                    .ok_or_else(|| PatternError::NoDefaultPort(entry.to_owned()))?;
                PortMatch::Range(default, default)
            }
        };
        let host = if host == "*" {
            HostMatch::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            HostMatch::Subdomain(format!(".{}", domain.to_ascii_lowercase()))
        } else if let Some((ip, bits)) = host.split_once('/') {
            let ip: IpAddr = ip
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| PatternError::Cidr(entry.to_owned()))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits: u8 = bits
                .parse()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| PatternError::Cidr(entry.to_owned()))?;
            HostMatch::Cidr(ip, bits)
        } else if host.is_empty() || host.contains('*') {
            return Err(form());
        } else {
            HostMatch::Exact(
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_ascii_lowercase(),
            )
        };
        Ok(Self { scheme, host, port })
    }

    fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme_ok = self
            .scheme
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case(scheme));
        let port_ok = match self.port {
            PortMatch::Any => true,
            PortMatch::Range(lo, hi) => (lo..=hi).contains(&port),
        };
        let host_ok = match &self.host {
            HostMatch::Any => true,
            HostMatch::Exact(h) => h.eq_ignore_ascii_case(host),
            HostMatch::Subdomain(suffix) => {
                let host = host.to_ascii_lowercase();
                host.ends_with(suffix.as_str()) && host.len() > suffix.len()
            }
            HostMatch::Cidr(net, bits) => host
                .parse::<IpAddr>()
                .is_ok_and(|ip| in_cidr(ip, *net, *bits)),
        };
        scheme_ok && host_ok && port_ok
    }
}

fn looks_like_cidr(rest: &str) -> bool {
    rest.split_once('/').is_some_and(|(ip, bits)| {
        ip.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok()
            && bits
                .split(':')
                .next()
                .is_some_and(|b| b.parse::<u8>().is_ok())
    })
}

/// Splits `host[:port]`, leaving a bracketed IPv6 literal's colons alone.
fn split_port(rest: &str) -> (&str, Option<&str>) {
    let colon = match rest.rfind(']') {
        Some(end) => rest[end..].find(':').map(|i| end + i),
        // An unbracketed IPv6 CIDR (`fd00::/8`) has no port.
        None if rest.matches(':').count() > 1 => None,
        None => rest.rfind(':'),
    };
    match colon {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    }
}

fn parse_port_range(p: &str) -> Option<PortMatch> {
    match p.split_once("..") {
        Some((lo, hi)) => {
            let (lo, hi): (u16, u16) = (lo.parse().ok()?, hi.parse().ok()?);
            (lo <= hi).then_some(PortMatch::Range(lo, hi))
        }
        None => p.parse().ok().map(|n| PortMatch::Range(n, n)),
    }
}

/// Whether `ip` is in `net/bits` (both of one family).
pub(crate) fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(entries: &[&str], scheme: &str, host: &str, port: u16) -> bool {
        AllowedHosts::parse(entries.iter().copied())
            .expect("valid patterns")
            .allows(scheme, host, port)
    }

    #[test]
    fn an_empty_list_allows_nothing() {
        assert!(!allowed(&[], "https", "example.com", 443));
    }

    #[test]
    fn an_omitted_port_means_the_default_port_only() {
        assert!(allowed(
            &["https://example.com"],
            "https",
            "example.com",
            443
        ));
        assert!(!allowed(
            &["https://example.com"],
            "https",
            "example.com",
            8443
        ));
        assert!(!allowed(
            &["https://example.com"],
            "http",
            "example.com",
            443
        ));
        assert!(allowed(
            &["mqtt://broker.local"],
            "mqtt",
            "broker.local",
            1883
        ));
        assert!(allowed(
            &["mqtts://broker.local"],
            "mqtts",
            "broker.local",
            8883
        ));
        assert!(!allowed(
            &["mqtts://broker.local"],
            "mqtts",
            "broker.local",
            1883
        ));
        assert!(!allowed(
            &["mqtt://broker.local"],
            "mqtts",
            "broker.local",
            8883
        ));
    }

    #[test]
    fn wildcards_cover_scheme_host_port_and_subdomains() {
        assert!(allowed(&["*://localhost:*"], "http", "localhost", 3000));
        assert!(allowed(&["https://*:*"], "https", "anything.example", 1));
        assert!(allowed(
            &["https://*.example.com"],
            "https",
            "api.example.com",
            443
        ));
        assert!(!allowed(
            &["https://*.example.com"],
            "https",
            "example.com",
            443
        ));
        assert!(!allowed(
            &["https://*.example.com"],
            "https",
            "badexample.com",
            443
        ));
        assert!(allowed(
            &["http://localhost:8000..8080"],
            "http",
            "localhost",
            8042
        ));
        assert!(!allowed(
            &["http://localhost:8000..8080"],
            "http",
            "localhost",
            8081
        ));
    }

    #[test]
    fn cidr_ranges_match_ip_literals() {
        assert!(allowed(
            &["http://192.168.1.0/24"],
            "http",
            "192.168.1.77",
            80
        ));
        assert!(!allowed(
            &["http://192.168.1.0/24"],
            "http",
            "192.168.2.1",
            80
        ));
        assert!(allowed(&["http://[fd00::]/8:*"], "http", "[fd12::1]", 9));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in [
            "example.com",
            "https://",
            "https://ex.com:port",
            "*://example.com",
            "https://ex.com/path",
            "https://10.0.0.0/99",
        ] {
            assert!(AllowedHosts::parse([bad]).is_err(), "{bad}");
        }
    }
}

/// Property tests: guests' outbound addresses and manifests' patterns are
/// input from outside and must never panic the host.
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::AllowedHosts;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn outbound_host_patterns_never_panic(pattern in "[a-z*:/.0-9\\[\\]]{0,40}", host in "[a-z0-9.\\[\\]:]{0,20}", port: u16) {
            if let Ok(allowed) = AllowedHosts::parse([pattern.as_str()]) {
                let _ = allowed.allows("http", &host, port);
            }
        }
    }
}
