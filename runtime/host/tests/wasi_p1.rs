//! WASI preview 1 through `flint_host::engine()`: a guest module that
//! imports every `wasi_snapshot_preview1` function (so a wrong signature
//! fails to link) and exports a wrapper `w_<name>` for each; the test calls
//! the wrappers and reads the results from the guest's memory.

mod common;

use std::time::{Duration, Instant};

use common::Fixture;
use wasmi::Val;

/// Every function of the witx with its core signature ("" = no result).
const FUNCTIONS: &[(&str, &str, &str)] = &[
    ("args_get", "i32 i32", "i32"),
    ("args_sizes_get", "i32 i32", "i32"),
    ("environ_get", "i32 i32", "i32"),
    ("environ_sizes_get", "i32 i32", "i32"),
    ("clock_res_get", "i32 i32", "i32"),
    ("clock_time_get", "i32 i64 i32", "i32"),
    ("fd_advise", "i32 i64 i64 i32", "i32"),
    ("fd_allocate", "i32 i64 i64", "i32"),
    ("fd_close", "i32", "i32"),
    ("fd_datasync", "i32", "i32"),
    ("fd_fdstat_get", "i32 i32", "i32"),
    ("fd_fdstat_set_flags", "i32 i32", "i32"),
    ("fd_fdstat_set_rights", "i32 i64 i64", "i32"),
    ("fd_filestat_get", "i32 i32", "i32"),
    ("fd_filestat_set_size", "i32 i64", "i32"),
    ("fd_filestat_set_times", "i32 i64 i64 i32", "i32"),
    ("fd_pread", "i32 i32 i32 i64 i32", "i32"),
    ("fd_prestat_get", "i32 i32", "i32"),
    ("fd_prestat_dir_name", "i32 i32 i32", "i32"),
    ("fd_pwrite", "i32 i32 i32 i64 i32", "i32"),
    ("fd_read", "i32 i32 i32 i32", "i32"),
    ("fd_readdir", "i32 i32 i32 i64 i32", "i32"),
    ("fd_renumber", "i32 i32", "i32"),
    ("fd_seek", "i32 i64 i32 i32", "i32"),
    ("fd_sync", "i32", "i32"),
    ("fd_tell", "i32 i32", "i32"),
    ("fd_write", "i32 i32 i32 i32", "i32"),
    ("path_create_directory", "i32 i32 i32", "i32"),
    ("path_filestat_get", "i32 i32 i32 i32 i32", "i32"),
    (
        "path_filestat_set_times",
        "i32 i32 i32 i32 i64 i64 i32",
        "i32",
    ),
    ("path_link", "i32 i32 i32 i32 i32 i32 i32", "i32"),
    ("path_open", "i32 i32 i32 i32 i32 i64 i64 i32 i32", "i32"),
    ("path_readlink", "i32 i32 i32 i32 i32 i32", "i32"),
    ("path_remove_directory", "i32 i32 i32", "i32"),
    ("path_rename", "i32 i32 i32 i32 i32 i32", "i32"),
    ("path_symlink", "i32 i32 i32 i32 i32", "i32"),
    ("path_unlink_file", "i32 i32 i32", "i32"),
    ("poll_oneoff", "i32 i32 i32 i32", "i32"),
    ("proc_exit", "i32", ""),
    ("proc_raise", "i32", "i32"),
    ("sched_yield", "", "i32"),
    ("random_get", "i32 i32", "i32"),
    ("sock_accept", "i32 i32 i32", "i32"),
    ("sock_recv", "i32 i32 i32 i32 i32 i32", "i32"),
    ("sock_send", "i32 i32 i32 i32 i32", "i32"),
    ("sock_shutdown", "i32 i32", "i32"),
];

