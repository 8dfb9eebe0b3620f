//! The SQLite example as a component, with the Spin SDK 5
//! (`spin:sqlite/sqlite@3.0.0`); its routes are `apps/spin-sqlite`'s.

/// The SDK's SQLite API the routes use.
mod sql {
    pub use spin_sdk::sqlite3::{Connection, Error, RowResult, Value};
}
#[path = "../../../spin-sqlite/src/routes.rs"]
mod routes;

#[spin_sdk::http_component]
fn handle(req: spin_sdk::http::Request) -> spin_sdk::http::Response {
    let (status, body) = routes::serve(
        req.method().to_string().as_str(),
        req.path(),
        req.query(),
        req.body(),
    );
    spin_sdk::http::Response::new(status, body)
}
