//! An app directory: versions side by side, one of them `current`.
//!
//! ```text
//! DIR/current -> versions/<id>   the version `flint up --app-dir DIR` serves
//! DIR/versions/<id>/             complete, checked versions (never modified)
//! DIR/staging/                   work in progress; emptied by the next deploy
//! DIR/history                    ids in the order they were made current
//! DIR/failed                     ids that failed; never deployed again
//! DIR/lock                       held (flock) by a deploy or rollback
//! DIR/state/                     the app's state, shared by its versions
//! ```
//!
//! A deploy writes the new version under `staging/`, fsyncs every file and
//! directory, checks it, renames it into `versions/` and fsyncs that; only
//! then does it create a new symlink beside `current`, fsync `DIR`, rename
//! the symlink over `current` and fsync `DIR` again. Whatever instant a
//! power cut or `kill -9` hits, `current` names a complete version: the old
//! one until the final rename is durable, the new one after. A name in
//! `versions/` only ever appears by that rename and disappears by a rename
//! out to `staging/`, so every version there is complete.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

use crate::digests::is_id;
use crate::unpack::{self, Signer, Trust};
use crate::{Error, Limits, Result, fsutil};

const CURRENT: &str = "current";
const NEXT_LINK: &str = "current.new";
const VERSIONS: &str = "versions";
const STAGING: &str = "staging";
const HISTORY: &str = "history";
const FAILED: &str = "failed";
const LOCK: &str = "lock";
const STATE: &str = "state";

/// How many versions a deploy keeps unless told otherwise.
pub const DEFAULT_KEEP_VERSIONS: usize = 3;

/// The observable steps of a deploy, in order (`FLINT_DEPLOY_PAUSE_AT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Every file is written under `staging/`.
    Unpacked,
    /// Every file and directory of it is fsynced.
    Synced,
    /// It passed the same checks as `flint check`.
    Checked,
    /// It is renamed into `versions/` and that directory is fsynced.
    Renamed,
    /// The new symlink is beside `current` and `DIR` is fsynced.
    Linked,
    /// `current` is replaced and `DIR` is fsynced.
    Switched,
}

impl Step {
    pub const ALL: [Step; 6] = [
        Step::Unpacked,
        Step::Synced,
        Step::Checked,
        Step::Renamed,
        Step::Linked,
        Step::Switched,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::Unpacked => "unpacked",
            Step::Synced => "synced",
            Step::Checked => "checked",
            Step::Renamed => "renamed",
            Step::Linked => "linked",
            Step::Switched => "switched",
        }
    }

    pub fn parse(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a deploy needs beyond the bundle.
pub struct DeployOptions<'a> {
    pub trust: &'a Trust,
    pub keep_versions: usize,
    pub limits: Limits,
    /// Checks the unpacked version in the directory given exactly as `flint
    /// check` would (the binary passes its own app loader); `Err` holds the
    /// problems and refuses the version.
    pub check: &'a mut dyn FnMut(&Path) -> Result<(), String>,
    /// Called after each step.
    pub on_step: &'a mut dyn FnMut(Step),
}

/// What a deploy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    pub id: String,
    /// What was current before.
    pub previous: Option<String>,
    pub signer: Signer,
    /// The version was current already; nothing changed.
    pub already_current: bool,
    /// The version was in `versions/` already, so only `current` changed.
    pub reused: bool,
    /// Versions removed to keep `keep_versions`.
    pub pruned: Vec<String>,
}

/// An app directory (see the module documentation).
#[derive(Debug, Clone)]
pub struct AppDir {
    root: PathBuf,
}

impl AppDir {
    /// Opens `root`, creating it and its layout when missing.
    pub fn open(root: &Path) -> Result<AppDir> {
        let dir = AppDir {
            root: root.to_path_buf(),
        };
        let fresh = !root.exists();
        for path in [root.to_path_buf(), dir.path(VERSIONS), dir.path(STAGING)] {
            fs::create_dir_all(&path).map_err(Error::io("creating", &path))?;
        }
        if fresh {
            fsutil::sync_dir(root)?;
            fsutil::sync_dir(fsutil::parent(root))?;
        }
        Ok(dir)
    }

