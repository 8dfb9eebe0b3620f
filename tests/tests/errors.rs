//! Guest failures become 500s, are logged with the component's id, and do not
//! affect later requests.

use flint_e2e::Flint;

#[test]
fn failing_guests_give_500_and_the_server_keeps_serving() {
    let flint = Flint::showcase();
    // (path, component id, how it fails). The ids differ from the paths so the
    // log assertion really checks that the component is named.
    for (path, component, why) in [
        (
            "/trap",
            "panicking",
            "panic = abort traps with `unreachable`",
        ),
        (
            "/exit/3",
            "exiting",
            "non-zero proc_exit after a valid response",
        ),
        ("/empty", "silent", "nothing written to stdout"),
        ("/no-headers", "headerless", "stdout without a header block"),
    ] {
        let resp = flint.get(path);
        assert_eq!(resp.status, 500, "{path} ({why}): {resp:?}");
        flint.get("/hello").assert_status(200);
        flint.wait_for_log_line(&["GET", path, "500", component]);
    }
}
