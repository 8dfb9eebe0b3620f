//! MySQL with the Spin SDK 3 (`fermyon:spin/mysql@2.0.0`), a core module.
//! The routes are in `app.rs`, shared with the SDK 5 component
//! (`apps/components/mysql-component`), whose `spin_sdk::mysql` is the same.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

mod app;

#[http_component]
fn handle(req: Request) -> Response {
    app::handle(&req)
}
