//! The magnitude figures (distance matrix of the number means, distance against |i − j|).

use rensou_core::probe::ProbeContext;

use crate::magnitude::Magnitude;

/// Writes the figures of `m` for `modality` into the probe's directory.
pub(crate) fn write(
    _ctx: &ProbeContext<'_>,
    _modality: &str,
    _m: &Magnitude,
) -> rensou_core::Result<()> {
    Ok(())
}