fn guest() -> String {
    let mut wat = String::from("(module\n");
    for (name, params, result) in FUNCTIONS {
        let result = match *result {
            "" => String::new(),
            r => format!("(result {r})"),
        };
        wat.push_str(&format!(
            "  (import \"wasi_snapshot_preview1\" \"{name}\" (func ${name} (param {params}) {result}))\n"
        ));
    }
    wat.push_str("  (memory (export \"memory\") 1)\n");
    for (name, params, result) in FUNCTIONS {
        let count = params.split_whitespace().count();
        let gets: String = (0..count).map(|i| format!("(local.get {i}) ")).collect();
        let result_decl = match *result {
            "" => String::new(),
            r => format!("(result {r})"),
        };
        wat.push_str(&format!(
            "  (func (export \"w_{name}\") (param {params}) {result_decl} (call ${name} {gets}))\n"
        ));
    }
    wat.push(')');
    wat
}

// errno values.
const BADF: i32 = 8;
const INVAL: i32 = 28;
const NOENT: i32 = 44;
const NOTDIR: i32 = 54;
const NOTSUP: i32 = 58;
const PERM: i32 = 63;
const SPIPE: i32 = 70;

// rights.
const FD_READ: i64 = 1 << 1;
const FD_SEEK: i64 = 1 << 2;
const FD_WRITE: i64 = 1 << 6;
const READ_RIGHTS: i64 = FD_READ | FD_SEEK | (1 << 5) | (1 << 21);

fn fixture(name: &str, stdout_limit: usize) -> Fixture {
    common::fixture(common::Spec {
        label: &format!("wasi-p1-{name}"),
        guest: &guest(),
        // Each call takes a fresh 10M slice of this.
        fuel: 1 << 50,
        stdout_limit,
        populate: &|base| {
            let files = base.join("files");
            std::fs::create_dir_all(files.join("sub")).expect("files dir");
            std::fs::write(files.join("hello.txt"), b"hello from a file").expect("file");
            std::fs::write(files.join("sub/b.txt"), b"b").expect("file");
            std::fs::write(base.join("secret"), b"secret").expect("secret");
            std::os::unix::fs::symlink("hello.txt", files.join("inside")).expect("symlink");
            std::os::unix::fs::symlink("../secret", files.join("outside")).expect("symlink");
        },
        setup: &|state| {
            state.env = vec![("GREETING".into(), "hi".into()), ("A".into(), "b=c".into())];
            state.args = vec!["p1".into(), "x".into()];
            state.set_stdin(b"standard input".to_vec());
        },
    })
}

/// An i32 argument.
fn i(v: i32) -> Val {
    Val::I32(v)
}

/// An i64 argument.
fn l(v: i64) -> Val {
    Val::I64(v)
}

impl Fixture {
    fn try_call(&mut self, name: &str, args: &[Val]) -> Result<i32, wasmi::Error> {
        let func = self
            .instance
            .get_func(&self.store, &format!("w_{name}"))
            .expect("export");
        let mut result = [Val::I32(-1)];
        flint_engine::call_guest(&mut self.store, &func, args, &mut result)?;
        Ok(result[0].i32().expect("i32"))
    }

    fn call(&mut self, name: &str, args: &[Val]) -> i32 {
        self.try_call(name, args)
            .unwrap_or_else(|e| panic!("{name} trapped: {e}"))
    }

    fn memory(&self) -> wasmi::Memory {
        self.instance
            .get_memory(&self.store, "memory")
            .expect("memory")
    }

    fn write(&mut self, at: usize, bytes: &[u8]) {
        let memory = self.memory();
        memory.data_mut(&mut self.store)[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn read(&self, at: usize, len: usize) -> Vec<u8> {
        self.memory().data(&self.store)[at..at + len].to_vec()
    }

    fn u32(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.read(at, 4).try_into().expect("4"))
    }

    fn u64(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.read(at, 8).try_into().expect("8"))
    }

    /// Puts `path` at 1000 and opens it beneath fd 3; (errno, fd).
    fn open(&mut self, path: &str, oflags: i32, rights: i64, fdflags: i32) -> (i32, u32) {
        self.write(1000, path.as_bytes());
        let errno = self.call(
            "path_open",
            &[
                i(3),
                i(1),
                i(1000),
                i(path.len() as i32),
                i(oflags),
                l(rights),
                l(0),
                i(fdflags),
                i(900),
            ],
        );
        (errno, self.u32(900))
    }

