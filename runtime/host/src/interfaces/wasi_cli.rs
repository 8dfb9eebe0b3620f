//! `wasi:cli@0.2.x`: the environment, arguments and standard streams of
//! the instance's [`WasiState`](crate::wasi::WasiState), `exit`, and the
//! terminal interfaces (no terminal is ever attached).

use wasmi::Error;

use super::io::{InputStream, OutputStream};
use super::{GuestState, drop_fn, host_fn};
use flint_engine::canon::{Args, HostFn, Ty, Value};
use flint_engine::option_ty;

/// `terminal-input`: never handed out.
pub enum TerminalInput {}
/// `terminal-output`: never handed out.
pub enum TerminalOutput {}

/// What lowering `strings` costs a guest at least: each string's bytes and
/// its pointer and length. Past the instance's memory limit the host would
/// only hand the guest something it cannot hold.
fn check_size<'a>(
    state: &GuestState,
    what: &str,
    strings: impl Iterator<Item = &'a str>,
) -> Result<(), Error> {
    let size = strings.fold(0usize, |n, s| n.saturating_add(s.len()).saturating_add(8));
    if size > state.host.memory_limit {
        return Err(Error::new(format!(
            "the {what} ({size} bytes) is larger than the instance's memory limit"
        )));
    }
    Ok(())
}

pub(super) fn get_environment(state: &mut GuestState, _: Args) -> Result<Value, Error> {
    let env = &state.host.wasi_state.env;
    let strings = env.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]);
    check_size(state, "environment", strings)?;
    Ok(Value::List(
        env.iter()
            .map(|(k, v)| Value::Tuple(vec![Value::string(k), Value::string(v)]))
            .collect(),
    ))
}

pub(super) fn get_arguments(state: &mut GuestState, _: Args) -> Result<Value, Error> {
    let args = &state.host.wasi_state.args;
    check_size(state, "argument list", args.iter().map(String::as_str))?;
    Ok(Value::List(args.iter().map(Value::string).collect()))
}

pub(super) fn initial_cwd(_: &mut GuestState, _: Args) -> Result<Value, Error> {
    Ok(Value::none())
}

pub const ENVIRONMENT: &[HostFn<GuestState>] = &[
    host_fn!("get-environment", [] -> Ty::List(&Ty::Tuple(&[Ty::String, Ty::String])), get_environment),
    host_fn!("get-arguments", [] -> Ty::List(&Ty::String), get_arguments),
    host_fn!("initial-cwd", [] -> option_ty!(Ty::String), initial_cwd),
];

/// `exit(result)` ends the invocation as preview 1's `proc_exit` does:
/// `ok` is exit status 0 (success), `err` is 1.
fn exit(_: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let (disc, _) = args.variant()?;
    Err(Error::i32_exit(if disc == 0 { 0 } else { 1 }))
}

/// `exit-with-code(u8)` (unstable `cli-exit-with-code`).
fn exit_with_code(_: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    match args.value()? {
        Value::U8(code) => Err(Error::i32_exit(i32::from(code))),
        other => Err(Error::new(format!("host bug: expected u8, got {other:?}"))),
    }
}

pub const EXIT: &[HostFn<GuestState>] = &[
    host_fn!("exit", [Ty::Variant(&[None, None])], exit),
    host_fn!("exit-with-code", [Ty::U8], exit_with_code),
];

fn get_stdin(state: &mut GuestState, _: Args) -> Result<Value, Error> {
    Ok(Value::Handle(
        state.host.resources.push(InputStream::stdin())?,
    ))
}

fn get_stdout(state: &mut GuestState, _: Args) -> Result<Value, Error> {
    Ok(Value::Handle(
        state.host.resources.push(OutputStream::stdout())?,
    ))
}

fn get_stderr(state: &mut GuestState, _: Args) -> Result<Value, Error> {
    Ok(Value::Handle(
        state.host.resources.push(OutputStream::stderr())?,
    ))
}

pub const STDIN: &[HostFn<GuestState>] = &[host_fn!("get-stdin", [] -> Ty::Handle, get_stdin)];
pub const STDOUT: &[HostFn<GuestState>] = &[host_fn!("get-stdout", [] -> Ty::Handle, get_stdout)];
pub const STDERR: &[HostFn<GuestState>] = &[host_fn!("get-stderr", [] -> Ty::Handle, get_stderr)];

fn no_terminal(_: &mut GuestState, _: Args) -> Result<Value, Error> {
    Ok(Value::none())
}

pub const TERMINAL_INPUT: &[HostFn<GuestState>] = &[drop_fn!("terminal-input", TerminalInput)];
pub const TERMINAL_OUTPUT: &[HostFn<GuestState>] = &[drop_fn!("terminal-output", TerminalOutput)];
pub const TERMINAL_STDIN: &[HostFn<GuestState>] =
    &[host_fn!("get-terminal-stdin", [] -> option_ty!(Ty::Handle), no_terminal)];
pub const TERMINAL_STDOUT: &[HostFn<GuestState>] =
    &[host_fn!("get-terminal-stdout", [] -> option_ty!(Ty::Handle), no_terminal)];
pub const TERMINAL_STDERR: &[HostFn<GuestState>] =
    &[host_fn!("get-terminal-stderr", [] -> option_ty!(Ty::Handle), no_terminal)];
