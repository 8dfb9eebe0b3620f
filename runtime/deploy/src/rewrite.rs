//! The bundle's `spin.toml`: the original text with each component's
//! `source` and `files` values replaced by paths inside the bundle.
//!
//! Only those values change (found by their spans, matched to the parsed
//! manifest's components by where their `source` is), so comments, layout and
//! every other setting stay as written. Each `files` entry becomes explicit
//! `{ source, destination }` placements: a glob becomes one placement per
//! file it matched, so the unpacked app mounts exactly what the original did,
//! whatever else lies beside it.

use std::collections::BTreeMap;
use std::ops::Range;

use flint_config::{Location, Manifest};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Where one component's module and files are inside the bundle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ComponentLayout {
    pub source: String,
    pub files: Vec<Mount>,
}

/// A `{ source, destination }` placement, `source` inside the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub source: String,
    pub destination: String,
}

const NOTE: &str = "# Rewritten by `flint bundle`: every component's `source` and `files` point inside\n\
                    # this bundle (a `files` glob became one placement per file it matched).\n";

/// The rewritten manifest text.
pub(crate) fn rewrite(
    text: &str,
    manifest: &Manifest,
    layouts: &BTreeMap<String, ComponentLayout>,
) -> Result<String, String> {
    let doc = DeTable::parse(text).map_err(|e| format!("cannot re-read it: {e}"))?;
    let mut found: BTreeMap<Location, (Range<usize>, Option<Range<usize>>)> = BTreeMap::new();
    for (source, files) in component_tables(doc.get_ref()) {
        let location = Location::from_offset(text, source.span().start);
        found.insert(location, (source.span(), files.map(Spanned::span)));
    }

    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    for (id, component) in &manifest.components {
        let layout = layouts
            .get(id)
            .ok_or_else(|| format!("component `{id}` was not laid out"))?;
        let Some((source, files)) = found.get(&component.source_location) else {
            return Err(format!(
                "component `{id}`: cannot find its `source` (line {}) to rewrite",
                component.source_location
            ));
        };
        edits.push((source.clone(), toml_string(&layout.source)));
        match files {
            Some(span) => {
                let written = &text[span.clone()];
                if !written.starts_with('[') || written.starts_with("[[") {
                    return Err(format!(
                        "component `{id}`: `files` is written as `[[...files]]` tables, which cannot be \
                         rewritten in place; write it as an inline array (`files = [...]`)"
                    ));
                }
                edits.push((span.clone(), render_files(&layout.files)));
            }
            None if !component.files.is_empty() => {
                return Err(format!(
                    "component `{id}`: cannot find its `files` to rewrite"
                ));
            }
            None => {}
        }
    }
    edits.sort_by_key(|(span, _)| span.start);
    let mut out = String::with_capacity(text.len() + 1024);
    out.push_str(NOTE);
    let mut at = 0;
    for (span, replacement) in edits {
        if span.start < at || span.end > text.len() {
            return Err("overlapping values in the manifest".into());
        }
        out.push_str(&text[at..span.start]);
        out.push_str(&replacement);
        at = span.end;
    }
    out.push_str(&text[at..]);
    Ok(out)
}

type Value<'a> = Spanned<DeValue<'a>>;

/// `(source, files)` of every component table: `[component.<id>]` and the
/// inline ones in triggers.
fn component_tables<'a>(doc: &'a DeTable<'a>) -> Vec<(&'a Value<'a>, Option<&'a Value<'a>>)> {
    let mut out = Vec::new();
    let mut take = |table: &'a DeTable<'a>| {
        if let Some(source) = get(table, "source") {
            out.push((source, get(table, "files")));
        }
    };
    if let Some(DeValue::Table(components)) = get(doc, "component").map(Spanned::get_ref) {
        for (_, component) in components.iter() {
            if let DeValue::Table(table) = component.get_ref() {
                take(table);
            }
        }
    }
    if let Some(DeValue::Table(triggers)) = get(doc, "trigger").map(Spanned::get_ref) {
        for (_, list) in triggers.iter() {
            let DeValue::Array(list) = list.get_ref() else {
                continue;
            };
            for trigger in list.iter() {
                if let DeValue::Table(trigger) = trigger.get_ref()
                    && let Some(DeValue::Table(inline)) =
                        get(trigger, "component").map(Spanned::get_ref)
                {
                    take(inline);
                }
            }
        }
    }
    out
}