    /// One iovec at 800 over `len` bytes at 2000; `fd_read`'s count.
    fn read_fd(&mut self, fd: u32, len: u32) -> (i32, Vec<u8>) {
        self.write(800, &2000u32.to_le_bytes());
        self.write(804, &len.to_le_bytes());
        let errno = self.call("fd_read", &[i(fd as i32), i(800), i(1), i(808)]);
        let n = self.u32(808) as usize;
        (errno, self.read(2000, n))
    }
}

#[test]
fn arguments_environment_clocks_and_random() {
    let mut f = fixture("env", 1 << 20);
    assert_eq!(f.call("args_sizes_get", &[i(0), i(4)]), 0);
    assert_eq!((f.u32(0), f.u32(4)), (2, 5));
    assert_eq!(f.call("args_get", &[i(16), i(64)]), 0);
    assert_eq!(f.u32(16), 64);
    assert_eq!(f.u32(20), 67);
    assert_eq!(f.read(64, 5), b"p1\0x\0");
    assert_eq!(f.call("environ_sizes_get", &[i(0), i(4)]), 0);
    assert_eq!((f.u32(0), f.u32(4)), (2, 18));
    assert_eq!(f.call("environ_get", &[i(16), i(64)]), 0);
    assert_eq!((f.u32(16), f.u32(20)), (64, 76));
    assert_eq!(f.read(64, 18), b"GREETING=hi\0A=b=c\0");
    // The string area must fit in memory: 65530 + 16 > 64 KiB traps.
    assert!(f.try_call("environ_get", &[i(16), i(65530)]).is_err());
    // Misaligned return pointers trap.
    assert!(f.try_call("args_sizes_get", &[i(1), i(4)]).is_err());

    assert_eq!(f.call("clock_time_get", &[i(0), l(0), i(8)]), 0);
    assert!(f.u64(8) > 1_600_000_000 * 1_000_000_000);
    assert_eq!(f.call("clock_time_get", &[i(1), l(0), i(8)]), 0);
    assert!(f.u64(8) < 60_000_000_000, "the instance's own clock");
    assert_eq!(f.call("clock_res_get", &[i(1), i(8)]), 0);
    assert_eq!(f.u64(8), 1);
    assert_eq!(f.call("clock_time_get", &[i(2), l(0), i(8)]), BADF);
    assert_eq!(f.call("clock_time_get", &[i(9), l(0), i(8)]), INVAL);

    assert_eq!(f.call("random_get", &[i(100), i(32)]), 0);
    assert!(f.read(100, 32).iter().any(|&b| b != 0));
    assert!(f.try_call("random_get", &[i(65000), i(1000)]).is_err());
    assert_eq!(f.call("sched_yield", &[]), 0);
    // No socket is ever handed out.
    assert_eq!(f.call("sock_accept", &[i(3), i(0), i(0)]), BADF);
    assert_eq!(f.call("sock_shutdown", &[i(1), i(1)]), BADF);
    assert_eq!(f.call("sock_shutdown", &[i(1), i(8)]), INVAL);
    assert!(f.try_call("proc_raise", &[i(2)]).is_err());
}

