//! `fermyon:spin/variables@2.0.0` through apps/spin-variables: defaults,
//! templates, the environment and `--variable`, required and secret values.

use flint_e2e::{Flint, FlintBuilder, apps_dir, run_flint};

fn variables_app() -> FlintBuilder {
    Flint::builder(apps_dir().join("spin-variables"))
}

#[test]
fn component_variables_expand_application_variables() {
    let flint = variables_app().variable("api_token", "t0ken").start();
    assert_eq!(flint.get("/message").text(), "Hello, world!");
    assert_eq!(flint.get("/token").text(), "t0ken");
    assert_eq!(flint.get("/fixed").text(), "no template");
}

#[test]
fn flag_beats_environment_beats_default() {
    let flint = variables_app()
        .process_env("SPIN_VARIABLE_API_TOKEN", "from-env")
        .process_env("SPIN_VARIABLE_AUDIENCE", "edge")
        .process_env("SPIN_VARIABLE_GREETING", "Hi")
        .variable("greeting", "Howdy")
        .start();
    assert_eq!(flint.get("/message").text(), "Howdy, edge!");
    assert_eq!(flint.get("/token").text(), "from-env");
}

#[test]
fn unknown_and_invalid_names_are_errors_for_the_guest() {
    let flint = variables_app().variable("api_token", "x").start();
    let undefined = flint.get("/greeting");
    undefined.assert_status(404);
    assert!(undefined.text().contains("Undefined"), "{undefined:?}");
    let invalid = flint.get("/Not-Valid");
    invalid.assert_status(404);
    assert!(invalid.text().contains("InvalidName"), "{invalid:?}");
}

#[test]
fn a_required_variable_without_a_value_stops_startup() {
    let out = run_flint(variables_app().up_args());
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stderr.contains("`api_token` is required"), "{out:?}");
    assert!(out.stderr.contains("SPIN_VARIABLE_API_TOKEN"), "{out:?}");
    assert!(out.stderr.contains("--variable api_token="), "{out:?}");
}

#[test]
fn secrets_never_reach_the_logs() {
    let secret = "s3cr3t-value-4417";
    let flint = variables_app()
        .variable("api_token", secret)
        .process_env("RUST_LOG", "trace")
        .start();
    assert_eq!(flint.get("/token").text(), secret);
    flint.wait_for_log_line(&["GET", "/token", "200"]);
    assert!(!flint.stderr().contains(secret), "{}", flint.stderr());
    assert!(!flint.stdout().contains(secret), "{}", flint.stdout());
}
