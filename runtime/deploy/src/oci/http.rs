//! Talking to a registry's v2 API over Flint's own HTTP/1.1 client and TLS:
//! anonymous access, HTTP Basic, and the Bearer token challenge
//! (`WWW-Authenticate: Bearer realm=…,service=…,scope=…`, the token fetched
//! from the realm with the Basic credentials), redirects (blob downloads are
//! often sent to a CDN) and bounded answers.

use std::time::Duration;

use flint_host::ErrorCode;
use flint_host::blocked_networks::BlockedNetworks;
use flint_host::outbound_http::{self, Bounds, Headers, Request};
use flint_host::tls::TlsConfigs;

use super::auth::{Credentials, basic_header};
use super::url::{Url, printable};
use super::{Connect, Error, Reference, Result};

/// Answers other than blobs (errors, tokens, upload sessions) are small.
const MAX_SMALL_BODY: usize = 64 * 1024;
const MAX_REDIRECTS: usize = 5;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Each read and write; the client allows four times this for a whole exchange.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// The slowest link a blob transfer is given time for, in bytes per second.
const SLOWEST_LINK: u64 = 16 * 1024;

/// What a request is for, which decides the token scope asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Pull,
    Push,
}

pub(crate) struct Response {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// A session with one repository of one registry.
pub(crate) struct Client {
    /// The registry as named (for messages and credentials).
    pub registry: String,
    pub base: Url,
    repository: String,
    access: Access,
    credentials: Option<Credentials>,
    /// `Authorization` value that worked (or was issued) last.
    authorization: Option<String>,
    tls: TlsConfigs,
    blocked: BlockedNetworks,
}

impl Client {
    pub fn new(
        reference: &Reference,
        connect: Connect,
        access: Access,
        credentials: Option<Credentials>,
    ) -> Result<Client> {
        Self::for_registry(
            &reference.registry,
            reference.api_registry(),
            &reference.repository,
            connect,
            access,
            credentials,
        )
    }

    pub fn for_registry(
        registry: &str,
        api_registry: &str,
        repository: &str,
        connect: Connect,
        access: Access,
        credentials: Option<Credentials>,
    ) -> Result<Client> {
        let base = Url::registry(api_registry, !connect.insecure, "/v2/").map_err(|message| {
            Error::Registry {
                registry: registry.to_owned(),
                message,
            }
        })?;
        Ok(Client {
            registry: registry.to_owned(),
            base,
            repository: repository.to_owned(),
            access,
            credentials,
            authorization: None,
            tls: TlsConfigs::none(),
            blocked: BlockedNetworks::default(),
        })
    }

    /// `/v2/<repository>/<rest>` on the registry.
    pub fn url(&self, rest: &str) -> Result<Url> {
        self.base
            .join(&format!("/v2/{}/{rest}", self.repository))
            .map_err(|message| self.error(message))
    }

    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::Registry {
            registry: self.registry.clone(),
            message: message.into(),
        }
    }

    /// Sends a request, answering one authentication challenge, and follows
    /// redirects for GET and HEAD. `max_body` bounds the answer's body.
    pub fn send(
        &mut self,
        method: &str,
        url: &Url,
        headers: &[(&str, &str)],
        body: &[u8],
        max_body: usize,
    ) -> Result<Response> {
        let mut url = url.clone();
        let mut challenged = false;
        for _ in 0..=MAX_REDIRECTS {
            // Credentials go only to the registry itself, never to where it
            // redirects (a CDN holding the blob needs none: its URL is signed).
            let authorization = if url.same_origin(&self.base) {
                self.authorization.clone()
            } else {
                None
            };
            let response = self.exchange(
                method,
                &url,
                headers,
                body,
                authorization.as_deref(),
                max_body,
            )?;
            match response.status {
                401 if url.same_origin(&self.base) => {
                    if challenged {
                        let message = match &self.credentials {
                            Some(credentials) => self.refused(credentials),
                            None => self.login_hint(),
                        };
                        return Err(self.auth_error(message));
                    }
                    challenged = true;
                    self.answer_challenge(&response)?;
                }
                301 | 302 | 303 | 307 | 308 if matches!(method, "GET" | "HEAD") => {
                    let location = response.header("location").ok_or_else(|| {
                        self.error(format!("{} without a Location header", response.status))
                    })?;
                    url = url.join(&location).map_err(|m| self.error(m))?;
                }
                _ => return Ok(response),
            }
        }
        Err(self.error(format!("more than {MAX_REDIRECTS} redirects")))
    }

