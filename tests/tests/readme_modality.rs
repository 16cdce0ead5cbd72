//! The guides quote real code: every Rust block of `docs/write-a-modality.md` must appear in
//! `modalities/audio/src` and every Rust block of `docs/write-a-fusion.md` in
//! `fusions/mopoe/src/lib.rs` (compared line by line, ignoring indentation), and the commands
//! they show must name real subcommands and flags.

use std::path::Path;

mod common;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace root")
}

/// The lines of `text` with surrounding whitespace removed, blank lines dropped.
fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The guide `docs/{name}`, whole.
fn read_guide(name: &str) -> String {
    let path = root().join("docs").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fenced blocks of `text` in language `lang`.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let open = format!("```{lang}\n");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(&open) {
        let body = &rest[i + open.len()..];
        let end = body.find("```").expect("unclosed code block");
        out.push(body[..end].to_owned());
        rest = &body[end + 3..];
    }
    out
}

#[test]
fn the_modality_guide_quotes_the_audio_crate() {
    let guide = read_guide("write-a-modality.md");
    let mut source = String::new();
    let src = root().join("modalities/audio/src");
    let mut files: Vec<_> = std::fs::read_dir(&src)
        .expect("modalities/audio/src")
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    for f in files {
        source.push_str(&std::fs::read_to_string(&f).expect("source file"));
        source.push('\n');
    }
    let source = lines(&source);
    let rust = blocks(&guide, "rust");
    assert!(
        rust.len() >= 3,
        "the guide shows the Modality impl, the config impl and the registration"
    );
    for block in rust {
        let want = lines(&block);
        let found = source.windows(want.len()).any(|w| w == want.as_slice());
        assert!(
            found,
            "docs/write-a-modality.md block not found verbatim in modalities/audio/src:\n{block}"
        );
    }
    // The `use` line the guide promises is the one the binary has.
    let lib = std::fs::read_to_string(root().join("apps/rensou/src/lib.rs")).expect("lib.rs");
    assert!(guide.contains("`use rensou_audio as _;`") && lib.contains("use rensou_audio as _;"));
    assert!(guide.contains("`apps/rensou/src/lib.rs`"));
}

#[test]
fn the_modality_guide_commands_exist() {
    let guide = read_guide("write-a-modality.md");
    let sh = blocks(&guide, "sh").join("\n");
    for needle in [
        "data build --modalities oscn,cmnist,audio",
        "data preview",
        "train --data",
        "paper --modalities oscn,cmnist,audio",
    ] {
        assert!(sh.contains(needle), "guide lacks `{needle}`");
    }
    // Every flag the guide uses is one the binary takes.
    let tmp = std::env::temp_dir();
    for (cmd, flags) in [
        (
            &["data", "build", "--help"][..],
            &["--modalities", "--out"][..],
        ),
        (&["data", "preview", "--help"], &["--out"]),
        (
            &["train", "--help"],
            &["--data", "--out", "--epochs", "--k"],
        ),
        (&["paper", "--help"], &["--modalities"]),
    ] {
        let help = common::ok(&common::rensou(&tmp, cmd));
        for f in flags {
            assert!(help.contains(f), "`rensou {}` has no {f}", cmd.join(" "));
        }
    }
}

#[test]
fn the_fusion_guide_quotes_the_mopoe_crate() {
    let guide = read_guide("write-a-fusion.md");
    let source = lines(
        &std::fs::read_to_string(root().join("fusions/mopoe/src/lib.rs")).expect("mopoe source"),
    );
    let rust = blocks(&guide, "rust");
    assert_eq!(
        rust.len(),
        3,
        "the guide shows the config, the registration and the math"
    );
    for block in rust {
        let want = lines(&block);
        let found = source.windows(want.len()).any(|w| w == want.as_slice());
        assert!(
            found,
            "docs/write-a-fusion.md block not found verbatim in fusions/mopoe/src/lib.rs:\n{block}"
        );
    }
    let lib = std::fs::read_to_string(root().join("apps/rensou/src/lib.rs")).expect("lib.rs");
    assert!(guide.contains("`use rensou_mopoe as _;`") && lib.contains("use rensou_mopoe as _;"));
    // The commands it shows take the flags it gives them.
    let sh = blocks(&guide, "sh").join("\n");
    let tmp = std::env::temp_dir();
    for (cmd, flag) in [
        (&["train", "--help"][..], "--fusion"),
        (&["paper", "--help"], "--fusions"),
        (&["bench", "train", "--help"], "--fusion"),
    ] {
        assert!(
            sh.contains(&format!("{} {flag} ", cmd[..cmd.len() - 1].join(" "))),
            "{sh}"
        );
        let help = common::ok(&common::rensou(&tmp, cmd));
        assert!(
            help.contains(flag),
            "`rensou {}` has no {flag}",
            cmd.join(" ")
        );
    }
}
