//! Spin HTTP route patterns: parsing, matching and precedence.
//!
//! Spin (crates/routes/src/lib.rs) strips one trailing `/` from a route,
//! rewrites a trailing `/...` to `/*` and hands the result to the
//! `routefinder` crate (0.5). Matching here reproduces what that combination
//! does:
//!
//! - Leading and trailing slashes of the request path are ignored, so the
//!   exact route `/a` matches `/a` and `/a/`, and a run of slashes between
//!   two segments counts as one separator.
//! - A trailing wildcard (`/a/...` or `/a/*`) matches `/a`, `/a/` and
//!   anything below `/a/`, but not `/ab`. (routefinder 0.5 did let `/a/*`
//!   match `/ab`; later routefinder releases fixed that and so does Flint.)
//! - `:name` matches one non-empty segment.
//! - The path info a wildcard route passes on follows Spin's
//!   `trailing_wildcard()`: empty for `/a`, `/` for `/a/`, `/b` for `/a/b`
//!   and `/b/` for `/a/b/`; always empty for exact routes.
//!
//! When several routes match, routefinder keeps its routes sorted and takes
//! the first that matches. The order compares routes segment by segment from
//! the left, and at the first difference a literal beats a `:param`, which
//! beats the wildcard; if one route is a prefix of the other, the shorter
//! wins. So exact beats wildcard (`/a` over `/a/...`), the longest literal
//! prefix wins (`/a/b/...` over `/a/...`), and `/a/:id` beats `/:x/b` on
//! `/a/b`. [`RoutePattern::specificity`] is that order.

use std::fmt;

/// Spin reserves everything under this prefix for the runtime's own
/// endpoints (`/.well-known/spin/health`, `/.well-known/spin/info`).
const RESERVED_PREFIX: &str = "/.well-known/spin/";

/// The `route` of an HTTP trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Pattern(RoutePattern),
    /// `{ private = true }`: never routed from outside; reachable only by
    /// service chaining.
    Private,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("a route must start with `/`")]
    NoLeadingSlash,
    #[error("a route must not contain whitespace")]
    Whitespace,
    #[error("a route must not contain `{0}`: query strings and fragments are not part of routing")]
    QueryOrFragment(char),
    #[error("a route must not contain an empty segment (`//`)")]
    EmptySegment,
    #[error("the wildcard `{0}` may only be the last segment")]
    MisplacedWildcard(String),
    #[error("`{0}` is not a segment: a wildcard is `...` or `*` on its own")]
    NamedWildcard(String),
    #[error(
        "`:{0}` is not a valid parameter: a name is ASCII letters, digits and `_`, \
         not starting with a digit, and fills the whole segment"
    )]
    InvalidParam(String),
    #[error("the parameter `:{0}` appears twice")]
    DuplicateParam(String),
    #[error("routes under `{RESERVED_PREFIX}` are reserved for the runtime")]
    Reserved,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// A parsed route such as `/api/:id/...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    raw: String,
    segments: Vec<Segment>,
    wildcard: bool,
    component_route: String,
}

/// What a request path matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// `:name` parameters and the raw (still percent-encoded) segment each
    /// captured, in route order.
    pub params: Vec<(String, String)>,
    /// The raw part of the path below the component route for wildcard
    /// routes (Spin's `spin-path-info` / `PATH_INFO`); empty for exact
    /// routes. Starts with `/` when not empty.
    pub path_info: String,
}

/// Sort key for choosing among matching routes: sort with
/// `sort_by_key(RoutePattern::specificity)` and the first route that matches
/// a path is the one Spin would pick. Only routes that match exactly the same
/// paths share a key, and the manifest rejects those as duplicates.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Specificity(Vec<SegmentKind>);

// Declaration order is the precedence order: derived `Ord` relies on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum SegmentKind {
    Literal,
    Param,
    Wildcard,
}

