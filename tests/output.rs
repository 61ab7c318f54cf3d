//! Offline: the human report fits the width it is given and never splits a
//! word (docs/output.md), `-o wide` lists everything, `-o yaml` is the same
//! document as `-o json`, and the binary takes its width from `COLUMNS`
//! when piped. No lab, no Envoy: the seed snapshot shipped in docs/examples.

use kubectl_mesh503::analyze::{analyze, Report};
use kubectl_mesh503::report::layout::{
    width_of, MAX_WIDTH, PIPED_WIDTH, TOKEN_BREAKS, WEAK_BREAKS,
};
use kubectl_mesh503::report::{render, Output};
use kubectl_mesh503::snapshot::Snapshot;
use std::path::PathBuf;
use std::process::Command;

const SEED: &str = "docs/examples/seed-2018.snapshot.json";

fn seed() -> Report {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(SEED);
    analyze(&Snapshot::load(&p).unwrap_or_else(|e| panic!("{e}")))
}

fn assert_fits(text: &str, width: usize) {
    for (i, l) in text.lines().enumerate() {
        assert!(
            width_of(l) <= width,
            "line {} is {} columns, more than {width}:\n{l}\n\n{text}",
            i + 1,
            width_of(l)
        );
    }
}

/// Every word of `unwrapped`, in order, is a word of `wrapped`, or the
/// pieces of a token too long for a line: each piece but the last ends
/// its line with one of TOKEN_BREAKS or WEAK_BREAKS, and the token is longer than half
/// the width. Nothing else is added or lost.
fn assert_no_word_split(wrapped: &str, unwrapped: &str, width: usize) {
    // The summary's header depends on the layout (SUBJECT beside FINDING,
    // under it, or no header when narrow): compare what is under it.
    let body = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with("#  SEVERITY"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (wrapped, unwrapped) = (body(wrapped), body(unwrapped));
    // A command broken for the shell ends its lines with ` \`.
    let wrapped = wrapped.replace(" \\\n", "\n");
    let w: Vec<(&str, bool)> = wrapped
        .lines()
        .flat_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let n = words.len();
            words
                .into_iter()
                .enumerate()
                .map(move |(i, x)| (x, i + 1 == n))
        })
        .collect();
    let mut j = 0;
    for word in unwrapped.split_whitespace() {
        let Some(&(piece, mut last)) = w.get(j) else {
            panic!("wrapped output ends before {word:?}");
        };
        j += 1;
        let mut acc = piece.to_string();
        while acc != word {
            assert!(
                word.starts_with(&acc)
                    && last
                    && (acc.ends_with(TOKEN_BREAKS) || acc.ends_with(WEAK_BREAKS))
                    && width_of(word) > width / 2,
                "word {word:?} split as {acc:?} (end of line: {last})"
            );
            let (p, l) = w[j];
            j += 1;
            acc.push_str(p);
            last = l;
        }
    }
    assert_eq!(j, w.len(), "wrapped output has extra words");
}

fn table(r: &Report, output: Output, width: usize) -> String {
    render(r, output, false, width)
}

#[test]
fn seed_at_80_columns_fits_and_splits_no_word() {
    let r = seed();
    let text = table(&r, Output::Table, 80);
    assert_fits(&text, 80);
    assert_no_word_split(&text, &table(&r, Output::Table, MAX_WIDTH), 80);
    insta::assert_snapshot!("seed_2018_table_80", text);
}

#[test]
fn seed_at_120_columns_fits_and_splits_no_word() {
    let r = seed();
    let text = table(&r, Output::Table, 120);
    assert_fits(&text, 120);
    assert_no_word_split(&text, &table(&r, Output::Table, MAX_WIDTH), 120);
    insta::assert_snapshot!("seed_2018_table_120", text);
}

#[test]
fn every_width_from_40_fits_in_both_human_formats() {
    let r = seed();
    for output in [Output::Table, Output::Wide] {
        let unwrapped = table(&r, output, MAX_WIDTH);
        for width in (40..=200).step_by(7) {
            let text = table(&r, output, width);
            // Lines of the block to paste are never wrapped; the seed's fit in 40.
            assert_fits(&text, width);
            assert_no_word_split(&text, &unwrapped, width);
        }
    }
}

#[test]
fn the_summary_does_not_repeat_the_claims() {
    let r = seed();
    for width in [80, 120, 200] {
        let text = table(&r, Output::Table, width);
        for f in &r.findings {
            let first_words: String = f
                .claim
                .split_whitespace()
                .take(6)
                .collect::<Vec<_>>()
                .join(" ");
            let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
            assert_eq!(
                flat.matches(&first_words).count(),
                1,
                "claim printed once at {width}: {first_words}"
            );
        }
    }
}

