//! A guest's PostgreSQL address, in the two forms Spin accepts (it parses
//! them with tokio-postgres's `Config::from_str`): a URL,
//! `postgres[ql]://[user[:password]@][host][:port][,host[:port]...][/dbname][?key=value&...]`,
//! or libpq's `key=value key='quoted value'` list. The keys are libpq's.

/// `sslmode`: `disable` never asks for TLS; `prefer` (the default, as in
/// tokio-postgres) asks and uses TLS when the server agrees; `require`
/// refuses a server that does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    Disable,
    #[default]
    Prefer,
    Require,
}

/// What an address asks for. Its `Debug` leaves the password out.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Address {
    pub user: Option<String>,
    pub password: Option<String>,
    pub dbname: Option<String>,
    /// The hosts to try in order, with the port each was given (the only
    /// one given applies to all; none is 5432).
    pub hosts: Vec<String>,
    ports: Vec<u16>,
    pub application_name: Option<String>,
    pub options: Option<String>,
    pub ssl_mode: SslMode,
    /// `connect_timeout` in seconds; the host's own bound still applies.
    pub connect_timeout: Option<u64>,
}

pub const DEFAULT_PORT: u16 = 5432;

impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Address")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("dbname", &self.dbname)
            .field("hosts", &self.hosts)
            .field("ports", &self.ports)
            .field("application_name", &self.application_name)
            .field("options", &self.options)
            .field("ssl_mode", &self.ssl_mode)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl Address {
    /// The port given for the `index`th host, if one was (tokio-postgres's
    /// rule: the port at the same index, or the only one).
    pub fn explicit_port(&self, index: usize) -> Option<u16> {
        self.ports
            .get(index)
            .or(if self.ports.len() == 1 {
                self.ports.first()
            } else {
                None
            })
            .copied()
    }

    pub fn port(&self, index: usize) -> u16 {
        self.explicit_port(index).unwrap_or(DEFAULT_PORT)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut address = Address::default();
        let url = ["postgres://", "postgresql://"]
            .iter()
            .find_map(|scheme| text.strip_prefix(scheme));
        match url {
            Some(rest) => address.parse_url(rest)?,
            None => address.parse_pairs(text)?,
        }
        if address.ports.len() > 1 && address.ports.len() != address.hosts.len() {
            return Err(
                "invalid connection string: the number of ports does not match the number of hosts"
                    .into(),
            );
        }
        Ok(address)
    }

    fn parse_url(&mut self, rest: &str) -> Result<(), String> {
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        // The last `@` ends the user information: a password may contain one.
        let hosts = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => {
                let (user, password) = match userinfo.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (userinfo, None),
                };
                if !user.is_empty() {
                    self.user = Some(percent_decode(user)?);
                }
                if let Some(password) = password {
                    self.password = Some(percent_decode_secret(password)?);
                }
                hosts
            }
            None => authority,
        };
        if !hosts.is_empty() {
            for host in hosts.split(',') {
                self.url_host(host)?;
            }
        }
        if !path.is_empty() {
            self.dbname = Some(percent_decode(path)?);
        }
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                format!("invalid connection string: `{pair}` in the query is not key=value")
            })?;
            let key = percent_decode(key)?;
            let value = if key == "password" {
                percent_decode_secret(value)?
            } else {
                percent_decode(value)?
            };
            self.set(&key, value)?;
        }
        Ok(())
    }

    /// `host`, `host:port`, `[v6]` or `[v6]:port`.
    fn url_host(&mut self, text: &str) -> Result<(), String> {
        let (host, port) = if let Some(v6) = text.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("invalid connection string: unclosed `[` in `{text}`"))?;
            (format!("[{host}]"), after.strip_prefix(':'))
        } else {
            match text.rsplit_once(':') {
                Some((host, port)) => (percent_decode(host)?, Some(port)),
                None => (percent_decode(text)?, None),
            }
        };
        if host.is_empty() && port.is_none() {
            return Err(format!("invalid connection string: empty host in `{text}`"));
        }
        if !host.is_empty() {
            self.hosts.push(host);
        }
        if let Some(port) = port {
            self.ports.push(parse_port(port)?);
        }
        Ok(())
    }

    /// libpq's `key=value` list: whitespace between pairs and around `=`,
    /// values optionally single-quoted with `\` escapes.
    fn parse_pairs(&mut self, text: &str) -> Result<(), String> {
        let mut chars = text.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            if chars.peek().is_none() {
                return Ok(());
            }
            let mut key = String::new();
            while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
                key.push(c);
            }
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            if chars.next() != Some('=') {
                return Err(format!(
                    "invalid connection string: expected `=` after `{key}`"
                ));
            }
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let mut value = String::new();
            if chars.next_if_eq(&'\'').is_some() {
                loop {
                    match chars.next() {
                        None => {
                            return Err(format!(
                                "invalid connection string: unterminated quoted value of `{key}`"
                            ));
                        }
                        Some('\'') => break,
                        Some('\\') => value.extend(chars.next()),
                        Some(c) => value.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    if c == '\\' {
                        value.extend(chars.next());
                    } else {
                        value.push(c);
                    }
                }
            }
            self.set(&key, value)?;
        }
    }

    fn set(&mut self, key: &str, value: String) -> Result<(), String> {
        match key {
            "user" => self.user = Some(value),
            "password" => self.password = Some(value),
            "dbname" => self.dbname = Some(value),
            "host" => self.hosts.extend(value.split(',').map(str::to_owned)),
            "port" => {
                for port in value.split(',') {
                    self.ports.push(parse_port(port)?);
                }
            }
            "application_name" => self.application_name = Some(value),
            "options" => self.options = Some(value),
            "sslmode" => {
                self.ssl_mode = match value.as_str() {
                    "disable" => SslMode::Disable,
                    "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    _ => return Err(format!("invalid value for option `sslmode`: `{value}`")),
                }
            }
            "connect_timeout" => {
                let seconds = value.parse::<i64>().map_err(|_| {
                    format!("invalid value for option `connect_timeout`: `{value}`")
                })?;
                // libpq and tokio-postgres: zero or less is no timeout.
                self.connect_timeout = u64::try_from(seconds).ok().filter(|s| *s > 0);
            }
            // Accepted and ignored as tokio-postgres does for what it cannot
            // change here: keepalives and session targeting.
            "keepalives"
            | "keepalives_idle"
            | "keepalives_interval"
            | "keepalives_retries"
            | "target_session_attrs"
            | "channel_binding"
            | "load_balance_hosts"
            | "tcp_user_timeout"
            | "sslnegotiation" => {}
            _ => return Err(format!("invalid connection string: unknown option `{key}`")),
        }
        Ok(())
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    text.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("invalid value for option `port`: `{text}`"))
}

