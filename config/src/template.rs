//! `{{ variable }}` templates, as Spin uses them in component `variables` and
//! `allowed_outbound_hosts`.
//!
//! The syntax follows Spin's `spin-expressions` crate: `{{` opens an
//! expression that runs to the next `}}`, surrounding spaces are ignored, and
//! everything else is literal text (a lone `}}` included). Spin resolves the
//! expression as an application variable name, so Flint requires one.

use crate::ids;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed `{{{{` in template")]
    Unclosed,
    #[error("`{{{{ {0} }}}}` does not name a variable: {1}")]
    InvalidName(String, String),
    #[error("variable `{0}` has no value")]
    Undefined(String),
}

enum Part<'a> {
    Literal(&'a str),
    Variable(&'a str),
}

fn parse(template: &str) -> Result<Vec<Part<'_>>, TemplateError> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let (literal, after_open) = (&rest[..open], &rest[open + 2..]);
        let (expression, after_close) =
            after_open.split_once("}}").ok_or(TemplateError::Unclosed)?;
        let name = expression.trim();
        ids::check_lower_snake(name)
            .map_err(|why| TemplateError::InvalidName(name.to_owned(), why))?;
        parts.push(Part::Literal(literal));
        parts.push(Part::Variable(name));
        rest = after_close;
    }
    parts.push(Part::Literal(rest));
    Ok(parts)
}

/// The variable names a template refers to, in order of appearance.
pub fn template_names(template: &str) -> Result<Vec<&str>, TemplateError> {
    Ok(parse(template)?
        .into_iter()
        .filter_map(|part| match part {
            Part::Variable(name) => Some(name),
            Part::Literal(_) => None,
        })
        .collect())
}

/// Replaces every `{{ name }}` with `lookup(name)`.
pub fn expand_template(
    template: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, TemplateError> {
    let mut expanded = String::with_capacity(template.len());
    for part in parse(template)? {
        match part {
            Part::Literal(text) => expanded.push_str(text),
            Part::Variable(name) => {
                let value =
                    lookup(name).ok_or_else(|| TemplateError::Undefined(name.to_owned()))?;
                expanded.push_str(&value);
            }
        }
    }
    Ok(expanded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "host" => Some("example.com".to_owned()),
            "port" => Some("8080".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn names_are_found_with_or_without_spaces() {
        assert_eq!(template_names("plain"), Ok(vec![]));
        assert_eq!(template_names(""), Ok(vec![]));
        assert_eq!(
            template_names("https://{{ host }}:{{port}}/{{  host  }}"),
            Ok(vec!["host", "port", "host"])
        );
    }

    #[test]
    fn expansion_replaces_every_reference() {
        assert_eq!(
            expand_template("https://{{ host }}:{{port}}/v1", lookup).as_deref(),
            Ok("https://example.com:8080/v1")
        );
        assert_eq!(
            expand_template("{{host}}{{host}}", lookup).as_deref(),
            Ok("example.comexample.com")
        );
        // A lone `}}` is literal text, as in Spin.
        assert_eq!(expand_template("a }} b", lookup).as_deref(), Ok("a }} b"));
    }

    #[test]
    fn malformed_templates_are_errors() {
        assert_eq!(
            template_names("https://{{ host }}/{{ port"),
            Err(TemplateError::Unclosed)
        );
        assert_eq!(expand_template("{{", lookup), Err(TemplateError::Unclosed));
        assert!(matches!(
            template_names("{{ }}"),
            Err(TemplateError::InvalidName(name, _)) if name.is_empty()
        ));
        assert!(matches!(
            template_names("{{ Host }}"),
            Err(TemplateError::InvalidName(name, _)) if name == "Host"
        ));
        assert_eq!(
            expand_template("{{ missing }}", lookup),
            Err(TemplateError::Undefined("missing".to_owned()))
        );
        assert_eq!(
            TemplateError::Unclosed.to_string(),
            "unclosed `{{` in template"
        );
    }
}