fn get<'a>(table: &'a DeTable<'a>, key: &str) -> Option<&'a Value<'a>> {
    table
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == key)
        .map(|(_, v)| v)
}

fn render_files(mounts: &[Mount]) -> String {
    if mounts.is_empty() {
        return "[]".into();
    }
    let mut out = String::from("[\n");
    for mount in mounts {
        out.push_str(&format!(
            "    {{ source = {}, destination = {} }},\n",
            toml_string(&mount.source),
            toml_string(&mount.destination)
        ));
    }
    out.push(']');
    out
}

/// A TOML basic string holding `s`.
pub(crate) fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const MANIFEST: &str = r#"spin_manifest_version = 2
[application]
name = "x"
# A comment that must survive.
[[trigger.http]]
route = "/inline"
component = { source = "../a.wasm", files = ["x/*"] }
[[trigger.http]]
route = "/c"
component = "c"
[component.c]
source = 'c.wasm' # trailing
files = [ "a", { source = "s", destination = "/" } ]
exclude_files = ["a/b"]
"#;

    #[test]
    fn sources_and_files_are_replaced_and_the_rest_kept() {
        let manifest =
            flint_config::parse_manifest(MANIFEST, Path::new("app/spin.toml")).expect("manifest");
        let mut layouts = BTreeMap::new();
        for (id, component) in &manifest.components {
            let files = if id == "c" {
                vec![
                    Mount {
                        source: "files/a/1.txt".into(),
                        destination: "/a/1.txt".into(),
                    },
                    Mount {
                        source: "files/s".into(),
                        destination: "/".into(),
                    },
                ]
            } else {
                assert_eq!(component.files.len(), 1);
                Vec::new()
            };
            layouts.insert(
                id.clone(),
                ComponentLayout {
                    source: format!("components/{id}.wasm"),
                    files,
                },
            );
        }
        let out = rewrite(MANIFEST, &manifest, &layouts).expect("rewrite");
        assert!(out.contains("# A comment that must survive."), "{out}");
        assert!(
            out.contains("source = \"components/c.wasm\" # trailing"),
            "{out}"
        );
        let again = flint_config::parse_manifest(&out, Path::new("b/spin.toml")).expect("reparse");
        for (id, component) in &again.components {
            assert_eq!(
                component.source,
                Path::new("b").join(&layouts[id].source),
                "{id}"
            );
            let mounts: Vec<Mount> = component
                .files
                .iter()
                .map(|m| match m {
                    flint_config::FilesMount::Placement {
                        source,
                        destination,
                        ..
                    } => Mount {
                        source: source.clone(),
                        destination: destination.clone(),
                    },
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(mounts, layouts[id].files, "{id}");
        }
    }

    #[test]
    fn array_of_tables_files_are_refused_with_the_fix() {
        let text = "spin_manifest_version = 2\n[application]\nname = \"x\"\n\
                    [[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n\
                    [component.c]\nsource = \"c.wasm\"\n\
                    [[component.c.files]]\nsource = \"s\"\ndestination = \"/\"\n";
        let manifest = flint_config::parse_manifest(text, Path::new("spin.toml")).expect("ok");
        let layouts = BTreeMap::from([("c".to_owned(), ComponentLayout::default())]);
        let err = rewrite(text, &manifest, &layouts).expect_err("refused");
        assert!(err.contains("inline array"), "{err}");
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(toml_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000A\"");
    }
}
