//! rensou's models: distributions ([`dist`]), the encoder and decoder nets ([`nn`], with the
//! fused likelihood kernel), the multimodal VAE ([`mmvae`]) and the extension point for how it
//! joins its modalities' posteriors ([`fusion`]).
//!
//! Generic over burn backends; the binary picks the backend. Depends on `rensou-api` for the
//! likelihood and net kinds a modality declares, and on nothing that touches files.
#![warn(missing_docs)]

pub mod dist;
pub mod fusion;
pub mod mmvae;
pub mod nn;