    /// One small request without credentials, retries or redirects.
    pub fn send_once(&self, method: &str, url: &Url) -> Result<Response> {
        self.exchange(method, url, &[], &[], None, MAX_SMALL_BODY)
    }

    /// One small request with this `Authorization`.
    pub fn send_with(&self, method: &str, url: &Url, authorization: &str) -> Result<Response> {
        self.exchange(method, url, &[], &[], Some(authorization), MAX_SMALL_BODY)
    }

    /// Works out the `Authorization` to retry with from a 401's challenge.
    fn answer_challenge(&mut self, response: &Response) -> Result<()> {
        let challenge = response.header("www-authenticate").unwrap_or_default();
        let (scheme, params) = parse_challenge(&challenge);
        let login_hint = self.login_hint();
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => {
                let Some(credentials) = &self.credentials else {
                    return Err(self.auth_error(login_hint));
                };
                if self.authorization.as_deref() == Some(basic_header(credentials).as_str()) {
                    return Err(self.auth_error(self.refused(credentials)));
                }
                self.authorization = Some(basic_header(credentials));
                Ok(())
            }
            "bearer" => {
                let realm = params
                    .iter()
                    .find(|(k, _)| k == "realm")
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| self.auth_error("a Bearer challenge without a realm"))?;
                let scope = match self.access {
                    Access::Push => format!("repository:{}:pull,push", self.repository),
                    Access::Pull => params
                        .iter()
                        .find(|(k, _)| k == "scope")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_else(|| format!("repository:{}:pull", self.repository)),
                };
                let service = params
                    .iter()
                    .find(|(k, _)| k == "service")
                    .map(|(_, v)| v.clone());
                let token = self.token(&realm, service.as_deref(), Some(&scope))?;
                self.authorization = Some(format!("Bearer {token}"));
                Ok(())
            }
            _ => Err(self.auth_error(format!(
                "answered 401 with an unsupported challenge `{}`",
                printable(&challenge)
            ))),
        }
    }

    /// A token from the realm, asked with the Basic credentials if there are
    /// any (anonymously otherwise).
    pub fn token(
        &mut self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<String> {
        let mut url =
            Url::parse(realm).map_err(|m| self.auth_error(format!("token realm: {m}")))?;
        if let Some(service) = service {
            url = url.with_query("service", service);
        }
        if let Some(scope) = scope {
            url = url.with_query("scope", scope);
        }
        let basic = self.credentials.as_ref().map(basic_header);
        let response = self.exchange("GET", &url, &[], &[], basic.as_deref(), MAX_SMALL_BODY)?;
        match response.status {
            200 => {}
            401 | 403 => {
                let message = match &self.credentials {
                    Some(credentials) => self.refused(credentials),
                    None => format!(
                        "the token service refused anonymous access: run `flint registry login {}`",
                        self.registry
                    ),
                };
                return Err(self.auth_error(message));
            }
            status => {
                return Err(self.auth_error(format!(
                    "the token service answered {status}: {}",
                    error_text(&response.body)
                )));
            }
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let token: Token = serde_json::from_slice(&response.body)
            .map_err(|e| self.auth_error(format!("the token service's answer is not JSON: {e}")))?;
        let token = token
            .token
            .or(token.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| self.auth_error("the token service's answer holds no token"))?;
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(self.auth_error("the token holds characters a header cannot carry"));
        }
        Ok(token)
    }

    fn login_hint(&self) -> String {
        format!(
            "authentication required: run `flint registry login {}` (or `docker login`)",
            self.registry
        )
    }

    fn refused(&self, credentials: &Credentials) -> String {
        format!(
            "the registry refused the credentials of `{}` (from {})",
            credentials.username, credentials.source
        )
    }

    fn auth_error(&self, message: impl Into<String>) -> Error {
        Error::Auth {
            registry: self.registry.clone(),
            message: message.into(),
        }
    }

    /// One request and its answer, without retries.
    fn exchange(
        &self,
        method: &str,
        url: &Url,
        headers: &[(&str, &str)],
        body: &[u8],
        authorization: Option<&str>,
        max_body: usize,
    ) -> Result<Response> {
        let mut all: Headers = headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
            .collect();
        if let Some(authorization) = authorization {
            all.push(("authorization".into(), authorization.as_bytes().to_vec()));
        }
        all.push((
            "user-agent".into(),
            format!("flint/{}", env!("CARGO_PKG_VERSION")).into_bytes(),
        ));
        // Big transfers get time for a slow uplink.
        let bytes = (body.len() as u64).max(max_body as u64);
        let transfer = Duration::from_secs(bytes / SLOWEST_LINK / 4);
        let authority = url.authority();
        let response = outbound_http::send(
            &Request {
                method,
                host: &url.host,
                port: url.port,
                authority: &authority,
                path_with_query: &url.path_and_query,
                headers: &all,
                body,
                tls: url.https.then(|| self.tls.for_broker(&url.host)),
                blocked: &self.blocked,
            },
            Bounds {
                connect_timeout: CONNECT_TIMEOUT,
                io_timeout: IO_TIMEOUT + transfer,
                max_head_bytes: 64 * 1024,
                max_body_bytes: max_body,
            },
        )
        .map_err(|e| self.transport(url, e))?;
        // Server errors and rate limits say nothing about the app: like no
        // uplink, they let a device fall back to its cache.
        if response.status >= 500 || matches!(response.status, 408 | 429) {
            return Err(Error::Unreachable {
                registry: self.registry.clone(),
                reason: format!(
                    "{method} {url} answered {}: {}",
                    response.status,
                    error_text(&response.body)
                ),
            });
        }
        Ok(Response {
            status: response.status,
            headers: response.headers,
            body: response.body,
        })
    }

    fn transport(&self, url: &Url, e: ErrorCode) -> Error {
        let why = match &e {
            ErrorCode::DnsError(why) => format!("cannot resolve {}: {why}", url.host),
            ErrorCode::ConnectionRefused => format!("{} refused the connection", url.authority()),
            ErrorCode::ConnectionTimeout => format!("connecting to {} timed out", url.authority()),
            ErrorCode::ConnectionReadTimeout => format!("{} stopped answering", url.authority()),
            ErrorCode::ConnectionTerminated => {
                format!("{} closed the connection", url.authority())
            }
            ErrorCode::ResponseIncomplete => {
                format!("{} sent an incomplete answer", url.authority())
            }
            ErrorCode::Tls(failure) => format!("TLS with {}: {failure}", url.authority()),
            ErrorCode::ResponseBodySize(max) => {
                return Error::Limit(format!(
                    "{url}: the answer is larger than the {max} bytes allowed"
                ));
            }
            ErrorCode::ResponseHeaderSectionSize => {
                return self.error(format!("{url}: the answer's head is too large"));
            }
            ErrorCode::ProtocolError => {
                return self.error(format!("{url}: the answer is not valid HTTP/1.1"));
            }
            other => format!("{url}: {other:?}"),
        };
        Error::Unreachable {
            registry: self.registry.clone(),
            reason: why,
        }
    }
}