/// A password's [`percent_decode`]: its error does not repeat the text,
/// which may be logged or shown where the password must not be.
fn percent_decode_secret(text: &str) -> Result<String, String> {
    percent_decode(text).map_err(|_| {
        "invalid connection string: the password is not valid percent-encoded UTF-8".to_owned()
    })
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    format!("invalid connection string: bad percent-encoding in `{text}`")
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| format!("invalid connection string: `{text}` does not decode to UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let a = Address::parse(
            "postgres://us%40er:p@ss@db.local:5433/my%20db?sslmode=require&application_name=x",
        )
        .unwrap();
        assert_eq!(a.user.as_deref(), Some("us@er"));
        assert_eq!(a.password.as_deref(), Some("p@ss"));
        assert_eq!(a.hosts, ["db.local"]);
        assert_eq!((a.explicit_port(0), a.port(0)), (Some(5433), 5433));
        assert_eq!(a.dbname.as_deref(), Some("my db"));
        assert_eq!(a.ssl_mode, SslMode::Require);
        assert_eq!(a.application_name.as_deref(), Some("x"));

        let a = Address::parse("postgresql://u@[::1],other:6000/db").unwrap();
        assert_eq!(a.hosts, ["[::1]", "other"]);
        // The only port given applies to every host, as in tokio-postgres.
        assert_eq!((a.port(0), a.port(1)), (6000, 6000));
        let a = Address::parse("postgresql://u@h1,h2/db").unwrap();
        assert_eq!((a.explicit_port(1), a.port(1)), (None, 5432));
        let a = Address::parse("postgres://localhost").unwrap();
        assert_eq!(
            (a.port(0), a.ssl_mode, a.user),
            (5432, SslMode::Prefer, None)
        );
    }

    #[test]
    fn key_value_lists() {
        let a = Address::parse(
            "host=h1,h2 port=1,2 user = bob password='it\\'s' dbname=d sslmode=disable",
        )
        .unwrap();
        assert_eq!(a.hosts, ["h1", "h2"]);
        assert_eq!((a.port(0), a.port(1)), (1, 2));
        assert_eq!(a.user.as_deref(), Some("bob"));
        assert_eq!(a.password.as_deref(), Some("it's"));
        assert!(!format!("{a:?}").contains("it's"));
        assert_eq!(a.ssl_mode, SslMode::Disable);
    }

    #[test]
    fn bad_addresses_name_the_problem() {
        for (bad, says) in [
            ("postgres://h:99999", "port"),
            ("postgres://h?sslmode=maybe", "sslmode"),
            ("postgres://h?colour=red", "unknown option `colour`"),
            ("host=h port", "expected `=`"),
            ("host='h", "unterminated"),
            ("postgres://h1,h2,h3:1,:2", "number of ports"),
            ("postgres://h/%zz", "percent"),
        ] {
            let e = Address::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        // A password that does not decode is not repeated in the error.
        for bad in [
            "postgres://u:hunter2%zz@h/db",
            "postgres://u@h/db?password=hunter2%ff",
        ] {
            let e = Address::parse(bad).unwrap_err();
            assert!(e.contains("password") && !e.contains("hunter2"), "{e}");
        }
    }
}
