//! The WAGI contract, as Spin implements it: the CGI environment and argv handed
//! to a guest, and the parsing of the header block the guest writes to stdout.
//! Pure functions, so every rule is unit-tested without a Wasm engine.

use std::net::SocketAddr;

use flint_config::route::{RouteMatch, RoutePattern};

use flint_host::http1::is_valid_header;

/// What the HTTP trigger knows about a request when it hands it to a WAGI guest.
pub struct WagiRequest<'a> {
    pub method: &'a str,
    /// The request path as sent, still percent-encoded, without the query.
    pub raw_path: &'a str,
    pub query: &'a str,
    pub http_version: &'a str,
    /// Header names are lower-cased; repeated headers appear repeatedly.
    pub headers: &'a [(String, String)],
    pub body_len: usize,
    pub client_addr: SocketAddr,
    pub route: &'a RoutePattern,
    pub route_match: &'a RouteMatch,
}

impl WagiRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The request's authority: its `Host` header, or `localhost` as in
    /// Spin when there is none (HTTP/1.0).
    pub fn host(&self) -> String {
        self.header("host").unwrap_or("localhost").to_owned()
    }

    fn full_url(&self, host: &str) -> String {
        if self.query.is_empty() {
            format!("http://{host}{}", self.raw_path)
        } else {
            format!("http://{host}{}?{}", self.raw_path, self.query)
        }
    }

    /// The `spin-*` request headers Spin adds for non-WAGI guests: Spin
    /// derives them from `SPIN_*` names, lower-cased with `-` for `_`, so the
    /// route parameter `:path_segment` is `spin-path-match-path-segment`.
    pub fn spin_headers(&self) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = [
            ("spin-full-url", self.full_url(&self.host())),
            ("spin-path-info", self.route_match.path_info.clone()),
            ("spin-matched-route", self.route.raw().to_owned()),
            ("spin-raw-component-route", self.route.raw().to_owned()),
            (
                "spin-component-route",
                self.route.component_route().to_owned(),
            ),
            ("spin-base-path", "/".to_owned()),
            ("spin-client-addr", self.client_addr.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (name, value) in &self.route_match.params {
            headers.push((
                format!(
                    "spin-path-match-{}",
                    name.to_ascii_lowercase().replace('_', "-")
                ),
                value.clone(),
            ));
        }
        headers
    }

    /// The CGI environment (RFC 3875) plus Spin's `X_*` extras. As in Spin,
    /// whose own `PATH_INFO` is replaced by its raw trailing wildcard,
    /// `PATH_INFO` and `X_PATH_MATCH_*` are raw (still percent-encoded);
    /// `PATH_TRANSLATED` is decoded. The component's own `environment` is
    /// appended by the caller so that it can override these.
    pub fn environment(&self) -> Vec<(String, String)> {
        let host = self.host();
        let (server_name, server_port) = split_host_port(&host);
        let path_info = self.route_match.path_info.as_str();
        let full_url = self.full_url(&host);
        let client_ip = self.client_addr.ip().to_string();

        let mut env: Vec<(String, String)> = [
            ("REQUEST_METHOD", self.method.to_owned()),
            ("QUERY_STRING", self.query.to_owned()),
            ("PATH_INFO", path_info.to_owned()),
            ("X_RAW_PATH_INFO", path_info.to_owned()),
            ("PATH_TRANSLATED", percent_decode(path_info)),
            ("SCRIPT_NAME", self.route.component_route().to_owned()),
            ("SERVER_NAME", server_name.to_owned()),
            ("SERVER_PORT", server_port.to_owned()),
            ("SERVER_PROTOCOL", self.http_version.to_owned()),
            ("SERVER_SOFTWARE", "WAGI/1".to_owned()),
            ("GATEWAY_INTERFACE", "CGI/1.1".to_owned()),
            ("REMOTE_ADDR", client_ip.clone()),
            ("REMOTE_HOST", client_ip),
            ("AUTH_TYPE", String::new()),
            ("REMOTE_USER", String::new()),
            ("CONTENT_LENGTH", self.body_len.to_string()),
            (
                "CONTENT_TYPE",
                self.header("content-type").unwrap_or_default().to_owned(),
            ),
            ("X_FULL_URL", full_url),
            ("X_MATCHED_ROUTE", self.route.raw().to_owned()),
            ("X_COMPONENT_ROUTE", self.route.component_route().to_owned()),
            ("X_RAW_COMPONENT_ROUTE", self.route.raw().to_owned()),
            ("X_BASE_PATH", "/".to_owned()),
            ("X_CLIENT_ADDR", self.client_addr.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();

        // Spin upper-cases the parameter name and changes nothing else.
        for (name, value) in &self.route_match.params {
            env.push((
                format!("X_PATH_MATCH_{}", name.to_ascii_uppercase()),
                value.clone(),
            ));
        }
        // RFC 3875 §4.1.18: credentials and hop-by-hop connection state stay with the server.
        for (name, value) in self.headers {
            if name == "authorization" || name == "connection" {
                continue;
            }
            let key = format!("HTTP_{}", cgi_name(name));
            match env.iter_mut().find(|(k, _)| *k == key) {
                // Repeated headers are one comma-separated field in HTTP semantics.
                Some((_, existing)) => {
                    existing.push_str(", ");
                    existing.push_str(value);
                }
                None => env.push((key, value.clone())),
            }
        }
        env
    }
}

/// Spin's argv: the template with `${SCRIPT_NAME}` as the request path and `${ARGS}`
/// as the query with `&` turned into spaces, split on single spaces.
pub fn argv(template: &str, raw_path: &str, query: &str) -> Vec<String> {
    template
        .replace("${SCRIPT_NAME}", raw_path)
        .replace("${ARGS}", &query.replace('&', " "))
        .split(' ')
        .map(str::to_owned)
        .collect()
}

fn cgi_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '-' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

fn split_host_port(host: &str) -> (&str, &str) {
    // A bracketed IPv6 literal contains colons of its own.
    let port_sep = match host.rfind(']') {
        Some(end) => host[end..].find(':').map(|i| end + i),
        None => host.rfind(':'),
    };
    match port_sep {
        Some(i) => (&host[..i], &host[i + 1..]),
        None => (host, "80"),
    }
}

/// Decodes `%XX` escapes; malformed escapes and invalid UTF-8 are kept, never fatal.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A response composed from a guest's stdout.
#[derive(Debug, PartialEq, Eq)]
pub struct WagiResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body_offset: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WagiError {
    #[error("the guest wrote nothing to stdout")]
    EmptyOutput,
    #[error("the guest's stdout has no content-type, status or location header")]
    NoResponseHeaders,
    #[error("the guest's Status header `{0}` is not a status code between 200 and 999")]
    BadStatus(String),
    #[error("the guest's header block is larger than {MAX_RESPONSE_HEAD} bytes")]
    HeadTooLarge,
}

/// A response head no client should be asked to accept.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// Parses the header block at the start of a guest's stdout, as WAGI does: `\r`
/// dropped, the block ends at the first blank line, `Status:` sets the code,
/// `Location:` without a status means 302, and one of content-type, status or
/// location is required. The body is `stdout[body_offset..]`.
pub fn parse_output(stdout: &[u8]) -> Result<WagiResponse, WagiError> {
    if stdout.is_empty() {
        return Err(WagiError::EmptyOutput);
    }
    let (head, body_offset) = match find_blank_line(stdout) {
        Some((end, body)) => (&stdout[..end], body),
        None => (stdout, stdout.len()),
    };
    if head.len() > MAX_RESPONSE_HEAD {
        return Err(WagiError::HeadTooLarge);
    }
    let head = String::from_utf8_lossy(head);
    let mut status = None;
    let mut has_location = false;
    let mut has_content_type = false;
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split('\n') {
        let line = line.trim_end_matches('\r');
        let Some((name, value)) = line.split_once(':') else {
            tracing::debug!(line, "ignoring a WAGI header line without a colon");
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if !is_valid_header(name, value) {
            tracing::debug!(name, "ignoring an invalid WAGI header");
            continue;
        }
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or_default();
            match code.parse::<u16>() {
                // 1xx are interim responses; a client would wait for the real one.
                Ok(c) if (200..=999).contains(&c) => status = Some(c),
                _ => return Err(WagiError::BadStatus(value.to_owned())),
            }
            continue;
        }
        has_location |= name.eq_ignore_ascii_case("location");
        has_content_type |= name.eq_ignore_ascii_case("content-type");
        // A later duplicate replaces an earlier one, as in WAGI's header map.
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        headers.push((name.to_owned(), value.to_owned()));
    }
    if status.is_none() && !has_location && !has_content_type {
        return Err(WagiError::NoResponseHeaders);
    }
    let status = status.unwrap_or(if has_location { 302 } else { 200 });
    Ok(WagiResponse {
        status,
        headers,
        body_offset,
    })
}

/// The end of the header block and the start of the body.
fn find_blank_line(out: &[u8]) -> Option<(usize, usize)> {
    let mut line_start = 0;
    for (i, &b) in out.iter().enumerate() {
        if b == b'\n' {
            if out[line_start..i].iter().all(|&c| c == b'\r') {
                return Some((line_start, i + 1));
            }
            line_start = i + 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(
        route: &str,
        path: &str,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        let pattern = RoutePattern::parse(route).expect("route");
        let m = pattern.matches(path).expect("match");
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        WagiRequest {
            method: "POST",
            raw_path: path,
            query,
            http_version: "HTTP/1.1",
            headers: &headers,
            body_len: 5,
            client_addr: "10.0.0.7:5555".parse().expect("addr"),
            route: &pattern,
            route_match: &m,
        }
        .environment()
    }

    fn get<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn cgi_environment_for_a_wildcard_route() {
        let env = env_of(
            "/env/...",
            "/env/a%20b/c",
            "x=1&y=2",
            &[
                ("host", "example.com:8080"),
                ("content-type", "text/plain"),
                ("x-custom", "yes"),
                ("authorization", "Bearer secret"),
                ("connection", "keep-alive"),
                ("accept", "a"),
                ("accept", "b"),
            ],
        );
        let expect = [
            ("REQUEST_METHOD", "POST"),
            ("QUERY_STRING", "x=1&y=2"),
            ("PATH_INFO", "/a%20b/c"),
            ("X_RAW_PATH_INFO", "/a%20b/c"),
            ("PATH_TRANSLATED", "/a b/c"),
            ("SCRIPT_NAME", "/env"),
            ("SERVER_NAME", "example.com"),
            ("SERVER_PORT", "8080"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("REMOTE_ADDR", "10.0.0.7"),
            ("CONTENT_LENGTH", "5"),
            ("CONTENT_TYPE", "text/plain"),
            ("HTTP_CONTENT_TYPE", "text/plain"),
            ("HTTP_X_CUSTOM", "yes"),
            ("HTTP_ACCEPT", "a, b"),
            ("X_FULL_URL", "http://example.com:8080/env/a%20b/c?x=1&y=2"),
            ("X_MATCHED_ROUTE", "/env/..."),
            ("X_COMPONENT_ROUTE", "/env"),
            ("X_RAW_COMPONENT_ROUTE", "/env/..."),
            ("X_BASE_PATH", "/"),
            ("X_CLIENT_ADDR", "10.0.0.7:5555"),
        ];
        for (k, v) in expect {
            assert_eq!(get(&env, k), Some(v), "{k}");
        }
        assert_eq!(get(&env, "HTTP_AUTHORIZATION"), None);
        assert_eq!(get(&env, "HTTP_CONNECTION"), None);
    }

    #[test]
    fn path_params_and_default_port() {
        let env = env_of(
            "/users/:user_id/edit",
            "/users/al%21ce/edit",
            "",
            &[("host", "h")],
        );
        assert_eq!(get(&env, "X_PATH_MATCH_USER_ID"), Some("al%21ce"));
        assert_eq!(get(&env, "SERVER_PORT"), Some("80"));
        assert_eq!(get(&env, "PATH_INFO"), Some(""));
        assert_eq!(get(&env, "X_FULL_URL"), Some("http://h/users/al%21ce/edit"));
    }

    /// Spin's conformance `request-shape` route: the header name turns `_`
    /// into `-` and lower-cases; the WAGI name only upper-cases; both values
    /// stay raw.
    #[test]
    fn route_parameters_follow_spins_naming() {
        let pattern = RoutePattern::parse("/base/:path_segment/:Path_End/...").expect("route");
        let m = pattern.matches("/base/a%20b/end/rest").expect("match");
        let headers = [("host".to_owned(), "example.com".to_owned())];
        let request = WagiRequest {
            method: "GET",
            raw_path: "/base/a%20b/end/rest",
            query: "key=value",
            http_version: "HTTP/1.1",
            headers: &headers,
            body_len: 0,
            client_addr: "10.0.0.7:5555".parse().expect("addr"),
            route: &pattern,
            route_match: &m,
        };
        let spin = request.spin_headers();
        let header = |name: &str| {
            spin.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("spin-path-match-path-segment"), Some("a%20b"));
        assert_eq!(header("spin-path-match-path-end"), Some("end"));
        assert_eq!(header("spin-path-info"), Some("/rest"));
        assert_eq!(
            header("spin-full-url"),
            Some("http://example.com/base/a%20b/end/rest?key=value")
        );
        assert_eq!(
            header("spin-component-route"),
            Some("/base/:path_segment/:Path_End")
        );
        let env = request.environment();
        assert_eq!(get(&env, "X_PATH_MATCH_PATH_SEGMENT"), Some("a%20b"));
        assert_eq!(get(&env, "X_PATH_MATCH_PATH_END"), Some("end"));
    }

    #[test]
    fn without_a_host_header_the_url_says_localhost() {
        let env = env_of("/env/...", "/env/x", "", &[]);
        assert_eq!(get(&env, "X_FULL_URL"), Some("http://localhost/env/x"));
        assert_eq!(get(&env, "SERVER_NAME"), Some("localhost"));
    }

    #[test]
    fn argv_follows_spin() {
        assert_eq!(
            argv("${SCRIPT_NAME} ${ARGS}", "/a/b", "x=1&y=2"),
            ["/a/b", "x=1", "y=2"]
        );
        assert_eq!(argv("${SCRIPT_NAME} ${ARGS}", "/a", ""), ["/a", ""]);
        assert_eq!(
            argv("prog --flag ${ARGS}", "/a", "q"),
            ["prog", "--flag", "q"]
        );
    }

    #[test]
    fn output_parsing() {
        let ok = parse_output(b"Content-Type: text/plain\r\nX-A: 1\r\n\r\nhello").expect("ok");
        assert_eq!(ok.status, 200);
        assert_eq!(
            ok.headers,
            [
                ("Content-Type".into(), "text/plain".into()),
                ("X-A".into(), "1".into())
            ]
        );
        assert_eq!(ok.body_offset, 36);

        let st = parse_output(b"Status: 404 Not Found\n\nnope").expect("status");
        assert_eq!((st.status, st.headers.len(), st.body_offset), (404, 0, 23));

        let redirect = parse_output(b"Location: /x\n\n").expect("redirect");
        assert_eq!(redirect.status, 302);
        let explicit = parse_output(b"Location: /x\nStatus: 301\n\n").expect("explicit");
        assert_eq!(explicit.status, 301);

        let dup = parse_output(b"Content-Type: a\ncontent-type: b\n\n").expect("dup");
        assert_eq!(dup.headers, [("content-type".into(), "b".into())]);

        // Headers with no body and no blank line still count.
        let no_blank = parse_output(b"Content-Type: text/plain\n").expect("no blank");
        assert_eq!(no_blank.body_offset, 25);
    }

    #[test]
    fn output_errors() {
        assert_eq!(parse_output(b""), Err(WagiError::EmptyOutput));
        assert_eq!(
            parse_output(b"just a body"),
            Err(WagiError::NoResponseHeaders)
        );
        assert_eq!(
            parse_output(b"X-Only: 1\n\nbody"),
            Err(WagiError::NoResponseHeaders)
        );
        assert_eq!(
            parse_output(b"Status: abc\n\n"),
            Err(WagiError::BadStatus("abc".into()))
        );
        assert_eq!(
            parse_output(b"Status: 42\n\n"),
            Err(WagiError::BadStatus("42".into()))
        );
        // An invalid header name is skipped, not passed to the client.
        let r = parse_output(b"Content-Type: a\nBad Name: x\n\n").expect("ok");
        assert_eq!(r.headers.len(), 1);
    }

    #[test]
    fn percent_decoding_is_lenient() {
        assert_eq!(percent_decode("a%20b%zz%2"), "a b%zz%2");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }
}

/// Property tests: guest output is input from outside and must never panic the host.
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    fn header_block() -> impl Strategy<Value = Vec<u8>> {
        let line = prop_oneof![
            "(?i:content-type|status|location|x-[a-z]{1,8}): ?[ -~]{0,30}",
            "Status: [0-9]{0,4}[ -~]{0,10}",
            "[ -~]{0,40}",
        ];
        (
            proptest::collection::vec(line, 0..8),
            prop_oneof![Just("\n"), Just("\r\n")],
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(lines, eol, body)| {
                let mut out = lines.join(eol).into_bytes();
                out.extend_from_slice(eol.as_bytes());
                out.extend_from_slice(eol.as_bytes());
                out.extend(body);
                out
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn wagi_output_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = super::parse_output(&bytes);
        }

        #[test]
        fn wagi_header_blocks_parse_without_panics(out in header_block()) {
            if let Ok(response) = super::parse_output(&out) {
                prop_assert!(response.body_offset <= out.len());
                prop_assert!((200..=999).contains(&response.status));
            }
        }
    }
}
