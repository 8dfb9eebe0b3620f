//! One instance's view of its operating system, independent of the WASI
//! version that presents it: environment, arguments, standard streams,
//! preopened directories, its clocks and the invocation's deadline. WASI 0.2
//! (`wasi:cli`, `wasi:clocks`, `wasi:filesystem`) and WASI preview 1
//! (`super::preview1`, whose descriptor table lives here too) both work on it.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Preopen;
use super::fs::FileLimit;
use super::preview1::FdTable;
use super::stdio::{GuestLog, Sink};

pub struct WasiState {
    /// `wasi:cli/environment.get-environment`, in order (the executor puts
    /// configured variables where they win over CGI ones).
    pub env: Vec<(String, String)>,
    /// `get-arguments`: argv, program name first.
    pub args: Vec<String>,
    pub stdout: Sink,
    pub stderr: Sink,
    /// The component's `files`, each a directory the guest sees at its `guest_path`.
    pub preopens: Vec<Preopen>,
    /// When the invocation must end: no wait on a clock may pass it. `None`:
    /// the executor runs this instance without a deadline.
    pub deadline: Option<Instant>,
    /// Host file descriptors the guest holds open (bounded).
    pub(crate) files: FileLimit,
    /// Preview 1's file descriptors, made from the fields above on first use.
    pub(crate) fds: FdTable,
    stdin: Vec<u8>,
    stdin_pos: usize,
    /// Zero of the instance's monotonic clock.
    epoch: Instant,
    insecure_seed: Option<(u64, u64)>,
    /// Keys for `metadata-hash`, so that hashes do not reveal inode numbers.
    hash_keys: RandomState,
}

impl WasiState {
    /// No environment, arguments, input or files; stdout and stderr go to the
    /// log under `component`.
    pub fn new(component: Arc<str>) -> Self {
        Self {
            env: Vec::new(),
            args: Vec::new(),
            stdout: Sink::Log(GuestLog::new(component.clone())),
            stderr: Sink::Log(GuestLog::new(component)),
            preopens: Vec::new(),
            deadline: None,
            files: FileLimit::default(),
            fds: FdTable::default(),
            stdin: Vec::new(),
            stdin_pos: 0,
            epoch: Instant::now(),
            insecure_seed: None,
            hash_keys: RandomState::new(),
        }
    }

    /// What the guest reads from stdin (a WAGI request body, an MQTT payload).
    pub fn set_stdin(&mut self, bytes: Vec<u8>) {
        self.stdin = bytes;
        self.stdin_pos = 0;
    }

    /// Up to `max` bytes of stdin; `None` once it is all read. Every stdin
    /// stream shares the one position.
    pub(crate) fn read_stdin(&mut self, max: usize) -> Option<Vec<u8>> {
        let rest = self.stdin.get(self.stdin_pos..).unwrap_or_default();
        if rest.is_empty() {
            return None;
        }
        let n = rest.len().min(max);
        let bytes = rest[..n].to_vec();
        self.stdin_pos += n;
        Some(bytes)
    }

    /// Bytes of stdin not yet read.
    pub(crate) fn stdin_remaining(&self) -> usize {
        self.stdin.len().saturating_sub(self.stdin_pos)
    }

    /// The instance's monotonic clock in nanoseconds.
    pub(crate) fn monotonic_now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// How long until the monotonic clock reads `when`.
    pub(crate) fn until(&self, when: u64) -> Duration {
        Duration::from_nanos(when.saturating_sub(self.monotonic_now()))
    }

    /// `wasi:random/insecure-seed`: random, and the same for the instance's life.
    pub(crate) fn insecure_seed(&mut self) -> Result<(u64, u64), getrandom::Error> {
        if let Some(seed) = self.insecure_seed {
            return Ok(seed);
        }
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes)?;
        let (a, b) = bytes.split_at(8);
        let seed = (
            u64::from_le_bytes(a.try_into().expect("8 bytes")),
            u64::from_le_bytes(b.try_into().expect("8 bytes")),
        );
        self.insecure_seed = Some(seed);
        Ok(seed)
    }

    /// `metadata-hash` of a file identity: stable within the instance,
    /// unrelated between instances.
    pub(crate) fn identity_hash(&self, identity: (u64, u64)) -> (u64, u64) {
        (
            self.hash_keys.hash_one((identity, 0u8)),
            self.hash_keys.hash_one((identity, 1u8)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_is_read_once_in_pieces() {
        let mut state = WasiState::new("c".into());
        assert_eq!(state.read_stdin(4), None);
        state.set_stdin(b"hello".to_vec());
        assert_eq!(state.read_stdin(4).as_deref(), Some(&b"hell"[..]));
        assert_eq!(state.read_stdin(4).as_deref(), Some(&b"o"[..]));
        assert_eq!(state.read_stdin(4), None);
    }

    #[test]
    fn the_seed_stays_and_hashes_differ_between_instances() {
        let mut a = WasiState::new("c".into());
        let seed = a.insecure_seed().expect("seed");
        assert_eq!(a.insecure_seed().expect("seed"), seed);
        let b = WasiState::new("c".into());
        assert_eq!(a.identity_hash((1, 2)), a.identity_hash((1, 2)));
        assert_ne!(a.identity_hash((1, 2)), a.identity_hash((1, 3)));
        assert_ne!(a.identity_hash((1, 2)), b.identity_hash((1, 2)));
    }

    #[test]
    fn the_monotonic_clock_starts_near_zero_and_moves_forward() {
        let state = WasiState::new("c".into());
        let t0 = state.monotonic_now();
        assert!(t0 < 1_000_000_000);
        std::thread::sleep(Duration::from_millis(2));
        assert!(state.monotonic_now() >= t0 + 2_000_000);
        assert_eq!(state.until(0), Duration::ZERO);
    }
}
