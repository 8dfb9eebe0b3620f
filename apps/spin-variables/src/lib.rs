//! Variables with the Spin SDK: `GET /<name>` answers the component variable
//! `<name>`, or 404 with the error when it cannot be read.

use spin_sdk::http::{Request, Response};
use spin_sdk::{http_component, variables};

#[http_component]
fn handle(req: Request) -> Response {
    let name = req.path().trim_start_matches('/');
    match variables::get(name) {
        Ok(value) => Response::new(200, value),
        Err(e) => Response::new(404, format!("{e:?}\n")),
    }
}