    /// Opens `root` if it exists, creating nothing: what `flint up
    /// --app-dir` needs.
    pub fn existing(root: &Path) -> Result<AppDir> {
        let dir = AppDir {
            root: root.to_path_buf(),
        };
        if !root.is_dir() {
            return Err(
                dir.fail("does not exist (create it with `flint deploy BUNDLE --app-dir DIR`)")
            );
        }
        Ok(dir)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the app's state lives for every version (`flint up --app-dir`'s
    /// default `--state-dir`).
    pub fn state_dir(&self) -> PathBuf {
        self.path(STATE)
    }

    pub fn version_dir(&self, id: &str) -> PathBuf {
        self.path(VERSIONS).join(id)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn fail(&self, reason: impl Into<String>) -> Error {
        Error::AppDir {
            path: self.root.clone(),
            reason: reason.into(),
        }
    }

    /// The version `current` points at.
    pub fn current(&self) -> Result<Option<String>> {
        let link = self.path(CURRENT);
        let target = match fs::read_link(&link) {
            Ok(target) => target,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("reading the symlink", &link)(e)),
        };
        let id = target
            .strip_prefix(VERSIONS)
            .ok()
            .and_then(|rest| rest.to_str())
            .filter(|id| is_id(id))
            .ok_or_else(|| {
                self.fail(format!(
                    "`current` points at `{}`, not at a version (`versions/<id>`)",
                    target.display()
                ))
            })?;
        Ok(Some(id.to_owned()))
    }

    /// The current version's directory, resolved now: a later switch does
    /// not change what this returned.
    pub fn current_dir(&self) -> Result<Option<PathBuf>> {
        Ok(self.current()?.map(|id| self.version_dir(&id)))
    }

    /// The version a rollback would return to: the most recent one made
    /// current before the current one, that still exists and has not failed.
    pub fn previous(&self) -> Result<Option<String>> {
        let current = self.current()?;
        let history = self.read_ids(HISTORY)?;
        let failed: BTreeSet<String> = self.read_ids(FAILED)?.into_iter().collect();
        let end = current
            .as_ref()
            .and_then(|c| history.iter().rposition(|h| h == c))
            .unwrap_or(history.len());
        Ok(history[..end]
            .iter()
            .rev()
            .find(|id| {
                Some(*id) != current.as_ref()
                    && !failed.contains(*id)
                    && self.version_dir(id).is_dir()
            })
            .cloned())
    }

    /// Every version present, oldest first (in the order they were made current).
    pub fn versions(&self) -> Result<Vec<String>> {
        let mut present = self.present()?;
        let mut ordered = Vec::new();
        for id in self.read_ids(HISTORY)? {
            if present.remove(&id) {
                ordered.push(id);
            }
        }
        // Versions never made current (a deploy stopped before it switched).
        let mut rest: Vec<String> = present.into_iter().collect();
        rest.append(&mut ordered);
        Ok(rest)
    }

    /// The ids in `failed`.
    pub fn failed(&self) -> Result<Vec<String>> {
        self.read_ids(FAILED)
    }

    /// Records `id` in `failed` (durably): it is never deployed again.
    pub fn mark_failed(&self, id: &str) -> Result<()> {
        if !is_id(id) {
            return Err(self.fail(format!("`{id}` is not a version id")));
        }
        let _lock = self.lock(true)?;
        let mut failed = self.read_ids(FAILED)?;
        if !failed.iter().any(|f| f == id) {
            failed.push(id.to_owned());
            self.write_ids(FAILED, &failed)?;
        }
        Ok(())
    }

    /// Makes [`previous`](Self::previous) current again and returns its id.
    pub fn rollback(&self) -> Result<String> {
        let _lock = self.lock(true)?;
        if self.current()?.is_none() {
            return Err(self.fail("has no current version to roll back from"));
        }
        let previous = self
            .previous()?
            .ok_or_else(|| self.fail("has no previous version to roll back to"))?;
        self.switch(&previous, &mut |_| {})?;
        Ok(previous)
    }

    /// Makes version `id` current (a running Flint going back to the
    /// version it kept serving when a newer one failed).
    pub fn switch_to(&self, id: &str) -> Result<()> {
        if !is_id(id) || !self.version_dir(id).is_dir() {
            return Err(self.fail(format!("has no version `{id}`")));
        }
        let _lock = self.lock(true)?;
        self.switch(id, &mut |_| {})
    }

    /// Removes what an interrupted deploy left in `staging/`, if no deploy
    /// is running now. Returns whether it could look.
    pub fn recover(&self) -> Result<bool> {
        match self.lock(false) {
            Ok(_lock) => {
                self.clean_staging()?;
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }

    /// Verifies `bundle`, unpacks it as a new version, checks it and makes
    /// it current (see the module documentation for the order of steps).
    pub fn deploy(&self, bundle: &Path, options: DeployOptions<'_>) -> Result<Deployed> {
        let _lock = self.lock(false)?;
        self.clean_staging()?;
        let head = unpack::read_head(bundle, &options.limits)?;
        let signer = head.check_trust(bundle, options.trust)?;
        let id = head.id.clone();
        if self.read_ids(FAILED)?.contains(&id) {
            return Err(self.fail(format!(
                "version {id} of `{}` is listed in `{}` (it failed before); refusing to deploy it",
                bundle.display(),
                self.path(FAILED).display()
            )));
        }
        let previous = self.current()?;
        let mut deployed = Deployed {
            id: id.clone(),
            previous: previous.clone(),
            signer,
            already_current: previous.as_deref() == Some(id.as_str()),
            reused: false,
            pruned: Vec::new(),
        };
        if deployed.already_current {
            return Ok(deployed);
        }
        let target = self.version_dir(&id);
        deployed.reused = target.is_dir();
        if !deployed.reused {
            let staging = self.path(STAGING).join(&id);
            fs::create_dir(&staging).map_err(Error::io("creating", &staging))?;
            let prepared = (|| {
                unpack::unpack(bundle, &head, &options.limits, Some(&staging))?;
                (options.on_step)(Step::Unpacked);
                fsutil::sync_tree(&staging)?;
                fsutil::sync_dir(&self.path(STAGING))?;
                (options.on_step)(Step::Synced);
                (options.check)(&staging).map_err(|message| Error::Check {
                    id: id.clone(),
                    message,
                })?;
                (options.on_step)(Step::Checked);
                Ok::<_, Error>(())
            })();
            if let Err(e) = prepared {
                let _ = fs::remove_dir_all(&staging);
                return Err(e);
            }
            fs::rename(&staging, &target).map_err(Error::io("renaming into place", &target))?;
            fsutil::sync_dir(&self.path(VERSIONS))?;
            fsutil::sync_dir(&self.path(STAGING))?;
        }
        let mut history = self.read_ids(HISTORY)?;
        history.retain(|h| h != &id);
        history.push(id.clone());
        self.write_ids(HISTORY, &history)?;
        if !deployed.reused {
            (options.on_step)(Step::Renamed);
        }
        self.switch(&id, options.on_step)?;
        deployed.pruned = self.prune(options.keep_versions)?;
        Ok(deployed)
    }

    /// Points `current` at `id`: a fresh symlink renamed over it, `DIR`
    /// fsynced before and after.
    fn switch(&self, id: &str, on_step: &mut dyn FnMut(Step)) -> Result<()> {
        let next = self.path(NEXT_LINK);
        match fs::remove_file(&next) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("removing", &next)(e)),
        }
        std::os::unix::fs::symlink(Path::new(VERSIONS).join(id), &next)
            .map_err(Error::io("creating the symlink", &next))?;
        fsutil::sync_dir(&self.root)?;
        on_step(Step::Linked);
        let current = self.path(CURRENT);
        fs::rename(&next, &current).map_err(Error::io("replacing", &current))?;
        fsutil::sync_dir(&self.root)?;
        on_step(Step::Switched);
        Ok(())
    }

    /// Keeps the `keep` versions most recently made current, and the
    /// current and previous ones whatever `keep` says; removes the rest.
    fn prune(&self, keep: usize) -> Result<Vec<String>> {
        let current = self.current()?;
        let previous = self.previous()?;
        let present = self.present()?;
        let history = self.read_ids(HISTORY)?;
        let mut kept: BTreeSet<String> = history
            .iter()
            .rev()
            .filter(|id| present.contains(*id))
            .take(keep)
            .cloned()
            .collect();
        kept.extend(current);
        kept.extend(previous);
        let mut pruned = Vec::new();
        for id in present.iter().filter(|id| !kept.contains(*id)) {
            // Out of `versions/` by one rename, so no partial version is
            // ever left there; the copy in `staging/` is garbage.
            let doomed = self.path(STAGING).join(format!("{id}.pruned"));
            fs::rename(self.version_dir(id), &doomed)
                .map_err(Error::io("removing", &self.version_dir(id)))?;
            fsutil::sync_dir(&self.path(VERSIONS))?;
            fs::remove_dir_all(&doomed).map_err(Error::io("removing", &doomed))?;
            pruned.push(id.clone());
        }
        let remaining: Vec<String> = history
            .iter()
            .filter(|id| present.contains(*id) && !pruned.contains(id))
            .cloned()
            .collect();
        if remaining != history {
            self.write_ids(HISTORY, &remaining)?;
        }
        Ok(pruned)
    }

    /// Version ids in `versions/` (other names are left alone).
    fn present(&self) -> Result<BTreeSet<String>> {
        let dir = self.path(VERSIONS);
        let mut ids = BTreeSet::new();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => return Err(Error::io("reading directory", &dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(Error::io("reading directory", &dir))?;
            if let Some(name) = entry.file_name().to_str()
                && is_id(name)
                && entry.path().is_dir()
            {
                ids.insert(name.to_owned());
            }
        }
        Ok(ids)
    }

    fn clean_staging(&self) -> Result<()> {
        let staging = self.path(STAGING);
        fs::create_dir_all(&staging).map_err(Error::io("creating", &staging))?;
        let mut removed = false;
        for entry in fs::read_dir(&staging).map_err(Error::io("reading directory", &staging))? {
            let path = entry
                .map_err(Error::io("reading directory", &staging))?
                .path();
            let gone = if path.is_dir() && !path.is_symlink() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            gone.map_err(Error::io("removing leftover", &path))?;
            removed = true;
        }
        let next = self.path(NEXT_LINK);
        if fs::symlink_metadata(&next).is_ok() {
            fs::remove_file(&next).map_err(Error::io("removing leftover", &next))?;
            removed = true;
        }
        if removed {
            fsutil::sync_dir(&staging)?;
            fsutil::sync_dir(&self.root)?;
        }
        Ok(())
    }

    /// The app directory's lock (flock, released when the process dies).
    fn lock(&self, wait: bool) -> Result<File> {
        let path = self.path(LOCK);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io("opening", &path))?;
        if wait {
            file.lock().map_err(Error::io("locking", &path))?;
        } else {
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(self.fail(format!(
                        "another deploy or rollback is running (it holds `{}`)",
                        path.display()
                    )));
                }
                Err(TryLockError::Error(e)) => return Err(Error::io("locking", &path)(e)),
            }
        }
        Ok(file)
    }

    /// Ids in `name`, one per line; anything else on a line is ignored.
    fn read_ids(&self, name: &str) -> Result<Vec<String>> {
        let path = self.path(name);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(text
                .lines()
                .map(str::trim)
                .filter(|l| is_id(l))
                .map(str::to_owned)
                .collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io("reading", &path)(e)),
        }
    }

    fn write_ids(&self, name: &str, ids: &[String]) -> Result<()> {
        let mut text = String::new();
        for id in ids {
            text.push_str(id);
            text.push('\n');
        }
        fsutil::write_atomic(&self.path(name), text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::keygen;
    use crate::{BundleSpec, Problem, SigningKey, bundle};

    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn scratch(label: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "flint-deploy-appdir-{label}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("mkdir");
        Scratch(dir)
    }

    /// Bundles a one-component app whose module is `version` (the check in
    /// these tests does not compile it).
    fn bundle_of(dir: &Path, version: &str, key: Option<&SigningKey>) -> PathBuf {
        let app = dir.join(format!("app-{version}"));
        fs::create_dir_all(&app).expect("mkdir");
        fs::write(app.join("m.wasm"), version).expect("module");
        let manifest = app.join("spin.toml");
        fs::write(
            &manifest,
            "spin_manifest_version = 2\n[application]\nname = \"t\"\n\
             [[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n\
             [component.c]\nsource = \"m.wasm\"\n",
        )
        .expect("manifest");
        let output = dir.join(format!("{version}.flint"));
        bundle(&BundleSpec {
            manifest: &manifest,
            runtime_config: None,
            signing_key: key,
            output: &output,
            limits: Limits::default(),
        })
        .expect("bundle");
        output
    }

    fn deploy_with(
        dir: &AppDir,
        bundle: &Path,
        trust: &Trust,
        keep: usize,
        check: &mut dyn FnMut(&Path) -> Result<(), String>,
    ) -> (Result<Deployed>, Vec<Step>) {
        let mut steps = Vec::new();
        let result = dir.deploy(
            bundle,
            DeployOptions {
                trust,
                keep_versions: keep,
                limits: Limits::default(),
                check,
                on_step: &mut |step| steps.push(step),
            },
        );
        (result, steps)
    }

    fn deploy(dir: &AppDir, bundle: &Path) -> Deployed {
        let (result, _) = deploy_with(dir, bundle, &Trust::Any, 10, &mut |version| {
            // The check sees the whole version, in staging.
            assert!(version.join("spin.toml").is_file());
            assert!(version.join("components/m.wasm").is_file());
            Ok(())
        });
        result.expect("deploy")
    }

    #[test]
    fn versions_switch_roll_back_and_refuse_failed_ones() {
        let tmp = scratch("switch");
        let dir = AppDir::open(&tmp.0.join("app")).expect("open");
        assert_eq!(dir.current().expect("current"), None);
        let bundles: Vec<PathBuf> = ["a", "b", "c"]
            .iter()
            .map(|v| bundle_of(&tmp.0, v, None))
            .collect();
        let mut ids = Vec::new();
        for (i, bundle) in bundles.iter().enumerate() {
            let (result, steps) = deploy_with(&dir, bundle, &Trust::Any, 10, &mut |_| Ok(()));
            let deployed = result.expect("deploy");
            assert_eq!(steps, Step::ALL, "a fresh version goes through every step");
            assert_eq!(deployed.previous, ids.last().cloned(), "deploy {i}");
            ids.push(deployed.id);
        }
        assert_eq!(dir.versions().expect("versions"), ids);
        assert_eq!(dir.current().expect("current").as_ref(), Some(&ids[2]));
        assert_eq!(dir.previous().expect("previous").as_ref(), Some(&ids[1]));
        assert_eq!(
            fs::read_to_string(
                dir.current_dir()
                    .expect("dir")
                    .expect("some")
                    .join("components/m.wasm")
            )
            .expect("module"),
            "c"
        );

        // Deploying the current version again changes nothing.
        assert!(deploy(&dir, &bundles[2]).already_current);

        // Roll back from c (marked failed first, as a watchdog would).
        dir.mark_failed(&ids[2]).expect("mark");
        assert_eq!(dir.failed().expect("failed"), [ids[2].clone()]);
        assert_eq!(dir.rollback().expect("rollback"), ids[1]);
        assert_eq!(dir.current().expect("current").as_ref(), Some(&ids[1]));
        let (refused, _) = deploy_with(&dir, &bundles[2], &Trust::Any, 10, &mut |_| Ok(()));
        let err = refused.expect_err("failed versions are refused");
        assert!(err.to_string().contains("failed"), "{err}");
        assert_eq!(dir.rollback().expect("rollback"), ids[0]);
        let err = dir.rollback().expect_err("nothing before a");
        assert!(err.to_string().contains("no previous version"), "{err}");

        // An existing version is switched to without unpacking again.
        let (result, steps) = deploy_with(&dir, &bundles[1], &Trust::Any, 10, &mut |_| Ok(()));
        assert!(result.expect("deploy").reused);
        assert_eq!(steps, [Step::Linked, Step::Switched]);
        assert_eq!(dir.previous().expect("previous").as_ref(), Some(&ids[0]));
        assert!(dir.mark_failed("not-an-id").is_err());
    }

    #[test]
    fn a_version_failing_the_check_is_not_deployed() {
        let tmp = scratch("check");
        let dir = AppDir::open(&tmp.0.join("app")).expect("open");
        let good = deploy(&dir, &bundle_of(&tmp.0, "good", None)).id;
        let bad = bundle_of(&tmp.0, "bad", None);
        let (result, steps) = deploy_with(&dir, &bad, &Trust::Any, 10, &mut |_| {
            Err("component `c`: not a module".into())
        });
        let err = result.expect_err("check fails");
        assert!(matches!(err, Error::Check { .. }), "{err}");
        assert!(err.to_string().contains("not a module"), "{err}");
        assert_eq!(steps, [Step::Unpacked, Step::Synced]);
        assert_eq!(dir.current().expect("current"), Some(good.clone()));
        assert_eq!(dir.versions().expect("versions"), [good]);
        assert!(
            fs::read_dir(dir.path(STAGING))
                .expect("staging")
                .next()
                .is_none()
        );
    }

    #[test]
    fn trust_is_enforced_before_anything_is_written() {
        let tmp = scratch("trust");
        let (private, _, trusted) = keygen(&tmp.0.join("release")).expect("keygen");
        let (stranger, _, _) = keygen(&tmp.0.join("stranger")).expect("keygen");
        let key = SigningKey::load(&private).expect("key");
        let other = SigningKey::load(&stranger).expect("key");
        let dir = AppDir::open(&tmp.0.join("app")).expect("open");
        let trust = Trust::Keys(vec![trusted]);
        let cases = [
            (bundle_of(&tmp.0, "unsigned", None), "unsigned"),
            (bundle_of(&tmp.0, "foreign", Some(&other)), "unknown"),
        ];
        for (bundle, what) in cases {
            let (result, steps) = deploy_with(&dir, &bundle, &trust, 10, &mut |_| Ok(()));
            let err = result.expect_err(what);
            match (what, err.problem()) {
                ("unsigned", Some(Problem::Unsigned))
                | ("unknown", Some(Problem::UnknownKey { .. })) => {}
                _ => panic!("{what}: {err}"),
            }
            assert!(steps.is_empty());
        }
        assert_eq!(dir.versions().expect("versions"), Vec::<String>::new());
        let signed = bundle_of(&tmp.0, "signed", Some(&key));
        let (result, _) = deploy_with(&dir, &signed, &trust, 10, &mut |_| Ok(()));
        let deployed = result.expect("trusted");
        assert!(matches!(deployed.signer, Signer::Trusted { ref name, .. } if name == "release"));
    }

    #[test]
    fn pruning_keeps_current_and_previous_whatever_keep_says() {
        let tmp = scratch("prune");
        let dir = AppDir::open(&tmp.0.join("app")).expect("open");
        let mut ids = Vec::new();
        for v in ["1", "2", "3", "4"] {
            let bundle = bundle_of(&tmp.0, v, None);
            let (result, _) = deploy_with(&dir, &bundle, &Trust::Any, 0, &mut |_| Ok(()));
            ids.push(result.expect("deploy").id);
        }
        assert_eq!(dir.versions().expect("versions"), ids[2..]);
        // Leftovers of a killed deploy go on the next one.
        fs::create_dir_all(dir.path(STAGING).join("deadbeefdeadbeef/x")).expect("mkdir");
        std::os::unix::fs::symlink("versions/x", dir.path(NEXT_LINK)).expect("link");
        assert!(dir.recover().expect("recover"));
        assert!(
            fs::read_dir(dir.path(STAGING))
                .expect("staging")
                .next()
                .is_none()
        );
        assert!(fs::symlink_metadata(dir.path(NEXT_LINK)).is_err());
    }
}
