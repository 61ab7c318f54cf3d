//! Replays every committed fuzz input (the seed corpus `fuzz/corpus/<target>/`
//! and the minimized findings `fuzz/regressions/<target>/`) through the same
//! harness the libFuzzer targets run (`fuzz/harness.rs`), on stable Rust, so
//! that the findings stay fixed without a nightly toolchain.
//!
//! A finding in code another branch owns is listed in `fuzz/regressions/OPEN`
//! until it is fixed; for those this test asserts that the input still
//! panics, so that the fix makes it fail with a reminder to take the entry
//! out of the list (and the input then replays like every other one).

#[path = "../fuzz/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// `<root>/<target>/<file>` → (target, files), sorted.
fn inputs(root: &Path) -> Vec<(String, Vec<PathBuf>)> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for d in dirs {
        let name = d.file_name().unwrap().to_string_lossy().into_owned();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        out.push((name, files));
    }
    out
}

/// `fuzz/regressions/OPEN`: `TARGET/FILE  where and what` per line, `#` comments.
fn open_findings() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(fuzz_dir().join("regressions/OPEN")).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((f, why)) => (f.to_string(), why.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

fn target(name: &str, root: &str) -> harness::Harness {
    harness::target_fn(name).unwrap_or_else(|| {
        panic!("fuzz/{root}/{name}: no fuzz target of that name in fuzz/harness.rs TARGETS")
    })
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn every_target_has_seeds_and_a_libfuzzer_binary() {
    let corpus: BTreeMap<String, usize> = inputs(&fuzz_dir().join("corpus"))
        .into_iter()
        .map(|(t, files)| (t, files.len()))
        .collect();
    for (name, _) in harness::TARGETS {
        assert!(
            corpus.get(*name).is_some_and(|n| *n > 0),
            "fuzz/corpus/{name} has no seeds"
        );
        let bin = fuzz_dir().join(format!("fuzz_targets/{name}.rs"));
        let src =
            std::fs::read_to_string(&bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        assert!(
            src.contains(&format!("harness::{name}(data)")),
            "{} does not call harness::{name}",
            bin.display()
        );
    }
}

#[test]
fn corpus_replays_without_panic() {
    let mut n = 0;
    for (name, files) in inputs(&fuzz_dir().join("corpus")) {
        let f = target(&name, "corpus");
        for p in files {
            eprintln!("corpus/{name}/{}", p.file_name().unwrap().to_string_lossy());
            f(&read(&p));
            n += 1;
        }
    }
    assert!(n > 0, "no corpus replayed");
}

#[test]
fn regressions_replay_without_panic() {
    let open = open_findings();
    let root = fuzz_dir().join("regressions");
    let mut seen = Vec::new();
    for (name, files) in inputs(&root) {
        let f = target(&name, "regressions");
        for p in files {
            let rel = format!("{name}/{}", p.file_name().unwrap().to_string_lossy());
            let data = read(&p);
            match open.get(&rel) {
                None => {
                    eprintln!("regressions/{rel}");
                    f(&data);
                }
                Some(why) => {
                    let r = std::panic::catch_unwind(|| f(&data));
                    assert!(
                        r.is_err(),
                        "fuzz/regressions/{rel} no longer panics ({why}): take it out of \
                         fuzz/regressions/OPEN so that it is replayed as fixed"
                    );
                    seen.push(rel);
                }
            }
        }
    }
    for rel in open.keys() {
        assert!(
            seen.contains(rel),
            "fuzz/regressions/OPEN names {rel}, which is not a file under fuzz/regressions/"
        );
    }
}
