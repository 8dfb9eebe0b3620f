//! SQLite with the Spin SDK 3 (`fermyon:spin/sqlite@2.0.0`, a core module);
//! the routes are in `routes.rs`, shared with the component built with the
//! Spin SDK 5 (`apps/components/sqlite-component`).

/// The SDK's SQLite API the routes use.
mod sql {
    pub use spin_sdk::sqlite::{Connection, Error, RowResult, Value};
}
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