#[test]
fn stdio_is_the_states() {
    let mut f = fixture("stdio", 1 << 20);
    let (errno, bytes) = f.read_fd(0, 8);
    assert_eq!((errno, bytes.as_slice()), (0, &b"standard"[..]));
    // Two iovecs: both are filled.
    f.write(
        800,
        &[0xd0, 0x07, 0, 0, 3, 0, 0, 0, 0xd3, 0x07, 0, 0, 100, 0, 0, 0],
    );
    assert_eq!(f.call("fd_read", &[i(0), i(800), i(2), i(808)]), 0);
    assert_eq!(f.u32(808), 6);
    assert_eq!(f.read(2000, 6), b" input");
    assert_eq!(f.read_fd(0, 8), (0, Vec::new()));
    // stdout: fd_write with two iovecs.
    f.write(3000, b"hello, world");
    f.write(
        800,
        &[0xb8, 0x0b, 0, 0, 5, 0, 0, 0, 0xbd, 0x0b, 0, 0, 7, 0, 0, 0],
    );
    assert_eq!(f.call("fd_write", &[i(1), i(800), i(2), i(808)]), 0);
    assert_eq!(f.u32(808), 12);
    assert_eq!(f.stdout.read().expect("stdout").data, b"hello, world");
    assert_eq!(f.call("fd_write", &[i(0), i(800), i(2), i(808)]), BADF);
    assert_eq!(f.read_fd(1, 8).0, BADF);
    assert_eq!(f.call("fd_seek", &[i(1), l(0), i(1), i(8)]), SPIPE);
    assert_eq!(
        f.call("fd_pwrite", &[i(1), i(800), i(2), l(0), i(808)]),
        SPIPE
    );
    // fdstat: stdout is not a terminal, append-only, writable.
    assert_eq!(f.call("fd_fdstat_get", &[i(1), i(16)]), 0);
    assert_eq!(f.read(16, 4), [0, 0, 1, 0]);
    assert_eq!(f.u64(24), FD_WRITE as u64);
    // An iovec past the end of memory traps.
    f.write(800, &[0xf0, 0xff, 0, 0, 100, 0, 0, 0]);
    assert!(
        f.try_call("fd_write", &[i(1), i(800), i(1), i(808)])
            .is_err()
    );
    // Closing stdout, then it is gone; renumbering 2 onto 1 brings one back.
    assert_eq!(f.call("fd_close", &[i(1)]), 0);
    assert_eq!(f.call("fd_close", &[i(1)]), BADF);
    assert_eq!(f.call("fd_renumber", &[i(2), i(1)]), BADF);
    assert_eq!(f.call("fd_renumber", &[i(2), i(2)]), 0);
    assert_eq!(f.call("fd_fdstat_get", &[i(2), i(16)]), 0);
}

#[test]
fn output_past_its_limit_traps_and_is_remembered() {
    let mut f = fixture("limit", 10);
    f.write(3000, b"0123456789abc");
    f.write(800, &[0xb8, 0x0b, 0, 0, 8, 0, 0, 0]);
    assert_eq!(f.call("fd_write", &[i(1), i(800), i(1), i(808)]), 0);
    let e = f
        .try_call("fd_write", &[i(1), i(800), i(1), i(808)])
        .expect_err("over the limit");
    assert!(e.to_string().contains("10 bytes"), "{e}");
    let out = f.stdout.read().expect("stdout");
    assert!(out.overflowed);
    assert_eq!(out.data, b"01234567");
}

