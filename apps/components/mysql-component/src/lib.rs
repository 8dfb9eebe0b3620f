//! MySQL with the Spin SDK 5 (`fermyon:spin/mysql@2.0.0`), a component
//! (wasm32-wasip2). The routes are the core module's (`apps/spin-mysql`),
//! whose source this shares: the two SDKs' `spin_sdk::mysql` are the same.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

#[path = "../../../spin-mysql/src/app.rs"]
mod app;

#[http_component]
fn handle(req: Request) -> Response {
    app::handle(&req)
}
