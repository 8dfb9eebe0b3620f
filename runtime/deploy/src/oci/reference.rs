//! Registry references: `registry[:port]/repository[:tag][@sha256:…]`, the
//! grammar of the distribution spec (and of `docker pull`).

use std::fmt;

use super::Digest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// As written (`ghcr.io`, `127.0.0.1:5000`, `[::1]:5000`); `docker.io`
    /// when the reference names none.
    pub registry: String,
    /// `user/app`; Docker Hub's one-segment names get `library/`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses a reference; one without a registry is on Docker Hub, as with
    /// `docker pull` and Spin.
    pub fn parse(text: &str) -> Result<Reference, String> {
        Self::parse_inner(text, false)
    }

    /// Parses a reference that names its registry explicitly: how a
    /// command-line argument that is not a path is recognised as one.
    pub fn parse_explicit(text: &str) -> Result<Reference, String> {
        Self::parse_inner(text, true)
    }

    fn parse_inner(text: &str, explicit: bool) -> Result<Reference, String> {
        let bad = |why: &str| format!("`{text}` is not a registry reference: {why}");
        if text.len() > 1024 {
            return Err(bad("longer than 1024 bytes"));
        }
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => (
                name,
                Some(Digest::parse(digest).ok_or_else(|| {
                    bad("the digest must be sha256: followed by 64 lower-case hex digits")
                })?),
            ),
            None => (text, None),
        };
        let (first, rest) = match name.split_once('/') {
            Some((first, rest)) => (first, Some(rest)),
            None => (name, None),
        };
        let names_registry = rest.is_some() && (first.contains(['.', ':']) || first == "localhost");
        let (registry, path) = match (names_registry, rest) {
            (true, Some(rest)) => (first.to_owned(), rest),
            _ if explicit => {
                return Err(bad("it names no registry (`host[:port]/repository[:tag]`)"));
            }
            _ => ("docker.io".to_owned(), name),
        };
        check_registry(&registry).map_err(|why| bad(&why))?;
        let last_slash = path.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match path[last_slash..].rfind(':') {
            Some(i) => (
                &path[..last_slash + i],
                Some(path[last_slash + i + 1..].to_owned()),
            ),
            None => (path, None),
        };
        if let Some(tag) = &tag {
            check_tag(tag).map_err(|why| bad(&why))?;
        }
        check_repository(repository).map_err(|why| bad(&why))?;
        let mut repository = repository.to_owned();
        if registry == "docker.io" && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The tag or digest the manifest is fetched by (`latest` without either).
    pub fn target(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_owned(),
        }
    }

    /// The tag, or `latest` without one (none for a digest-only reference).
    pub fn tag_or_latest(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(tag), _) => Some(tag),
            (None, None) => Some("latest"),
            (None, Some(_)) => None,
        }
    }

    /// The host serving the registry's API (Docker Hub's is `index.docker.io`,
    /// as the OCI client Spin uses resolves it).
    pub fn api_registry(&self) -> &str {
        if self.registry == "docker.io" {
            "index.docker.io"
        } else {
            &self.registry
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// `host[:port]`: DNS labels, an IPv4 address or a bracketed IPv6 one.
pub(crate) fn check_registry(registry: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an IPv6 registry address needs its closing `]`")?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{host}` is not an IPv6 address"));
        }
        match after {
            "" => (None, None),
            _ => (
                None,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or("junk after the IPv6 address")?,
                ),
            ),
        }
    } else {
        match registry.rsplit_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        let labels_ok = !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !labels_ok {
            return Err(format!("`{host}` is not a registry host name"));
        }
    }
    if let Some(port) = port.filter(|p| {
        p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err()
    }) {
        return Err(format!("`{port}` is not a port"));
    }
    Ok(())
}

/// `/`-separated components of `[a-z0-9]+` joined by `.`, `_`, `__` or dashes.
fn check_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err("the repository is empty".into());
    }
    if repository.len() > 255 {
        return Err("the repository is longer than 255 bytes".into());
    }
    for component in repository.split('/') {
        let bytes = component.as_bytes();
        let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let ok = !bytes.is_empty()
            && bytes.first().is_some_and(alnum)
            && bytes.last().is_some_and(alnum)
            && bytes
                .iter()
                .all(|b| alnum(b) || matches!(b, b'.' | b'_' | b'-'))
            && !component.contains("..")
            && !component.contains("._")
            && !component.contains("_.")
            && !component.contains("___");
        if !ok {
            return Err(format!(
                "repository component `{component}` must be lower-case letters and digits, \
                 separated by `.`, `_`, `__` or dashes"
            ));
        }
    }
    Ok(())
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn check_tag(tag: &str) -> Result<(), String> {
    let bytes = tag.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 128
        && bytes
            .first()
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag `{tag}` must be up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_as_the_distribution_spec_has_them() {
        let r = Reference::parse("127.0.0.1:5000/team/app:v1").expect("parses");
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.target(), "v1");
        assert_eq!(r.to_string(), "127.0.0.1:5000/team/app:v1");

        let hex = "a".repeat(64);
        let r = Reference::parse(&format!("ghcr.io/x/y@sha256:{hex}")).expect("parses");
        assert_eq!(r.tag, None);
        assert_eq!(r.target(), format!("sha256:{hex}"));
        assert_eq!(r.tag_or_latest(), None);

        let r = Reference::parse("localhost/app").expect("parses");
        assert_eq!(
            (r.registry.as_str(), r.target().as_str()),
            ("localhost", "latest")
        );

        let r = Reference::parse("[::1]:5000/app:1.0").expect("parses");
        assert_eq!(r.registry, "[::1]:5000");

        let r = Reference::parse("fermyon/spin-hello:2").expect("Docker Hub");
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.api_registry(), "index.docker.io");
        let r = Reference::parse("busybox").expect("Docker Hub library");
        assert_eq!(r.repository, "library/busybox");
    }

    #[test]
    fn paths_and_junk_are_not_references() {
        for text in [
            "apps/spin-kv",
            "./spin.toml",
            "../app/spin.toml",
            "/abs/path",
            "spin.toml",
            "ghcr.io/UPPER/case",
            "ghcr.io/x/y:",
            "ghcr.io/x/y@sha256:short",
            "host:99999/app",
            "ghcr.io/",
            "-bad.host/app",
        ] {
            assert!(
                Reference::parse_explicit(text).is_err(),
                "{text} must not be read as a reference"
            );
        }
        assert!(Reference::parse_explicit("registry.local/app").is_ok());
        assert!(Reference::parse_explicit("localhost:5000/a/b:c").is_ok());
    }
}