impl RoutePattern {
    pub fn parse(raw: &str) -> Result<Self, RouteError> {
        let Some(body) = raw.strip_prefix('/') else {
            return Err(RouteError::NoLeadingSlash);
        };
        if raw.chars().any(char::is_whitespace) {
            return Err(RouteError::Whitespace);
        }
        if let Some(c) = raw.chars().find(|c| matches!(c, '?' | '#')) {
            return Err(RouteError::QueryOrFragment(c));
        }
        if raw.contains("//") {
            return Err(RouteError::EmptySegment);
        }
        if raw.starts_with(RESERVED_PREFIX) {
            return Err(RouteError::Reserved);
        }
        // Spin strips exactly one trailing slash before routing.
        let body = body.strip_suffix('/').unwrap_or(body);

        let mut segments = Vec::new();
        let mut wildcard = false;
        let parts: Vec<&str> = if body.is_empty() {
            Vec::new()
        } else {
            body.split('/').collect()
        };
        for (index, part) in parts.iter().enumerate() {
            let last = index + 1 == parts.len();
            segments.push(match *part {
                "..." | "*" if last => {
                    wildcard = true;
                    continue;
                }
                "..." | "*" => return Err(RouteError::MisplacedWildcard((*part).to_owned())),
                named if named.starts_with('*') => {
                    return Err(RouteError::NamedWildcard(named.to_owned()));
                }
                param if param.starts_with(':') => {
                    let name = &param[1..];
                    if !is_param_name(name) {
                        return Err(RouteError::InvalidParam(name.to_owned()));
                    }
                    if segments.contains(&Segment::Param(name.to_owned())) {
                        return Err(RouteError::DuplicateParam(name.to_owned()));
                    }
                    Segment::Param(name.to_owned())
                }
                literal => Segment::Literal(literal.to_owned()),
            });
        }

        Ok(Self {
            raw: raw.to_owned(),
            component_route: component_route(raw, wildcard),
            segments,
            wildcard,
        })
    }

