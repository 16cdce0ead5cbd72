//! `rensou`: build datasets, train multimodal VAEs and run the number-sense study from one binary.
//!
//! Everything lives in the library (`rensou::cli`), so a crate of one's own plugins builds the
//! same binary with them linked (see docs/write-a-probe.md).

fn main() -> std::process::ExitCode {
    rensou::cli::main()
}
