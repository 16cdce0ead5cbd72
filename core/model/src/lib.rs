//! rensou's models: distributions ([`dist`]), the encoder and decoder nets ([`nn`], with the
//! fused likelihood kernel) and the multimodal VAE with its objectives ([`mmvae`]).
//!
//! Generic over burn backends; the binary picks the backend. Depends on `rensou-api` for the
//! likelihood and net kinds a modality declares, and on nothing that touches files.
#![warn(missing_docs)]

pub mod dist;
pub mod mmvae;
pub mod nn;
