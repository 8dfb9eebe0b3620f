//! `fermyon:spin/llm@2.0.0`, linked so that components importing it load.
//! Flint has no model backend. As in Spin (`crates/factor-llm/src/host.rs`),
//! a model missing from the component's `ai_models` is `invalid-input`
//! with Spin's text; any other call answers what Spin answers without a
//! backend (its `NoopLlmEngine`, `crates/factor-llm/src/spin.rs`):
//! `runtime-error("Local LLM operations are not supported in this version
//! of Spin.")`. The operator learns of it once per component, in the log.

use std::collections::BTreeSet;
use std::sync::Mutex;

use wasmi::Error;

use super::{GuestState, host_fn};
use flint_engine::canon::{Args, HostFn, Ty, Value};
use flint_engine::{option_ty, result_ty};

/// Spin's text for a missing backend.
const NO_BACKEND: &str = "Local LLM operations are not supported in this version of Spin.";

/// `error`: `model-not-supported`, `runtime-error(string)`, `invalid-input(string)`.
const ERROR: Ty = Ty::Variant(&[None, Some(Ty::String), Some(Ty::String)]);
const RUNTIME_ERROR: u32 = 1;
const INVALID_INPUT: u32 = 2;

/// `inferencing-params`: `max-tokens`, `repeat-penalty`,
/// `repeat-penalty-last-n-token-count`, `temperature`, `top-k`, `top-p`.
const INFERENCING_PARAMS: Ty = Ty::Tuple(&[Ty::U32, Ty::F32, Ty::U32, Ty::F32, Ty::U32, Ty::F32]);
/// `inferencing-result`: `text`, `usage` (`prompt-token-count`, `generated-token-count`).
const INFERENCING_RESULT: Ty = Ty::Tuple(&[Ty::String, Ty::Tuple(&[Ty::U32, Ty::U32])]);
/// `embeddings-result`: `embeddings`, `usage` (`prompt-token-count`).
const EMBEDDINGS_RESULT: Ty = Ty::Tuple(&[Ty::List(&Ty::List(&Ty::F32)), Ty::Tuple(&[Ty::U32])]);

/// Components already told about: a process logs each once.
static WARNED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Whether this is the first call from `component` (so it is logged).
fn first_call(component: &str) -> bool {
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    !warned.contains(component) && warned.insert(component.to_owned())
}

/// Spin's answer to a call naming `model`, from a component allowed `allowed`.
fn refusal(allowed: &[String], model: &str) -> Value {
    if !allowed.iter().any(|m| m == model) {
        return Value::err(Value::case(
            INVALID_INPUT,
            Some(Value::string(format!(
                "The component does not have access to use '{model}'. To give the component access, add '{model}' to the 'ai_models' key for the component in your spin.toml manifest"
            ))),
        ));
    }
    Value::err(Value::case(RUNTIME_ERROR, Some(Value::string(NO_BACKEND))))
}

fn no_backend(state: &mut GuestState, model: &str) -> Result<Value, Error> {
    let caps = &state.host.caps;
    let component = &caps.component;
    if first_call(component) {
        tracing::warn!(
            target: "flint::llm",
            component = %component,
            model,
            "the component uses fermyon:spin/llm, which Flint does not provide: every call fails (runtime-error, or invalid-input for a model not in ai_models)"
        );
    }
    Ok(refusal(&caps.ai_models, model))
}

fn infer(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let model = args.string()?;
    no_backend(state, &model)
}

fn generate_embeddings(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let model = args.string()?;
    no_backend(state, &model)
}

pub const FUNCTIONS: &[HostFn<GuestState>] = &[
    host_fn!("infer", [Ty::String, Ty::String, option_ty!(INFERENCING_PARAMS)] -> result_ty!(INFERENCING_RESULT, ERROR), infer),
    host_fn!("generate-embeddings", [Ty::String, Ty::List(&Ty::String)] -> result_ty!(EMBEDDINGS_RESULT, ERROR), generate_embeddings),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_component_is_logged_once() {
        assert!(first_call("llm-test-a"));
        assert!(!first_call("llm-test-a"));
        assert!(first_call("llm-test-b"));
    }

    #[test]
    fn a_model_outside_ai_models_is_invalid_input_first() {
        let allowed = ["llama2-chat".to_owned()];
        let Value::Variant(1, Some(error)) = refusal(&allowed, "other") else {
            panic!("an err");
        };
        let Value::Variant(INVALID_INPUT, Some(text)) = *error else {
            panic!("invalid-input");
        };
        assert!(
            matches!(*text, Value::String(t) if t.starts_with("The component does not have access to use 'other'."))
        );
        assert_eq!(
            refusal(&allowed, "llama2-chat"),
            Value::err(Value::case(RUNTIME_ERROR, Some(Value::string(NO_BACKEND))))
        );
    }

    #[test]
    fn layouts_match_the_wit() {
        assert_eq!(INFERENCING_PARAMS.size(), 24);
        // option<inferencing-params>: a discriminant, then the 4-aligned record.
        assert_eq!(option_ty!(INFERENCING_PARAMS).size(), 28);
        assert_eq!(INFERENCING_RESULT.size(), 16);
        assert_eq!(EMBEDDINGS_RESULT.size(), 12);
        // error: a discriminant, then a string.
        assert_eq!(ERROR.size(), 12);
    }
}
