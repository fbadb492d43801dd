//! The compiled core of `mlflow-descope-auth`.
//!
//! This file only wires modules together; the bindings live in `bindings.rs`.

pub mod cache;
pub mod claims;
pub mod core;
pub mod descope;
pub mod error;
pub mod keys;
pub mod levels;
pub mod routes;
pub mod sdk;
pub mod token;

#[cfg(feature = "python")]
mod bindings;

#[cfg(test)]
mod testkit;
