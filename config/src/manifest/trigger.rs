//! `[[trigger.http]]` entries: routes, handlers, and the ids Spin generates
//! for inline components.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use toml::Spanned;

use super::component;
use super::schema::{
    RawComponent, RawExecutor, RawHttpTrigger, RawPrivateRoute, RawStaticResponse, StringOrTable,
};
use super::trigger_ids::TriggerIds;
use super::validate::Context;
use super::{Component, Executor, HttpTrigger, StaticResponse};
use crate::diagnostic::Location;
use crate::ids;
use crate::route::{Route, RoutePattern};
use crate::source::Problems;

/// Spin's default WAGI argv.
const WAGI_DEFAULT_ARGV: &str = "${SCRIPT_NAME} ${ARGS}";

pub(super) fn http_triggers(
    raw: Vec<Spanned<RawHttpTrigger>>,
    trigger_ids: &mut TriggerIds,
    components: &mut BTreeMap<String, Component>,
    context: &Context<'_>,
    problems: &mut Problems<'_>,
) -> Vec<HttpTrigger> {
    let mut references = Vec::new();
    let mut routes = BTreeMap::new();
    let mut triggers = Vec::with_capacity(raw.len());

    for trigger in raw {
        let span = trigger.span();
        let trigger = trigger.into_inner();
        let named = match trigger.component.as_ref().map(Spanned::get_ref) {
            Some(StringOrTable::String(component)) => Some(component.as_str()),
            _ => None,
        };
        let id = trigger_ids.assign("http", trigger.id.as_ref(), named);
        let route_location = problems.source().location(&trigger.route.span());
        let route = route(&trigger.route, problems);
        if let Route::Pattern(pattern) = &route {
            check_duplicate(pattern, &trigger.route, &mut routes, problems);
        }

        let component_location = trigger
            .component
            .as_ref()
            .map(|component| problems.source().location(&component.span()));
        let component = trigger.component.map(|spanned| {
            let span = spanned.span();
            match spanned.into_inner() {
                StringOrTable::String(name) => {
                    references.push(Spanned::new(span, name.clone()));
                    name
                }
                StringOrTable::Table(inline) => {
                    let location = problems.source().location(&span);
                    inline_component(&id, location, *inline, components, context, problems)
                }
            }
        });
        let static_response = trigger
            .static_response
            .map(|response| static_response(response, problems));
        let message = match (&component, &static_response) {
            (None, None) => Some("needs a `component` or a `static_response`"),
            (Some(_), Some(_)) => Some("has both `component` and `static_response`; keep one"),
            _ => None,
        };
        if let Some(message) = message {
            problems.report(&span, format!("trigger `{id}` {message}"));
        }

        triggers.push(HttpTrigger {
            id,
            route,
            route_location,
            component,
            component_location,
            executor: executor(trigger.executor),
            static_response,
        });
    }

    // Checked last: a trigger may name an inline component moved out of a
    // later trigger, as Spin normalizes before it validates.
    for reference in references {
        component::check_reference(&reference, components, problems);
    }
    triggers
}

/// Moves an inline component into `components` under Spin's generated id:
/// `<trigger id>-component` when that is a valid, free id, else the first
/// free `inline-component<n>`.
fn inline_component(
    trigger_id: &str,
    location: Location,
    raw: RawComponent,
    components: &mut BTreeMap<String, Component>,
    context: &Context<'_>,
    problems: &mut Problems<'_>,
) -> String {
    let natural = format!("{trigger_id}-component");
    let id = if ids::check_kebab(&natural).is_ok() && !components.contains_key(&natural) {
        natural
    } else {
        (1..)
            .map(|n| format!("inline-component{n}"))
            .find(|id| !components.contains_key(id))
            .unwrap_or_default()
    };
    let component = component::component(id.clone(), location, raw, context, problems);
    components.insert(id.clone(), component);
    id
}

fn route(raw: &Spanned<StringOrTable<RawPrivateRoute>>, problems: &mut Problems<'_>) -> Route {
    match raw.get_ref() {
        StringOrTable::String(pattern) => match RoutePattern::parse(pattern) {
            Ok(pattern) => Route::Pattern(pattern),
            Err(error) => {
                problems.report(&raw.span(), format!("invalid route `{pattern}`: {error}"));
                // A placeholder: the manifest is rejected anyway.
                Route::Private
            }
        },
        StringOrTable::Table(RawPrivateRoute { private: true }) => Route::Private,
        StringOrTable::Table(RawPrivateRoute { private: false }) => {
            problems.report(
                &raw.span(),
                "a route must be a string pattern or `{ private = true }`",
            );
            Route::Private
        }
    }
}

/// Two routes that match the same paths leave the second unreachable. Spin
/// warns and lets the last one win; Flint makes it an error.
fn check_duplicate(
    pattern: &RoutePattern,
    raw: &Spanned<StringOrTable<RawPrivateRoute>>,
    seen: &mut BTreeMap<String, (String, usize)>,
    problems: &mut Problems<'_>,
) {
    let line = problems.source().location(&raw.span()).line;
    let (first, first_line) = match seen.entry(pattern.duplicate_key()) {
        Entry::Vacant(entry) => {
            entry.insert((pattern.raw().to_owned(), line));
            return;
        }
        Entry::Occupied(entry) => entry.into_mut(),
    };
    let message = if first == pattern.raw() {
        format!("duplicate route `{first}` (also at line {first_line})")
    } else {
        format!(
            "duplicate route `{}`: `{first}` at line {first_line} matches the same paths",
            pattern.raw()
        )
    };
    problems.report(&raw.span(), message);
}

fn executor(raw: Option<RawExecutor>) -> Executor {
    match raw {
        None | Some(RawExecutor::Http) => Executor::Spin,
        Some(RawExecutor::Wagi(wagi)) => Executor::Wagi {
            argv: wagi.argv.unwrap_or_else(|| WAGI_DEFAULT_ARGV.to_owned()),
            entrypoint: wagi.entrypoint,
        },
    }
}

fn static_response(raw: Spanned<RawStaticResponse>, problems: &mut Problems<'_>) -> StaticResponse {
    let raw = raw.into_inner();
    let status_code = raw.status_code.map_or(200, |status| {
        if !(100..=599).contains(status.get_ref()) {
            problems.report(
                &status.span(),
                format!(
                    "`status_code` {} is not an HTTP status (100-599)",
                    status.get_ref()
                ),
            );
        }
        status.into_inner()
    });
    for (name, value) in &raw.headers {
        if !is_header_name(name.get_ref()) {
            problems.report(
                &name.span(),
                format!("`{}` is not a valid header name", name.get_ref()),
            );
        }
        if value.get_ref().chars().any(|c| c.is_control() && c != '\t') {
            problems.report(
                &value.span(),
                format!(
                    "the value of header `{}` contains a control character",
                    name.get_ref()
                ),
            );
        }
    }
    StaticResponse {
        status_code,
        headers: raw
            .headers
            .into_iter()
            .map(|(name, value)| (name.into_inner(), value.into_inner()))
            .collect(),
        body: raw.body,
    }
}

/// An HTTP `token` (RFC 9110 section 5.6.2).
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