#[test]
fn preopens_files_and_read_only() {
    let mut f = fixture("files", 1 << 20);
    assert_eq!(f.call("fd_prestat_get", &[i(3), i(16)]), 0);
    assert_eq!((f.read(16, 1)[0], f.u32(20)), (0, 1));
    assert_eq!(f.call("fd_prestat_dir_name", &[i(3), i(24), i(1)]), 0);
    assert_eq!(f.read(24, 1), b"/");
    assert_eq!(f.call("fd_prestat_dir_name", &[i(3), i(24), i(0)]), 37);
    assert_eq!(f.call("fd_prestat_get", &[i(4), i(16)]), BADF);
    assert_eq!(f.call("fd_prestat_get", &[i(1), i(16)]), BADF);
    assert_eq!(f.call("fd_prestat_dir_name", &[i(1), i(24), i(1)]), NOTDIR);
    // The preopen is a directory with wasi-common's rights.
    assert_eq!(f.call("fd_fdstat_get", &[i(3), i(16)]), 0);
    assert_eq!(f.read(16, 1)[0], 3);
    assert_ne!(
        f.u64(32) & FD_WRITE as u64,
        0,
        "inheriting includes fd_write"
    );

    let (errno, fd) = f.open("hello.txt", 0, READ_RIGHTS, 0);
    assert_eq!((errno, fd), (0, 4));
    assert_eq!(f.read_fd(fd, 5), (0, b"hello".to_vec()));
    assert_eq!(f.call("fd_tell", &[i(fd as i32), i(8)]), 0);
    assert_eq!(f.u64(8), 5);
    assert_eq!(f.call("fd_seek", &[i(fd as i32), l(-4), i(2), i(8)]), 0);
    assert_eq!(f.u64(8), 13);
    assert_eq!(f.read_fd(fd, 100), (0, b"file".to_vec()));
    assert_eq!(f.read_fd(fd, 100), (0, Vec::new()));
    assert_eq!(f.call("fd_seek", &[i(fd as i32), l(-1), i(0), i(8)]), INVAL);
    assert_eq!(f.call("fd_seek", &[i(fd as i32), l(0), i(3), i(8)]), INVAL);
    // pread at 6 leaves the position alone.
    f.write(800, &[0xd0, 0x07, 0, 0, 4, 0, 0, 0]);
    assert_eq!(
        f.call("fd_pread", &[i(fd as i32), i(800), i(1), l(6), i(808)]),
        0
    );
    assert_eq!(f.read(2000, 4), b"from");
    assert_eq!(f.call("fd_tell", &[i(fd as i32), i(8)]), 0);
    assert_eq!(f.u64(8), 17);
    // filestat: a regular file of 17 bytes, one link.
    assert_eq!(f.call("fd_filestat_get", &[i(fd as i32), i(64)]), 0);
    assert_eq!(f.read(64 + 16, 1)[0], 4);
    assert_eq!((f.u64(64 + 24), f.u64(64 + 32)), (1, 17));
    assert!(f.u64(64 + 48) > 0, "mtim");
    let ino = f.u64(64 + 8);
    f.write(1000, b"hello.txt");
    assert_eq!(
        f.call("path_filestat_get", &[i(3), i(1), i(1000), i(9), i(128)]),
        0
    );
    assert_eq!(f.u64(128 + 8), ino, "the same file, the same inode");
    f.write(1000, b"sub");
    assert_eq!(
        f.call("path_filestat_get", &[i(3), i(1), i(1000), i(3), i(128)]),
        0
    );
    assert_eq!(f.read(128 + 16, 1)[0], 3);
    assert_eq!(f.call("fd_fdstat_get", &[i(fd as i32), i(16)]), 0);
    assert_eq!((f.read(16, 1)[0], f.u64(24)), (4, FD_READ as u64));

    // Files are not writable; nothing can be changed.
    f.write(800, &[0xd0, 0x07, 0, 0, 4, 0, 0, 0]);
    assert_eq!(
        f.call("fd_write", &[i(fd as i32), i(800), i(1), i(808)]),
        BADF
    );
    assert_eq!(f.call("fd_filestat_set_size", &[i(fd as i32), l(0)]), INVAL);
    assert_eq!(
        f.call("fd_filestat_set_times", &[i(fd as i32), l(0), l(0), i(4)]),
        PERM
    );
    assert_eq!(
        f.call("fd_filestat_set_times", &[i(fd as i32), l(0), l(0), i(12)]),
        INVAL
    );
    assert_eq!(f.call("fd_allocate", &[i(fd as i32), l(0), l(1)]), NOTSUP);
    assert_eq!(f.call("fd_advise", &[i(fd as i32), l(0), l(1), i(1)]), 0);
    assert_eq!(
        f.call("fd_advise", &[i(fd as i32), l(0), l(1), i(6)]),
        INVAL
    );
    assert_eq!(f.call("fd_sync", &[i(fd as i32)]), 0);
    assert_eq!(f.call("fd_sync", &[i(3)]), BADF);
    assert_eq!(f.call("fd_fdstat_set_flags", &[i(fd as i32), i(1)]), PERM);
    assert_eq!(f.call("fd_fdstat_set_flags", &[i(fd as i32), i(4)]), 0);
    assert_eq!(f.open("hello.txt", 0, READ_RIGHTS | FD_WRITE, 0).0, PERM);
    assert_eq!(f.open("new.txt", 1, READ_RIGHTS, 0).0, PERM);
    assert_eq!(f.open("hello.txt", 8, READ_RIGHTS, 0).0, PERM);
    assert_eq!(f.open("hello.txt", 0, READ_RIGHTS, 1).0, PERM);
    assert_eq!(f.open("hello.txt", 0, READ_RIGHTS, 16).0, NOTSUP);
    assert_eq!(f.open("hello.txt", 2, READ_RIGHTS, 0).0, NOTDIR);
    assert_eq!(f.open("hello.txt", 16, READ_RIGHTS, 0).0, INVAL);
    f.write(1000, b"new");
    for name in [
        "path_create_directory",
        "path_remove_directory",
        "path_unlink_file",
    ] {
        assert_eq!(f.call(name, &[i(3), i(1000), i(3)]), PERM, "{name}");
        assert_eq!(f.call(name, &[i(fd as i32), i(1000), i(3)]), BADF, "{name}");
    }
    assert_eq!(
        f.call("path_rename", &[i(3), i(1000), i(3), i(3), i(1000), i(3)]),
        PERM
    );
    assert_eq!(
        f.call("path_symlink", &[i(1000), i(3), i(3), i(1000), i(3)]),
        PERM
    );
    assert_eq!(
        f.call(
            "path_link",
            &[i(3), i(0), i(1000), i(3), i(3), i(1000), i(3)]
        ),
        PERM
    );
    assert_eq!(
        f.call(
            "path_filestat_set_times",
            &[i(3), i(0), i(1000), i(3), l(0), l(0), i(0)]
        ),
        PERM
    );
    // A path that is not UTF-8 is EILSEQ.
    f.write(1000, &[0xff, 0xfe]);
    assert_eq!(f.call("path_unlink_file", &[i(3), i(1000), i(2)]), 25);

    // Outside the preopen, absolute, missing.
    for (path, errno) in [
        ("../secret", PERM),
        ("sub/../../secret", PERM),
        ("/etc/passwd", PERM),
        ("missing", NOENT),
        ("sub/../hello.txt", 0),
    ] {
        assert_eq!(f.open(path, 0, READ_RIGHTS, 0).0, errno, "{path}");
    }
    #[cfg(unix)]
    {
        assert_eq!(f.open("outside", 0, READ_RIGHTS, 0).0, PERM);
        assert_eq!(f.open("inside", 0, READ_RIGHTS, 0).0, 0);
        f.write(1000, b"inside");
        assert_eq!(
            f.call("path_readlink", &[i(3), i(1000), i(6), i(2000), i(4), i(8)]),
            0
        );
        assert_eq!((f.u32(8), f.read(2000, 4)), (4, b"hell".to_vec()));
        // Not following the link that ends the path.
        f.write(1000, b"inside");
        assert_eq!(
            f.call(
                "path_open",
                &[
                    i(3),
                    i(0),
                    i(1000),
                    i(6),
                    i(0),
                    l(READ_RIGHTS),
                    l(0),
                    i(0),
                    i(900)
                ]
            ),
            32
        );
    }
    // Not a directory to open beneath.
    f.write(1000, b"hello.txt");
    assert_eq!(
        f.call(
            "path_open",
            &[
                i(fd as i32),
                i(1),
                i(1000),
                i(9),
                i(0),
                l(READ_RIGHTS),
                l(0),
                i(0),
                i(900)
            ]
        ),
        NOTDIR
    );
    assert_eq!(
        f.call(
            "path_open",
            &[
                i(77),
                i(1),
                i(1000),
                i(9),
                i(0),
                l(READ_RIGHTS),
                l(0),
                i(0),
                i(900)
            ]
        ),
        BADF
    );
    // A directory opens as one, and a file beneath it too; freed fds are reused.
    let (errno, sub) = f.open("sub", 2, READ_RIGHTS, 0);
    assert_eq!(errno, 0);
    assert_eq!(f.call("fd_close", &[i(fd as i32)]), 0);
    f.write(1000, b"b.txt");
    assert_eq!(
        f.call(
            "path_open",
            &[
                i(sub as i32),
                i(1),
                i(1000),
                i(5),
                i(0),
                l(READ_RIGHTS),
                l(0),
                i(0),
                i(900)
            ]
        ),
        0
    );
    assert_eq!(f.u32(900), fd, "the lowest free descriptor");
    assert_eq!(f.read_fd(fd, 10), (0, b"b".to_vec()));
    // A directory cannot be read like a file.
    assert_eq!(f.read_fd(sub, 10).0, BADF);
    assert_eq!(f.call("fd_prestat_get", &[i(sub as i32), i(16)]), NOTSUP);
    // Nothing was written to the files.
    let files = f.base.join("files");
    let entries = if cfg!(unix) { 4 } else { 2 };
    assert_eq!(std::fs::read_dir(&files).expect("list").count(), entries);
    assert_eq!(
        std::fs::read(files.join("hello.txt")).expect("read"),
        b"hello from a file"
    );
}