    /// The route as written in the manifest, wildcard included (Spin's
    /// `spin-raw-component-route` / `X_RAW_COMPONENT_ROUTE`).
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The route without its trailing wildcard (Spin's `SCRIPT_NAME` /
    /// `X_COMPONENT_ROUTE` / `spin-component-route`): `/api` for `/api/...`,
    /// and the empty string for `/...`, as Spin passes it.
    pub fn component_route(&self) -> &str {
        &self.component_route
    }

    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    pub fn specificity(&self) -> Specificity {
        let kinds = self.segments.iter().map(|segment| match segment {
            Segment::Literal(_) => SegmentKind::Literal,
            Segment::Param(_) => SegmentKind::Param,
        });
        let wildcard = self.wildcard.then_some(SegmentKind::Wildcard);
        Specificity(kinds.chain(wildcard).collect())
    }

    /// Matches `path`, the raw request path without its query string.
    pub fn matches(&self, path: &str) -> Option<RouteMatch> {
        let mut rest = path.trim_matches('/');
        let mut params = Vec::new();
        for (index, segment) in self.segments.iter().enumerate() {
            if index > 0 {
                rest = strip_separator(rest)?;
            }
            let end = rest.find('/').unwrap_or(rest.len());
            let (value, after) = rest.split_at(end);
            match segment {
                Segment::Literal(literal) if value == literal => {}
                Segment::Param(name) if !value.is_empty() => {
                    params.push((name.clone(), value.to_owned()));
                }
                _ => return None,
            }
            rest = after;
        }

        if !self.wildcard {
            return rest.is_empty().then(|| RouteMatch {
                params,
                path_info: String::new(),
            });
        }
        let captured = if self.segments.is_empty() || rest.is_empty() {
            rest
        } else {
            strip_separator(rest)?
        };
        let path_info = match (captured.is_empty(), path.ends_with('/')) {
            (true, false) => String::new(),
            (true, true) => "/".to_owned(),
            (false, false) => format!("/{captured}"),
            (false, true) => format!("/{captured}/"),
        };
        Some(RouteMatch { params, path_info })
    }

    /// A key equal for two routes exactly when they match the same paths, so
    /// the second is unreachable: `/a/*` and `/a/...`, `/a/` and `/a`, and
    /// `/:x` and `/:y` all share one.
    pub(crate) fn duplicate_key(&self) -> String {
        let mut key = String::new();
        for segment in &self.segments {
            key.push('/');
            if let Segment::Literal(literal) = segment {
                key.push_str(literal);
            } else {
                key.push(':');
            }
        }
        if self.wildcard {
            key.push_str("/...");
        }
        key
    }
}

impl fmt::Display for RoutePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

fn is_param_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Spin's `raw_route_or_prefix()`, extended to `/*` (which Spin accepts as a
/// wildcard but forgets to strip here).
fn component_route(raw: &str, wildcard: bool) -> String {
    if !wildcard {
        return raw.to_owned();
    }
    let trimmed = raw.strip_suffix('/').unwrap_or(raw);
    let prefix = trimmed
        .strip_suffix("/...")
        .or_else(|| trimmed.strip_suffix("/*"))
        .unwrap_or(trimmed);
    prefix.to_owned()
}

/// Consumes the slashes between two segments; `None` if there are none.
fn strip_separator(rest: &str) -> Option<&str> {
    let stripped = rest.trim_start_matches('/');
    (stripped.len() < rest.len()).then_some(stripped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(raw: &str) -> RoutePattern {
        RoutePattern::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    #[test]
    fn invalid_routes_are_rejected_with_the_reason() {
        use RouteError::*;
        let cases = [
            ("a/b", NoLeadingSlash),
            ("", NoLeadingSlash),
            ("/a b", Whitespace),
            ("/a\tb", Whitespace),
            ("/a?x", QueryOrFragment('?')),
            ("/a#top", QueryOrFragment('#')),
            ("/a//b", EmptySegment),
            ("//", EmptySegment),
            ("/a//", EmptySegment),
            ("/a/.../b", MisplacedWildcard("...".into())),
            ("/.../a", MisplacedWildcard("...".into())),
            ("/a/*/b", MisplacedWildcard("*".into())),
            ("/a/*rest", NamedWildcard("*rest".into())),
            ("/a/:", InvalidParam(String::new())),
            ("/a/:1st", InvalidParam("1st".into())),
            ("/a/:id.json", InvalidParam("id.json".into())),
            ("/a/:b-c", InvalidParam("b-c".into())),
            ("/:id/x/:id", DuplicateParam("id".into())),
            ("/.well-known/spin/health", Reserved),
            ("/.well-known/spin/...", Reserved),
        ];
        for (raw, expected) in cases {
            assert_eq!(RoutePattern::parse(raw), Err(expected), "{raw:?}");
        }
    }

    #[test]
    fn valid_routes_parse() {
        for raw in [
            "/",
            "/a",
            "/a/",
            "/a/b/c",
            "/...",
            "/*",
            "/a/...",
            "/a/.../",
            "/a/*",
            "/:id",
            "/users/:user_id/posts/:post/...",
            "/a...b",
            "/.well-known/spindle",
            "/.well-known/spin",
        ] {
            pattern(raw);
        }
    }

    #[test]
    fn component_routes_drop_only_the_wildcard() {
        let cases = [
            ("/api/...", "/api", true),
            ("/api/*", "/api", true),
            ("/api/.../", "/api", true),
            ("/...", "", true),
            ("/*", "", true),
            ("/api", "/api", false),
            ("/api/", "/api/", false),
            ("/", "/", false),
            ("/u/:id/...", "/u/:id", true),
        ];
        for (raw, component_route, wildcard) in cases {
            let p = pattern(raw);
            assert_eq!(p.raw(), raw);
            assert_eq!(p.component_route(), component_route, "{raw}");
            assert_eq!(p.is_wildcard(), wildcard, "{raw}");
        }
    }

    #[test]
    fn matching_follows_spin() {
        // (route, path, expected path_info or None for no match)
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("/a", "/a", Some("")),
            ("/a", "/a/", Some("")),
            ("/a", "/ab", None),
            ("/a", "/a/b", None),
            ("/a", "/", None),
            ("/a/", "/a", Some("")),
            ("/a/b", "/a//b", Some("")),
            ("/", "/", Some("")),
            ("/", "", Some("")),
            ("/", "/a", None),
            ("/a/...", "/a", Some("")),
            ("/a/...", "/a/", Some("/")),
            ("/a/...", "/a/b", Some("/b")),
            ("/a/...", "/a/b/c", Some("/b/c")),
            ("/a/...", "/a/b/c/", Some("/b/c/")),
            ("/a/...", "/a/b%20c", Some("/b%20c")),
            ("/a/...", "/ab", None),
            ("/a/...", "/ab/c", None),
            ("/a/...", "/", None),
            ("/a/*", "/a/b/c", Some("/b/c")),
            ("/a/*", "/ab", None),
            ("/...", "/", Some("/")),
            ("/...", "", Some("")),
            ("/...", "/x", Some("/x")),
            ("/...", "/x/y/", Some("/x/y/")),
            ("/a/b/...", "/a", None),
            ("/:id", "/", None),
            ("/:id", "/42", Some("")),
            ("/:id", "/42/x", None),
        ];
        for &(route, path, expected) in cases {
            let got = pattern(route).matches(path).map(|m| m.path_info);
            assert_eq!(got.as_deref(), expected, "{route} on {path}");
        }
    }

    #[test]
    fn params_capture_raw_segments() {
        let p = pattern("/users/:user/posts/:post/...");
        let m = p.matches("/users/al%20ice/posts/7/comments/3").unwrap();
        assert_eq!(
            m.params,
            vec![
                ("user".to_owned(), "al%20ice".to_owned()),
                ("post".to_owned(), "7".to_owned())
            ]
        );
        assert_eq!(m.path_info, "/comments/3");
        assert_eq!(p.matches("/users//posts/7"), None);
        assert_eq!(p.matches("/users/x/post/7"), None);

        let m = pattern("/:a/:b").matches("/1/2/").unwrap();
        assert_eq!(
            m.params,
            vec![("a".into(), "1".into()), ("b".into(), "2".into())]
        );
    }

    /// The pattern that `sort_by_key(specificity)` puts first among those
    /// matching `path`.
    fn winner<'a>(routes: &'a [RoutePattern], path: &str) -> Option<&'a str> {
        let mut sorted: Vec<&RoutePattern> = routes.iter().collect();
        sorted.sort_by_key(|p| p.specificity());
        sorted
            .into_iter()
            .find(|p| p.matches(path).is_some())
            .map(RoutePattern::raw)
    }

