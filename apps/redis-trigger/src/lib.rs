//! A Redis trigger handler with the Spin SDK (`#[redis_component]`, a core
//! module exporting `fermyon:spin/inbound-redis#handle-message`). For each
//! message it adds the payload to the set `<prefix>:seen` and increments
//! `<prefix>:handled` on the server named by the `redis_address` variable,
//! `<prefix>` being the `prefix` variable, so a test can count what was
//! handled, and how often. A payload of `fail` makes the handler fail.

use spin_sdk::redis::Connection;
use spin_sdk::{redis_component, variables};

#[redis_component]
fn on_message(message: Vec<u8>) -> anyhow::Result<()> {
    if message == b"fail" {
        anyhow::bail!("asked to fail");
    }
    let prefix = variables::get("prefix")?;
    let conn = Connection::open(&variables::get("redis_address")?)?;
    let payload = String::from_utf8_lossy(&message).into_owned();
    conn.sadd(&format!("{prefix}:seen"), &[payload])?;
    conn.incr(&format!("{prefix}:handled"))?;
    Ok(())
}