/// Parses `fd_readdir` output: (d_next, d_type, name) per whole entry.
fn dirents(bytes: &[u8]) -> Vec<(u64, u8, String)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 24 <= bytes.len() {
        let next = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8"));
        let len = u32::from_le_bytes(bytes[at + 16..at + 20].try_into().expect("4")) as usize;
        let kind = bytes[at + 20];
        if at + 24 + len > bytes.len() {
            break;
        }
        let name = String::from_utf8(bytes[at + 24..at + 24 + len].to_vec()).expect("utf-8");
        out.push((next, kind, name));
        at += 24 + len;
    }
    out
}

#[test]
fn directories_list_with_cookies() {
    let mut f = fixture("readdir", 1 << 20);
    assert_eq!(
        f.call("fd_readdir", &[i(3), i(4096), i(4096), l(0), i(8)]),
        0
    );
    let used = f.u32(8) as usize;
    let all = dirents(&f.read(4096, used));
    let names: Vec<&str> = all.iter().map(|(_, _, n)| n.as_str()).collect();
    assert_eq!(names[..2], [".", ".."]);
    let mut rest = names[2..].to_vec();
    rest.sort_unstable();
    #[cfg(unix)]
    assert_eq!(rest, ["hello.txt", "inside", "outside", "sub"]);
    let cookies: Vec<u64> = all.iter().map(|(c, _, _)| *c).collect();
    assert_eq!(cookies, (1..=all.len() as u64).collect::<Vec<_>>());
    assert!(all.contains(&(all[0].0, 3, ".".into())));
    assert!(all.iter().any(|(_, kind, n)| n == "sub" && *kind == 3));
    assert!(
        all.iter()
            .any(|(_, kind, n)| n == "hello.txt" && *kind == 4)
    );
    // A buffer too small for the next entry comes back full.
    assert_eq!(f.call("fd_readdir", &[i(3), i(4096), i(30), l(0), i(8)]), 0);
    assert_eq!(f.u32(8), 30);
    assert_eq!(dirents(&f.read(4096, 30)).len(), 1);
    // Reading on from each cookie gives the rest, in the same order.
    for (k, (cookie, _, _)) in all.iter().enumerate() {
        assert_eq!(
            f.call(
                "fd_readdir",
                &[i(3), i(4096), i(4096), l(*cookie as i64), i(8)]
            ),
            0
        );
        let again = dirents(&f.read(4096, f.u32(8) as usize));
        assert_eq!(again, all[k + 1..], "from cookie {cookie}");
    }
    // A file is not a directory to list; the buffer must be in memory.
    assert_eq!(
        f.call("fd_readdir", &[i(1), i(4096), i(100), l(0), i(8)]),
        BADF
    );
    assert!(
        f.try_call("fd_readdir", &[i(3), i(65000), i(4096), l(0), i(8)])
            .is_err()
    );
}

