//! How to extend rensou without forking it: this crate defines a modality ([`bars`]) and a
//! probe ([`spread`]) and builds its own `rensou`-compatible binary, `my-rensou`
//! (`src/main.rs`: three lines). Nothing under `apps/` or in the core crates changes for it.

#![warn(missing_docs)]

pub mod bars;
pub mod spread;
