//! The compiled core of `mlflow-descope-auth`.
//!
//! This file only wires modules together; the bindings live in `bindings.rs`.

pub mod error;
pub mod levels;
pub mod routes;

#[cfg(feature = "python")]
mod bindings;
