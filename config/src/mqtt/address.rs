//! Broker addresses, `mqtt://host[:port]` or `mqtts://host[:port]` (TLS):
//! the form Spin's MQTT trigger plugin hands to its client (Eclipse Paho).

/// A broker address split into what a connection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttAddress {
    /// A name or an IP address; an IPv6 address without its brackets.
    pub host: String,
    pub port: u16,
    /// `mqtts://`: the connection speaks TLS.
    pub tls: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("a broker address must start with `mqtt://` or `mqtts://`")]
    Scheme,
    #[error("credentials go in `username` and `password`, not in the address")]
    Credentials,
    #[error("`{0}` is not a host name or IP address")]
    Host(String),
    #[error("`{0}` is not a port (1-65535)")]
    Port(String),
    #[error("unexpected `{0}` after the host and port")]
    Trailing(String),
}

impl MqttAddress {
    /// The IANA port for MQTT without TLS.
    pub const DEFAULT_PORT: u16 = 1883;
    /// The IANA port for MQTT over TLS.
    pub const DEFAULT_TLS_PORT: u16 = 8883;

    pub fn parse(address: &str) -> Result<Self, AddressError> {
        let authority = strip_scheme(address)?;
        let tls = address.starts_with("mqtts://");
        if let Some(rest) = authority.find(['/', '?', '#']).map(|at| &authority[at..]) {
            return Err(AddressError::Trailing(rest.to_owned()));
        }
        if authority.contains('@') {
            return Err(AddressError::Credentials);
        }
        let (host, port) = match authority.strip_prefix('[') {
            // An IPv6 address, whose colons are not the port's.
            Some(bracketed) => {
                let (host, after) = bracketed
                    .split_once(']')
                    .ok_or_else(|| AddressError::Host(authority.to_owned()))?;
                match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None if after.is_empty() => (host, None),
                    None => return Err(AddressError::Trailing(after.to_owned())),
                }
            }
            None => match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || "[]".contains(c)) {
            return Err(AddressError::Host(host.to_owned()));
        }
        let port = match port {
            None if tls => Self::DEFAULT_TLS_PORT,
            None => Self::DEFAULT_PORT,
            Some(port) => port
                .parse()
                .ok()
                .filter(|&port| port != 0)
                .ok_or_else(|| AddressError::Port(port.to_owned()))?,
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

/// What follows `mqtt://` or `mqtts://`. Separate so that an address whose
/// host is still a template can have its scheme checked.
pub(crate) fn strip_scheme(address: &str) -> Result<&str, AddressError> {
    address
        .strip_prefix("mqtt://")
        .or_else(|| address.strip_prefix("mqtts://"))
        .ok_or(AddressError::Scheme)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(address: &str) -> Result<(String, u16), AddressError> {
        MqttAddress::parse(address).map(|a| (a.host, a.port))
    }

    #[test]
    fn host_and_optional_port() {
        assert_eq!(parse("mqtt://localhost"), Ok(("localhost".into(), 1883)));
        assert_eq!(parse("mqtts://broker"), Ok(("broker".into(), 8883)));
        assert!(MqttAddress::parse("mqtts://broker:443").is_ok_and(|a| a.tls && a.port == 443));
        assert!(MqttAddress::parse("mqtt://broker").is_ok_and(|a| !a.tls));
        assert_eq!(parse("mqtt://10.0.0.2:1884"), Ok(("10.0.0.2".into(), 1884)));
        assert_eq!(parse("mqtt://[::1]:1885"), Ok(("::1".into(), 1885)));
        assert_eq!(parse("mqtt://[fe80::1]"), Ok(("fe80::1".into(), 1883)));
    }

    #[test]
    fn other_forms_are_errors() {
        assert_eq!(parse("tcp://broker"), Err(AddressError::Scheme));
        assert_eq!(parse("broker:1883"), Err(AddressError::Scheme));
        assert_eq!(parse("mqtt://"), Err(AddressError::Host(String::new())));
        assert_eq!(
            parse("mqtt://:1883"),
            Err(AddressError::Host(String::new()))
        );
        assert_eq!(parse("mqtt://u:p@broker"), Err(AddressError::Credentials));
        assert_eq!(
            parse("mqtt://broker:0"),
            Err(AddressError::Port("0".into()))
        );
        assert_eq!(
            parse("mqtt://broker:x"),
            Err(AddressError::Port("x".into()))
        );
        assert_eq!(
            parse("mqtt://broker:65536"),
            Err(AddressError::Port("65536".into()))
        );
        assert_eq!(
            parse("mqtt://broker:1883/x?client_id=a"),
            Err(AddressError::Trailing("/x?client_id=a".into()))
        );
        assert_eq!(
            parse("mqtt://[::1]x"),
            Err(AddressError::Trailing("x".into()))
        );
        assert_eq!(parse("mqtt://[::1"), Err(AddressError::Host("[::1".into())));
    }
}