/// `subscription` at `at`: a clock (`id`, relative `timeout`) or an fd.
fn clock_sub(f: &mut Fixture, at: usize, userdata: u64, id: u32, timeout: u64, flags: u16) {
    let mut sub = [0u8; 48];
    sub[0..8].copy_from_slice(&userdata.to_le_bytes());
    sub[8] = 0;
    sub[16..20].copy_from_slice(&id.to_le_bytes());
    sub[24..32].copy_from_slice(&timeout.to_le_bytes());
    sub[40..42].copy_from_slice(&flags.to_le_bytes());
    f.write(at, &sub);
}

fn fd_sub(f: &mut Fixture, at: usize, userdata: u64, kind: u8, fd: u32) {
    let mut sub = [0u8; 48];
    sub[0..8].copy_from_slice(&userdata.to_le_bytes());
    sub[8] = kind;
    sub[16..20].copy_from_slice(&fd.to_le_bytes());
    f.write(at, &sub);
}

#[test]
fn poll_waits_on_clocks_within_the_deadline() {
    let mut f = fixture("poll", 1 << 20);
    // One relative sleep of 2 ms.
    clock_sub(&mut f, 4096, 7, 1, 2_000_000, 0);
    let start = Instant::now();
    assert_eq!(f.call("poll_oneoff", &[i(4096), i(8192), i(1), i(8)]), 0);
    assert!(start.elapsed() >= Duration::from_millis(2));
    assert_eq!(f.u32(8), 1);
    assert_eq!(f.u64(8192), 7);
    assert_eq!(f.read(8192 + 8, 3), [0, 0, 0]);
    // A clock and a readable stdin: stdin is ready at once, the clock not.
    clock_sub(&mut f, 4096, 1, 1, 10_000_000_000, 0);
    fd_sub(&mut f, 4096 + 48, 2, 1, 0);
    let start = Instant::now();
    assert_eq!(f.call("poll_oneoff", &[i(4096), i(8192), i(2), i(8)]), 0);
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(f.u32(8), 1);
    assert_eq!((f.u64(8192), f.read(8192 + 10, 1)[0]), (2, 1));
    assert_eq!(f.u64(8192 + 16), 14, "bytes of stdin ready");
    // Two clocks: the earlier one fires.
    clock_sub(&mut f, 4096, 1, 1, 10_000_000_000, 0);
    clock_sub(&mut f, 4096 + 48, 2, 0, 1_000_000, 0);
    assert_eq!(f.call("poll_oneoff", &[i(4096), i(8192), i(2), i(8)]), 0);
    assert_eq!((f.u32(8), f.u64(8192)), (1, 2));
    // Errors: no subscriptions, realtime absolute, an unknown clock, a bad fd.
    assert_eq!(
        f.call("poll_oneoff", &[i(4096), i(8192), i(0), i(8)]),
        INVAL
    );
    clock_sub(&mut f, 4096, 1, 0, 0, 1);
    fd_sub(&mut f, 4096 + 48, 2, 1, 0);
    assert_eq!(
        f.call("poll_oneoff", &[i(4096), i(8192), i(2), i(8)]),
        NOTSUP
    );
    clock_sub(&mut f, 4096, 1, 9, 0, 0);
    assert_eq!(
        f.call("poll_oneoff", &[i(4096), i(8192), i(2), i(8)]),
        INVAL
    );
    fd_sub(&mut f, 4096, 1, 1, 99);
    assert_eq!(f.call("poll_oneoff", &[i(4096), i(8192), i(2), i(8)]), BADF);
    // Subscriptions past the end of memory trap.
    assert!(
        f.try_call("poll_oneoff", &[i(65488), i(8192), i(2), i(8)])
            .is_err()
    );
    // A sleep past the deadline ends the invocation at once, as the deadline.
    clock_sub(&mut f, 4096, 1, 1, 1_000_000_000_000, 0);
    let start = Instant::now();
    let e = f
        .try_call("poll_oneoff", &[i(4096), i(8192), i(1), i(8)])
        .expect_err("past the deadline");
    assert!(e.to_string().contains("max_execution_ms"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn proc_exit_ends_with_its_status() {
    let mut f = fixture("exit", 1 << 20);
    let func = f
        .instance
        .get_func(&f.store, "w_proc_exit")
        .expect("export");
    let e =
        flint_engine::call_guest(&mut f.store, &func, &[i(3)], &mut []).expect_err("exit traps");
    assert_eq!(e.i32_exit_status(), Some(3));
    let e =
        flint_engine::call_guest(&mut f.store, &func, &[i(0)], &mut []).expect_err("exit traps");
    assert_eq!(e.i32_exit_status(), Some(0));
    let e = flint_engine::call_guest(&mut f.store, &func, &[i(200)], &mut [])
        .expect_err("out of range");
    assert_eq!(e.i32_exit_status(), None);
}