    #[test]
    fn the_most_specific_route_wins() {
        let routes: Vec<RoutePattern> = [
            "/...",
            "/one/...",
            "/one/two/...",
            "/one/two/three/...",
            "/one",
            "/:param",
            "/hello",
            "/users/:id",
            "/users/me",
            "/users/:id/...",
            "/:a/b",
            "/a/:b",
            "/",
        ]
        .into_iter()
        .map(pattern)
        .collect();
        let cases = [
            ("/one/two/three/four", "/one/two/three/..."),
            ("/one/two/x", "/one/two/..."),
            ("/one/x", "/one/..."),
            ("/one", "/one"),
            ("/one/", "/one"),
            ("/hello", "/hello"),
            ("/hey", "/:param"),
            ("/users/me", "/users/me"),
            ("/users/42", "/users/:id"),
            ("/users/42/x", "/users/:id/..."),
            ("/a/b", "/a/:b"),
            ("/x/b", "/:a/b"),
            ("/", "/"),
            ("/x/y/z", "/..."),
        ];
        for (path, expected) in cases {
            assert_eq!(winner(&routes, path), Some(expected), "{path}");
        }
    }

    #[test]
    fn duplicate_keys_identify_routes_matching_the_same_paths() {
        let key = |raw| pattern(raw).duplicate_key();
        assert_eq!(key("/a/*"), key("/a/..."));
        assert_eq!(key("/a/"), key("/a"));
        assert_eq!(key("/:x/b"), key("/:y/b"));
        assert_eq!(key("/"), key("/"));
        assert_ne!(key("/a"), key("/a/..."));
        assert_ne!(key("/a"), key("/b"));
        assert_ne!(key("/"), key("/..."));
    }
}
