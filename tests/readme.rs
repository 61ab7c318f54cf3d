//! The README stays true: its sample output is exactly what its first
//! command prints at 80 columns (`UPDATE_README=1 cargo test --test readme`
//! rewrites the block from the binary), and its two commands and the lab
//! walkthrough are written as a newcomer must type them. No lab needed.

use std::path::PathBuf;
use std::process::Command;

const START: &str = "<!-- sample-output: COLUMNS=80 cargo run -q -- diagnose --snapshot docs/examples/seed-2018.snapshot.json -->\n```text\n";
const END: &str = "```\n<!-- /sample-output -->";

fn readme_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md")
}

/// What command 1 prints at 80 columns, without colour, and its exit code.
fn command_1() -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-mesh503"))
        .args([
            "diagnose",
            "--snapshot",
            "docs/examples/seed-2018.snapshot.json",
        ])
        .env("COLUMNS", "80")
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).expect("the report is UTF-8"),
    )
}

#[test]
fn the_sample_output_is_what_command_1_prints() {
    let (code, printed) = command_1();
    assert_eq!(
        code,
        Some(1),
        "command 1 exits 1 by design (an error finding)"
    );
    let readme = std::fs::read_to_string(readme_path()).unwrap();
    let start = readme
        .find(START)
        .unwrap_or_else(|| panic!("README.md has no sample block starting {START:?}"))
        + START.len();
    let end = start
        + readme[start..]
            .find(END)
            .unwrap_or_else(|| panic!("README.md's sample block has no end {END:?}"));
    if std::env::var_os("UPDATE_README").is_some_and(|v| v == "1") {
        let updated = format!("{}{printed}{}", &readme[..start], &readme[end..]);
        std::fs::write(readme_path(), updated).unwrap();
        eprintln!("README.md: sample output rewritten from the binary");
        return;
    }
    let shown = &readme[start..end];
    assert!(
        shown == printed,
        "README.md's sample output differs from what command 1 prints; \
         run `UPDATE_README=1 cargo test --test readme` and review the diff.\n\
         --- README ---\n{shown}\n--- printed ---\n{printed}"
    );
}

#[test]
fn the_readme_says_what_a_newcomer_must_type() {
    let readme = std::fs::read_to_string(readme_path()).unwrap();
    for needed in [
        // The two commands, verbatim.
        "\ncargo run -q -- diagnose --snapshot docs/examples/seed-2018.snapshot.json\n",
        "\nscripts/test\n",
        // Exit 1 is expected, and what it does to `&&`.
        "Exits 1 by design",
        "&&",
        // What scripts/test needs.
        "rustfmt",
        "clippy",
        "python3 with venv",
        // The lab: an absolute ENVOY_BIN, the lab through cargo, a second terminal.
        "export ENVOY_BIN=\"$(ls \"$PWD\"/.lab-tools/",
        "cargo run -q -p mesh503-lab -- up tests/scenarios/seed-2018.yaml",
        "Terminal 2",
        "export KUBECONFIG=",
        "-o table|wide|json|yaml",
    ] {
        assert!(readme.contains(needed), "README.md lacks {needed:?}");
    }
    assert!(
        !readme.contains("(nothing else)"),
        "scripts/test needs more than a Rust toolchain"
    );
}
