//! Route matching (exact, trailing wildcard, `:param`), reserved and unmatched
//! paths, WAGI status/redirect handling and manifest-only static responses.

use flint_e2e::{Flint, LOG_TIMEOUT, apps_dir, poll_until};

/// One request and what must come back. `body: None` = body not checked.
struct Case {
    path: &'static str,
    status: u16,
    body: Option<&'static str>,
    header: Option<(&'static str, &'static str)>,
}

const fn case(path: &'static str, status: u16, body: Option<&'static str>) -> Case {
    Case {
        path,
        status,
        body,
        header: None,
    }
}

const CASES: &[Case] = &[
    // Exact routes match only themselves.
    case("/hello", 200, Some("Hello, Flint!\n")),
    case("/hello/extra", 404, None),
    // `:name` matches exactly one segment.
    case("/greet/World", 200, Some("Hello, World!\n")),
    case("/greet/a/b", 404, None),
    case("/greet", 404, None),
    // `/env/...` matches its bare prefix and anything below it.
    case("/env", 200, None),
    case("/env/a/b/c", 200, None),
    // WAGI `Status:` sets the code, whatever it is.
    case("/status/418", 418, Some("status 418\n")),
    case("/status/201", 201, Some("status 201\n")),
    // proc_exit(0) after a valid response is a success, not a trap.
    case("/exit/0", 200, Some("exiting with 0\n")),
    case("/fib/20", 200, Some("6765\n")),
    case("/slow?ms=1", 200, Some("slept 1\n")),
    // Reserved health route, and the generic 404s.
    case("/.well-known/spin/health", 200, None),
    case("/nope", 404, None),
    case("/", 404, None),
    // A lone `Location:` from the guest becomes a 302.
    Case {
        path: "/redirect",
        status: 302,
        body: None,
        header: Some(("location", "/hello")),
    },
    // Answered from the manifest, no component involved.
    Case {
        path: "/static-response",
        status: 201,
        body: Some("made by the manifest"),
        header: Some(("x-flint", "static")),
    },
];

#[test]
fn routes_resolve_as_the_manifest_says() {
    let flint = Flint::showcase();
    for c in CASES {
        let resp = flint.get(c.path);
        assert_eq!(resp.status, c.status, "GET {}: {resp:?}", c.path);
        if let Some(body) = c.body {
            assert_eq!(resp.text(), body, "GET {}: {resp:?}", c.path);
        }
        if let Some((name, value)) = c.header {
            assert_eq!(resp.header(name), Some(value), "GET {}: {resp:?}", c.path);
        }
    }
}

/// `-f` also takes an app directory, and stdout lists the routes after `Serving`.
#[test]
fn app_directory_is_served_and_routes_listed() {
    let flint = Flint::start(apps_dir().join("hello"));
    assert_eq!(
        flint.get("/hello").assert_status(200).text(),
        "Hello, Flint!\n"
    );
    // The route lines follow the Serving line; they may still be in flight.
    let listed = poll_until(LOG_TIMEOUT, || {
        let out = flint.stdout();
        out.contains("Available Routes:")
            && out
                .lines()
                .skip_while(|l| !l.starts_with("Available Routes:"))
                .any(|l| l.contains("/hello"))
    });
    assert!(
        listed,
        "route list missing /hello; stdout:\n{}",
        flint.stdout()
    );
}
