//! `wasi:random@0.2.x`: the operating system's CSPRNG (`getrandom`) for both
//! the secure and the insecure interface, and a seed fixed per instance.
//! A guest may not ask for more bytes than its memory could hold.

use wasmi::Error;

use super::{GuestState, host_fn};
use flint_engine::canon::{Args, HostFn, Ty, Value};

/// `len` random bytes, refused (a trap) past the instance's memory limit.
pub(crate) fn random_bytes(memory_limit: usize, len: u64) -> Result<Vec<u8>, Error> {
    let len = usize::try_from(len)
        .ok()
        .filter(|&n| n <= memory_limit)
        .ok_or_else(|| {
            Error::new(format!(
                "asked for {len} random bytes, more than the instance's memory limit ({memory_limit} bytes)"
            ))
        })?;
    let mut bytes = vec![0; len];
    fill(&mut bytes)?;
    Ok(bytes)
}

/// Fills `bytes` from the system's CSPRNG (also preview 1's `random_get`).
pub(crate) fn fill(bytes: &mut [u8]) -> Result<(), Error> {
    getrandom::getrandom(bytes)
        .map_err(|e| Error::new(format!("the system's random source failed: {e}")))
}

fn random_u64() -> Result<u64, Error> {
    let mut bytes = [0; 8];
    fill(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

fn get_random_bytes(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let len = args.u64()?;
    Ok(Value::Bytes(random_bytes(state.host.memory_limit, len)?))
}

fn get_random_u64(_: &mut GuestState, _: Args) -> Result<Value, Error> {
    Ok(Value::U64(random_u64()?))
}

pub const RANDOM: &[HostFn<GuestState>] = &[
    host_fn!("get-random-bytes", [Ty::U64] -> Ty::List(&Ty::U8), get_random_bytes),
    host_fn!("get-random-u64", [] -> Ty::U64, get_random_u64),
];

pub const INSECURE: &[HostFn<GuestState>] = &[
    host_fn!("get-insecure-random-bytes", [Ty::U64] -> Ty::List(&Ty::U8), get_random_bytes),
    host_fn!("get-insecure-random-u64", [] -> Ty::U64, get_random_u64),
];

pub(super) fn insecure_seed(state: &mut GuestState, _: Args) -> Result<Value, Error> {
    let (a, b) = state
        .host
        .wasi_state
        .insecure_seed()
        .map_err(|e| Error::new(format!("the system's random source failed: {e}")))?;
    Ok(Value::Tuple(vec![Value::U64(a), Value::U64(b)]))
}

pub const INSECURE_SEED: &[HostFn<GuestState>] = &[host_fn!(
    "insecure-seed",
    [] -> Ty::Tuple(&[Ty::U64, Ty::U64]),
    insecure_seed
)];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_are_bounded_by_the_memory_limit() {
        let bytes = random_bytes(64, 64).expect("within the limit");
        assert_eq!(bytes.len(), 64);
        assert!(random_bytes(64, 65).is_err());
        assert!(random_bytes(64, u64::MAX).is_err());
        assert_eq!(random_bytes(64, 0).expect("nothing"), Vec::<u8>::new());
        // 32 random bytes are not all zero (probability 2^-256).
        assert!(
            random_bytes(64, 32)
                .expect("random")
                .iter()
                .any(|&b| b != 0)
        );
        assert_ne!(random_u64().expect("u64"), random_u64().expect("u64"));
    }
}
