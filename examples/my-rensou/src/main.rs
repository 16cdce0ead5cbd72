//! `my-rensou`: the `rensou` binary with this crate's plugins (the `bars` modality, the `spread`
//! probe and the `gelu-mlp` net) linked next to the built-in ones.

use rensou_example as _; // linking the crate registers its plugins

fn main() -> std::process::ExitCode {
    rensou::cli::main()
}