/// The registry's error document (`{"errors":[{"code","message"}]}`) as
/// one line, or the start of the body.
pub(crate) fn error_text(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    if let Ok(errors) = serde_json::from_slice::<Errors>(body) {
        let parts: Vec<String> = errors
            .errors
            .iter()
            .take(5)
            .map(|e| {
                format!(
                    "{}: {}",
                    e.code.as_deref().unwrap_or("ERROR"),
                    e.message.as_deref().unwrap_or("")
                )
            })
            .collect();
        if !parts.is_empty() {
            return printable(&parts.join("; "));
        }
    }
    if body.is_empty() {
        "(no body)".into()
    } else {
        printable(&String::from_utf8_lossy(body))
    }
}

/// `Scheme k=v, k="quoted, with commas"` → the scheme and its parameters.
pub(crate) fn parse_challenge(header: &str) -> (String, Vec<(String, String)>) {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(c) = chars.peek().copied() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.peek().copied() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        params.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
        if params.len() > 32 {
            break;
        }
    }
    (scheme.to_owned(), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_with_quoted_commas() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(scheme, "Bearer");
        assert_eq!(
            params,
            [
                ("realm".to_owned(), "https://auth.example/token".to_owned()),
                ("service".to_owned(), "registry.example".to_owned()),
                ("scope".to_owned(), "repository:a/b:pull,push".to_owned()),
            ]
        );
        let (scheme, params) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!((scheme.as_str(), params.len()), ("Basic", 1));
        // Junk does not panic.
        for junk in [
            "",
            "Bearer",
            "Bearer ,,,=",
            "Bearer realm=\"unterminated",
            "x y=\\",
        ] {
            let _ = parse_challenge(junk);
        }
    }

    #[test]
    fn registry_errors_are_one_line() {
        assert_eq!(
            error_text(br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#),
            "MANIFEST_UNKNOWN: manifest unknown"
        );
        assert_eq!(error_text(b"plain\ntext"), "plain?text");
    }
}
