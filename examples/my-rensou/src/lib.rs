//! How to extend rensou without forking it: this crate defines a modality ([`bars`]), a
//! probe ([`spread`]) and a net ([`gelu_mlp`]) and builds its own `rensou`-compatible binary, `my-rensou`
//! (`src/main.rs`: three lines). Nothing under `apps/` or in the core crates changes for it.

#![warn(missing_docs)]

pub mod bars;
pub mod gelu_mlp;
pub mod spread;
