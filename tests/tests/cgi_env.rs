//! The CGI/WAGI environment and argv a guest sees (spin-reference.md §3.2, §3.3),
//! observed through the showcase's `/env/...` route, which dumps both.

use std::collections::BTreeMap;

use flint_e2e::{Flint, parse_env_dump};

fn env_of(
    flint: &Flint,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> BTreeMap<String, String> {
    let resp = flint.request(method, path, headers, body);
    resp.assert_status(200);
    parse_env_dump(&resp.text()).into_iter().collect()
}

#[test]
fn cgi_variables_describe_the_request() {
    let flint = Flint::builder(flint_e2e::showcase_manifest())
        .guest_env("FLINT_E2E_CLI_VAR", "from-the-cli")
        // Set on flint itself: a guest must only see what the host passes on purpose.
        .process_env("FLINT_TEST_SECRET", "leak")
        .start();
    let port = flint.port().to_string();
    let env = env_of(
        &flint,
        "POST",
        "/env/a%20b/c?x=1&y=two",
        &[
            ("Content-Type", "text/x-test"),
            ("X-Custom", "yes"),
            ("Authorization", "Bearer do-not-forward"),
            ("Connection", "keep-alive"),
        ],
        "hello",
    );
    let full_url = format!("http://127.0.0.1:{port}/env/a%20b/c?x=1&y=two");
    let expected: &[(&str, &str)] = &[
        ("REQUEST_METHOD", "POST"),
        ("QUERY_STRING", "x=1&y=two"),
        ("PATH_INFO", "/a%20b/c"),
        ("X_RAW_PATH_INFO", "/a%20b/c"),
        ("PATH_TRANSLATED", "/a b/c"),
        ("SCRIPT_NAME", "/env"),
        ("X_MATCHED_ROUTE", "/env/..."),
        ("X_COMPONENT_ROUTE", "/env"),
        ("X_RAW_COMPONENT_ROUTE", "/env/..."),
        ("X_FULL_URL", &full_url),
        ("X_BASE_PATH", "/"),
        ("SERVER_NAME", "127.0.0.1"),
        ("SERVER_PORT", &port),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("CONTENT_LENGTH", "5"),
        ("CONTENT_TYPE", "text/x-test"),
        ("HTTP_CONTENT_TYPE", "text/x-test"),
        ("HTTP_X_CUSTOM", "yes"),
        // Component `environment` from the manifest, and `-e` from the command line.
        ("SHOWCASE_GREETING", "from-the-manifest"),
        ("FLINT_E2E_CLI_VAR", "from-the-cli"),
    ];
    for (key, value) in expected {
        assert_eq!(
            env.get(*key).map(String::as_str),
            Some(*value),
            "{key} in {env:#?}"
        );
    }
    // RFC 3875 §4.1.18: credentials and hop-by-hop headers are not passed on;
    // and nothing leaks from flint's own environment.
    for key in [
        "HTTP_AUTHORIZATION",
        "HTTP_CONNECTION",
        "FLINT_TEST_SECRET",
        "PATH",
        "HOME",
    ] {
        assert!(
            !env.contains_key(key),
            "{key} must not reach the guest: {env:#?}"
        );
    }
}

/// PATH_INFO is the part after the wildcard route's prefix, raw as in Spin
/// (whose default headers replace the decoded CGI value with the raw
/// trailing wildcard), like X_RAW_PATH_INFO; PATH_TRANSLATED is decoded.
#[test]
fn path_info_is_the_wildcard_tail() {
    let flint = Flint::showcase();
    for (path, raw, decoded) in [
        ("/env", "", ""),
        ("/env/a/b", "/a/b", "/a/b"),
        ("/env/a/b/", "/a/b/", "/a/b/"),
        ("/env/a%20b", "/a%20b", "/a b"),
        ("/env/caf%C3%A9/x", "/caf%C3%A9/x", "/café/x"),
    ] {
        let env = env_of(&flint, "GET", path, &[], "");
        for (key, expected) in [
            ("PATH_INFO", raw),
            ("X_RAW_PATH_INFO", raw),
            ("PATH_TRANSLATED", decoded),
        ] {
            assert_eq!(
                env.get(key).map(String::as_str),
                Some(expected),
                "{key} for {path}"
            );
        }
    }
}

/// Spin's default argv template `${SCRIPT_NAME} ${ARGS}`: the request path,
/// then the raw query split on `&`.
#[test]
fn argv_is_path_then_query_args() {
    let flint = Flint::showcase();
    let env = env_of(&flint, "GET", "/env/argv?x=1&y=two&flag", &[], "");
    assert_eq!(
        env.get("ARGV").map(String::as_str),
        Some("/env/argv x=1 y=two flag"),
        "{env:#?}"
    );
}