#[test]
fn plurals_are_words_not_parentheses() {
    let r = seed();
    let text = table(&r, Output::Wide, MAX_WIDTH);
    assert!(
        text.contains("2 findings, 1 error, most likely first"),
        "{text}"
    );
    assert!(text.contains("1 legacy authentication policy;"), "{text}");
    assert!(text.contains("Repairs 2 calls:"), "{text}");
    for bad in ["(s)", "(ies)", "(es)"] {
        assert!(!text.contains(bad), "{bad} in:\n{text}");
    }
}

#[test]
fn wide_lists_every_evidence_item_and_table_caps_them() {
    let mut r = seed();
    let f = &mut r.findings[0];
    let one = f.evidence[0].clone();
    let extra = kubectl_mesh503::report::table::EVIDENCE_SHOWN + 3;
    for _ in 0..extra {
        f.evidence.push(one.clone());
    }
    let total = f.evidence.len();
    let wide = table(&r, Output::Wide, 100);
    let compact = table(&r, Output::Table, 100);
    let count = |t: &str| t.matches(&format!("[config] {}:", one.source)).count();
    assert_eq!(count(&wide), 1 + extra, "{wide}");
    assert!(count(&compact) < 1 + extra, "{compact}");
    let more = total - kubectl_mesh503::report::table::EVIDENCE_SHOWN;
    assert!(
        compact.contains(&format!("… and {more} more items (-o wide shows them all)")),
        "{compact}"
    );
    assert!(!wide.contains("-o wide shows"), "{wide}");
}

fn cli(args: &[&str], columns: Option<&str>) -> (Option<i32>, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kubectl-mesh503"));
    c.args(args)
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match columns {
        Some(v) => c.env("COLUMNS", v),
        None => c.env_remove("COLUMNS"),
    };
    let out = c.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
    )
}

#[test]
fn piped_output_takes_columns_else_100() {
    let args = ["diagnose", "--snapshot", SEED];
    let (code, at80) = cli(&args, Some("80"));
    assert_eq!(code, Some(1), "an error finding exits 1");
    assert_eq!(at80, table(&seed(), Output::Table, 80));
    let (_, unset) = cli(&args, None);
    assert_eq!(unset, table(&seed(), Output::Table, PIPED_WIDTH));
    let (_, junk) = cli(&args, Some("wide"));
    assert_eq!(junk, unset, "a COLUMNS that is not a number is ignored");
    let (_, tiny) = cli(&args, Some("10"));
    assert_fits(&tiny, 40);
}

#[test]
fn yaml_is_the_json_document() {
    let (jcode, json) = cli(&["diagnose", "--snapshot", SEED, "-o", "json"], None);
    let (ycode, yaml) = cli(&["diagnose", "--snapshot", SEED, "-o", "yaml"], None);
    assert_eq!((jcode, ycode), (Some(1), Some(1)));
    let j: serde_json::Value = serde_json::from_str(&json).unwrap();
    let y: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(j, y);
    assert_eq!(y["schema"], "mesh503.io/report/v2");
}

/// The recorded seed (1.24) sidecars' config dumps as `tls-check
/// --config-dump` files.
fn seed_dumps(dir: &std::path::Path) -> Vec<String> {
    let snap: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/recordings/seed-strict-no-automtls.snapshot.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut files = Vec::new();
    for p in snap["proxies"].as_array().unwrap() {
        let mut configs = Vec::new();
        for k in ["clusters_config", "listeners_config"] {
            let v = match &p[k] {
                serde_json::Value::String(s) => serde_json::from_str(s).unwrap(),
                v => v.clone(),
            };
            configs.extend(v["configs"].as_array().cloned().unwrap_or_default());
        }
        let f = dir.join(format!("{}.json", p["role"].as_str().unwrap()));
        std::fs::write(&f, serde_json::json!({ "configs": configs }).to_string()).unwrap();
        files.push(f.display().to_string());
    }
    files
}

#[test]
fn tls_check_moves_reasons_under_the_table_when_it_is_too_wide() {
    let dir = tempfile::tempdir().unwrap();
    let files = seed_dumps(dir.path());
    let mut args = vec!["tls-check"];
    for f in &files {
        args.extend(["--config-dump", f.as_str()]);
    }
    let (_, narrow) = cli(&args, Some("100"));
    assert_fits(&narrow, 100);
    assert!(
        !narrow.lines().next().unwrap().contains("REASON"),
        "{narrow}"
    );
    assert!(narrow.contains("\nReasons:\n"), "{narrow}");
    assert!(narrow.contains("httpbin.foo:8000"), "short hosts: {narrow}");
    let (_, roomy) = cli(&args, Some("300"));
    assert!(roomy.lines().next().unwrap().contains("REASON"), "{roomy}");
    assert!(
        roomy.contains("httpbin.foo.svc.cluster.local:8000"),
        "{roomy}"
    );
    assert!(!roomy.lines().any(|l| l.ends_with(' ')), "{roomy}");
    args.extend(["-o", "wide"]);
    let (_, wide) = cli(&args, Some("100"));
    assert!(wide.lines().next().unwrap().contains("REASON"), "{wide}");
}
