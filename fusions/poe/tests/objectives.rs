//! The `poe` objective against the PyTorch reference (`bench/fusion_reference.py`): values
//! and every parameter gradient for M = 1, 2 and 3, with and without the prior expert.

use rensou_poe as _; // the fusion under test
use rensou_testkit::{check_values_and_gradients_match_pytorch, serial};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/objectives.json"
);

#[test]
fn values_and_gradients_match_pytorch() {
    let _serial = serial();
    check_values_and_gradients_match_pytorch(FIXTURE, 6);
}
