//! A component's `files`, turned into read-only WASI preopens.
//!
//! A `{ source, destination }` directory is preopened where it is. Glob
//! patterns and single-file placements name individual files, which WASI cannot
//! preopen, so they are hard-linked (or copied) into a per-component staging
//! directory that is preopened at `/`, as Spin does with its temporary copy.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use flint_config::{Component, FilesMount};

use super::Preopen;

/// The preopens for `component`. Without a staging directory (`flint check`)
/// files are resolved and checked but not staged.
pub fn preopens(
    manifest_dir: &Path,
    component: &Component,
    staging: Option<&Path>,
) -> anyhow::Result<Vec<Preopen>> {
    let mut preopens = Vec::new();
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    for mount in &component.files {
        match mount {
            FilesMount::Placement {
                source,
                destination,
                ..
            } => {
                let host = manifest_dir.join(source);
                let meta =
                    std::fs::metadata(&host).with_context(|| format!("`{}`", host.display()))?;
                if meta.is_dir() {
                    let dir = Dir::open_ambient_dir(&host, ambient_authority())
                        .with_context(|| format!("cannot open `{}`", host.display()))?;
                    preopens.push(Preopen {
                        dir: Arc::new(dir),
                        guest_path: destination.clone(),
                    });
                } else {
                    staged.push((host, PathBuf::from(destination.trim_start_matches('/'))));
                }
            }
            FilesMount::Pattern { glob, .. } => {
                for relative in matching_files(manifest_dir, glob, &component.exclude_files)? {
                    staged.push((manifest_dir.join(&relative), relative));
                }
            }
        }
    }
    if let (Some(staging), false) = (staging, staged.is_empty()) {
        let root = staging.join(&component.id);
        stage(&root, &staged)?;
        let dir = Dir::open_ambient_dir(&root, ambient_authority())
            .with_context(|| format!("cannot open `{}`", root.display()))?;
        preopens.push(Preopen {
            dir: Arc::new(dir),
            guest_path: "/".into(),
        });
    }
    Ok(preopens)
}

fn stage(root: &Path, files: &[(PathBuf, PathBuf)]) -> anyhow::Result<()> {
    // Start clean so that files removed from the app disappear from the guest.
    if root.exists() {
        std::fs::remove_dir_all(root)
            .with_context(|| format!("cannot clear `{}`", root.display()))?;
    }
    for (host, guest) in files {
        let target = root.join(guest);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create `{}`", parent.display()))?;
        }
        if std::fs::hard_link(host, &target).is_err() {
            std::fs::copy(host, &target).with_context(|| {
                format!("cannot copy `{}` to `{}`", host.display(), target.display())
            })?;
        }
    }
    Ok(())
}

/// Files under `base` whose relative path matches `pattern` and no `exclude` glob.
fn matching_files(base: &Path, pattern: &str, exclude: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    if pattern.split('/').any(|s| s == "..") {
        bail!("files pattern `{pattern}` may not leave the app directory");
    }
    // Walk only below the pattern's literal prefix, not the whole app directory.
    let segments: Vec<&str> = pattern.split('/').collect();
    let literal = segments
        .iter()
        .take_while(|s| !s.contains(['*', '?', '[']))
        .count()
        // The last segment names files, not a directory to start from.
        .min(segments.len() - 1);
    let start = base.join(segments[..literal].join("/"));
    let mut found = Vec::new();
    let mut pending = vec![start];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry
                .with_context(|| format!("reading `{}`", dir.display()))?
                .path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let Ok(relative) = path.strip_prefix(base) else {
                continue;
            };
            let rel = relative.to_string_lossy();
            if glob_match(pattern, &rel) && !exclude.iter().any(|x| glob_match(x, &rel)) {
                found.push(relative.to_path_buf());
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Matches `/`-separated paths: `**` spans any number of segments, `*` and `?`
/// stay within one segment.
fn glob_match(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern.trim_start_matches("./").split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    match_segments(&pattern, &path)
}

fn match_segments(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| match_segments(rest, &path[skip..])),
        Some((seg, rest)) => path.split_first().is_some_and(|(p, path_rest)| {
            match_segment(seg.as_bytes(), p.as_bytes()) && match_segments(rest, path_rest)
        }),
    }
}

fn match_segment(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| match_segment(rest, &name[skip..])),
        Some((b'?', rest)) => !name.is_empty() && match_segment(rest, &name[1..]),
        Some((c, rest)) => name.first() == Some(c) && match_segment(rest, &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let cases = [
            ("static/*.html", "static/index.html", true),
            ("static/*.html", "static/sub/index.html", false),
            ("static/**/*.html", "static/sub/deep/x.html", true),
            ("static/**/*.html", "static/x.html", true),
            ("**/*", "a/b/c", true),
            ("a?c.txt", "abc.txt", true),
            ("a?c.txt", "ac.txt", false),
            ("exact.txt", "exact.txt", true),
        ];
        for (pattern, path, expected) in cases {
            assert_eq!(glob_match(pattern, path), expected, "{pattern} vs {path}");
        }
    }

    #[test]
    fn matching_files_walks_and_excludes() {
        let dir = std::env::temp_dir().join(format!("flint-files-{}", std::process::id()));
        for f in [
            "assets/a.txt",
            "assets/sub/b.txt",
            "assets/sub/c.bin",
            "other/d.txt",
        ] {
            let p = dir.join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, f).expect("write");
        }
        let found =
            matching_files(&dir, "assets/**/*.txt", &["assets/sub/**".into()]).expect("walk");
        assert_eq!(found, [PathBuf::from("assets/a.txt")]);
        let all = matching_files(&dir, "**/*.txt", &[]).expect("walk");
        assert_eq!(all.len(), 3);
        let exact = matching_files(&dir, "other/d.txt", &[]).expect("walk");
        assert_eq!(exact, [PathBuf::from("other/d.txt")]);
        assert!(matching_files(&dir, "../x", &[]).is_err());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
