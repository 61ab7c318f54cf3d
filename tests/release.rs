//! The release pipeline, run locally: `scripts/release` packages the host's
//! build (the test's own debug binaries, through `--binary`) and renders the
//! krew manifest from `.krew.yaml`; the manifest passes krew's validation
//! rules (`krew` module), the sha256 is the archive's, and the archive,
//! installed the way krew installs it, runs `kubectl mesh503 --help` and
//! completes through kubectl.

mod common;
mod krew;
use common::kubectl_path;

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const REPO_URL: &str = "https://github.com/mesh503/kubectl-mesh503";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn version() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

/// krew's os/arch for the machine running the test.
fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("no release for arch {other}"),
    };
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    (os, arch)
}

fn release(args: &[&str]) -> Output {
    let out = Command::new("bash")
        .arg(repo().join("scripts/release"))
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .expect("bash runs scripts/release");
    out
}

fn show(o: &Output) -> String {
    format!(
        "exit={:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Copies of the built executables without debug info (`strip`), so that
/// packing and unpacking ~300 MB of debug symbols does not dominate the test;
/// the code is the debug build's.
fn stripped_builds(dir: &Path) -> (PathBuf, PathBuf) {
    let mut out = Vec::new();
    for (name, built) in [
        ("kubectl-mesh503", env!("CARGO_BIN_EXE_kubectl-mesh503")),
        (
            "kubectl_complete-mesh503",
            env!("CARGO_BIN_EXE_kubectl_complete-mesh503"),
        ),
    ] {
        let dest = dir.join(name);
        let s = Command::new("strip")
            .arg("--strip-debug")
            .arg("-o")
            .arg(&dest)
            .arg(built)
            .output()
            .expect("strip (binutils) runs");
        assert!(s.status.success(), "strip {built}\n{}", show(&s));
        out.push(dest);
    }
    (out.remove(0), out.remove(0))
}

#[test]
fn host_release_is_a_valid_krew_plugin_that_installs_and_runs() {
    let work = tempfile::tempdir().expect("temp dir");
    let (bin, helper) = stripped_builds(work.path());
    let dist = work.path().join("dist");
    let out = release(&[
        "--binary",
        bin.to_str().unwrap(),
        "--complete-binary",
        helper.to_str().unwrap(),
        "--out",
        dist.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", show(&out));

    // The manifest: where krew-index expects it, and valid by krew's rules.
    let manifest_path = dist.join("plugins/mesh503.yaml");
    let manifest = krew::validate_file(&manifest_path)
        .unwrap_or_else(|e| panic!("{}: {e}", manifest_path.display()));
    assert_eq!(manifest.name, "mesh503");
    assert_eq!(manifest.version, version(), "the version is Cargo.toml's");
    let (os, arch) = host_platform();
    assert_eq!(
        manifest.platforms.len(),
        1,
        "locally only the host is built"
    );
    let platform = &manifest.platforms[0];
    assert_eq!(platform.matches, [(os.to_string(), arch.to_string())]);

    // The uri names the GitHub release asset; the sha256 is the archive's.
    let asset = format!("kubectl-mesh503_{}_{os}_{arch}.tar.gz", version());
    assert_eq!(
        platform.uri,
        format!("{REPO_URL}/releases/download/{}/{asset}", version())
    );
    let archive = dist.join(&asset);
    let sha = sha256_hex(&archive);
    assert_eq!(platform.sha256, sha, "manifest sha256 of {asset}");
    let sidecar = std::fs::read_to_string(dist.join(format!("{asset}.sha256"))).unwrap();
    assert_eq!(sidecar, format!("{sha}  {asset}\n"));

    // The archive: the two executables and LICENSE, at the top level.
    let unpacked = tempfile::tempdir().unwrap();
    let mut names = krew::extract_tar_gz(&archive, unpacked.path()).expect("unpacks");
    names.sort();
    assert_eq!(
        names,
        ["LICENSE", "kubectl-mesh503", "kubectl_complete-mesh503"]
    );
    assert_eq!(
        std::fs::read(unpacked.path().join("LICENSE")).unwrap(),
        std::fs::read(repo().join("LICENSE")).unwrap()
    );

    // Installed as krew does, in a temporary HOME.
    let home = work.path().join("home");
    let krew_root = home.join(".krew");
    let installed =
        krew::install(&manifest, platform, &archive, &krew_root).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(installed, krew_root.join("store/mesh503").join(version()));
    let bin_dir = krew_root.join("bin");
    let kubectl = |args: &[&str]| {
        Command::new(kubectl_path())
            .args(args)
            .env("HOME", &home)
            .env("PATH", &bin_dir)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .output()
            .expect("kubectl runs")
    };
    let help = kubectl(&["mesh503", "--help"]);
    assert!(help.status.success(), "{}", show(&help));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("Usage: kubectl mesh503"), "{text}");
    assert!(text.contains("diagnose"), "{text}");

    // The completion step krew cannot do (docs/completion.md): one link.
    std::os::unix::fs::symlink("kubectl-mesh503", bin_dir.join("kubectl_complete-mesh503"))
        .unwrap();
    let comp = kubectl(&["__complete", "mesh503", "diag"]);
    assert!(comp.status.success(), "{}", show(&comp));
    let text = String::from_utf8_lossy(&comp.stdout);
    assert!(text.starts_with("diagnose\t"), "{}", show(&comp));
    assert!(text.ends_with(":4\n"), "{}", show(&comp));
    // The packaged helper answers by itself too.
    let direct = Command::new(installed.join("kubectl_complete-mesh503"))
        .arg("")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&direct.stdout).contains("tls-check\t"));
}

/// The platforms CI builds (release.yml's matrix), as krew os/arch.
fn workflow_platforms() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join(".github/workflows/release.yml")).unwrap();
    let wf: serde_yaml::Value = serde_yaml::from_str(&text).expect("release.yml is YAML");
    let include = wf["jobs"]["archives"]["strategy"]["matrix"]["include"]
        .as_sequence()
        .expect("jobs.archives.strategy.matrix.include");
    let mut out: Vec<(String, String)> = include
        .iter()
        .map(|m| {
            let t = m["target"].as_str().expect("target");
            let os = if t.contains("-linux-") {
                "linux"
            } else if t.ends_with("-apple-darwin") {
                "darwin"
            } else if t.contains("-windows-") {
                "windows"
            } else {
                panic!("unexpected target {t}")
            };
            let arch = if t.starts_with("x86_64-") {
                "amd64"
            } else if t.starts_with("aarch64-") {
                "arm64"
            } else {
                panic!("unexpected target {t}")
            };
            if os == "linux" {
                assert!(t.ends_with("-musl"), "{t}: linux builds are static (musl)");
            }
            (os.to_string(), arch.to_string())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_platform_ci_builds_renders_into_a_valid_manifest() {
    let dist = tempfile::tempdir().unwrap();
    let mut platforms = workflow_platforms();
    let mut expected: Vec<(String, String)> = [
        ("darwin", "amd64"),
        ("darwin", "arm64"),
        ("linux", "amd64"),
        ("linux", "arm64"),
        ("windows", "amd64"),
    ]
    .iter()
    .map(|(o, a)| (o.to_string(), a.to_string()))
    .collect();
    expected.sort();
    platforms.dedup();
    assert_eq!(platforms, expected, "release.yml builds the five platforms");
    // Stand-in archives (distinct bytes) under the names CI produces.
    for (os, arch) in &platforms {
        let ext = if os == "windows" { "zip" } else { "tar.gz" };
        let name = format!("kubectl-mesh503_{}_{os}_{arch}.{ext}", version());
        std::fs::write(dist.path().join(name), format!("{os}/{arch}")).unwrap();
    }
    let out = release(&[
        "manifest",
        "--out",
        dist.path().to_str().unwrap(),
        "--require-all-platforms",
        "--expect-version",
        &version(),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let m = krew::validate_file(&dist.path().join("plugins/mesh503.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut covered: Vec<(String, String)> =
        m.platforms.iter().flat_map(|p| p.matches.clone()).collect();
    covered.sort();
    assert_eq!(covered, expected, "one manifest platform per CI platform");
    for p in &m.platforms {
        let asset = p.uri.rsplit('/').next().unwrap();
        assert!(
            p.uri
                .starts_with(&format!("{REPO_URL}/releases/download/{}/", version())),
            "{}",
            p.uri
        );
        assert_eq!(p.sha256, sha256_hex(&dist.path().join(asset)), "{asset}");
        let windows = p.matches[0].0 == "windows";
        let exe = if windows { ".exe" } else { "" };
        assert_eq!(p.bin, format!("kubectl-mesh503{exe}"));
        assert_eq!(asset.ends_with(".zip"), windows, "{asset}");
        let froms: Vec<&str> = p.files.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            froms,
            [
                format!("kubectl-mesh503{exe}").as_str(),
                format!("kubectl_complete-mesh503{exe}").as_str(),
                "LICENSE"
            ]
        );
    }
}

#[test]
fn a_missing_archive_fails_a_full_release_and_names_it() {
    let dist = tempfile::tempdir().unwrap();
    let name = format!("kubectl-mesh503_{}_linux_amd64.tar.gz", version());
    std::fs::write(dist.path().join(&name), "x").unwrap();
    let out = release(&[
        "manifest",
        "--out",
        dist.path().to_str().unwrap(),
        "--require-all-platforms",
    ]);
    assert!(!out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("darwin_arm64.tar.gz") && err.contains("windows_amd64.zip"),
        "{err}"
    );
    assert!(
        !dist.path().join("plugins/mesh503.yaml").exists(),
        "no partial manifest left"
    );
    // Without --require-all-platforms the present archive is enough.
    let out = release(&["manifest", "--out", dist.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", show(&out));
    let m = krew::validate_file(&dist.path().join("plugins/mesh503.yaml")).unwrap();
    assert_eq!(m.platforms.len(), 1);
}

#[test]
fn bad_invocations_say_what_is_wrong() {
    let dist = tempfile::tempdir().unwrap();
    let d = dist.path().to_str().unwrap();
    let out = release(&["--binary", "/nonexistent/kubectl-mesh503", "--out", d]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/kubectl-mesh503: no such file"),
        "{}",
        show(&out)
    );
    let out = release(&["--expect-version", "v0.0.0-not-this", "--dry-run"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("v0.0.0-not-this"),
        "{}",
        show(&out)
    );
    let out = release(&["--target", "riscv64gc-unknown-linux-gnu", "--dry-run"]);
    assert!(!out.status.success(), "{}", show(&out));
    let out = release(&["--frobnicate"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--frobnicate"));
    let out = release(&["manifest", "--out", d]);
    assert!(
        !out.status.success(),
        "no archive, no manifest: {}",
        show(&out)
    );
}

#[test]
fn without_binary_a_real_release_build_is_run() {
    // --dry-run prints the commands instead of building for minutes.
    let out = release(&["--dry-run"]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let (os, arch) = host_platform();
    assert!(
        text.contains("cargo build --release --locked --target ")
            && text.contains("--bin kubectl-mesh503 --bin kubectl_complete-mesh503"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "dist/kubectl-mesh503_{}_{os}_{arch}.tar.gz",
            version()
        )),
        "{text}"
    );
    let out = release(&[
        "build",
        "--target",
        "aarch64-unknown-linux-musl",
        "--build-cmd",
        "cargo zigbuild",
        "--dry-run",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("cargo zigbuild --release --locked --target aarch64-unknown-linux-musl"),
        "{}",
        show(&out)
    );
    assert!(text.contains("_linux_arm64.tar.gz"), "{text}");
}

/// The validator itself rejects what krew rejects (so a pass means something).
#[test]
fn the_validator_rejects_what_krew_rejects() {
    let good = std::fs::read_to_string(repo().join(".krew.yaml"))
        .unwrap()
        .replace("{{ .TagName }}", "v1.2.3");
    // Render the addURIAndSha lines by hand for this check.
    let good: String = good
        .lines()
        .map(|l| {
            if let Some(start) = l.find("{{addURIAndSha \"") {
                let url = &l[start + 16..];
                let url = &url[..url.find('"').unwrap()];
                format!("    uri: {url}\n    sha256: {}", "ab".repeat(32))
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    krew::validate("mesh503", &good).unwrap_or_else(|e| panic!("{e}\n{good}"));
    let cases: &[(&str, String)] = &[
        ("name", good.clone()),
        ("apiVersion", good.replace("v1alpha2", "v1alpha1")),
        ("version", good.replace("version: v1.2.3", "version: 1.2.3")),
        (
            "version",
            good.replace("version: v1.2.3", "version: v1.02.3"),
        ),
        (
            "sha256",
            good.replacen(&"ab".repeat(32), &"AB".repeat(32), 1),
        ),
        (
            "sha256",
            good.replacen(&"ab".repeat(32), &"ab".repeat(31), 1),
        ),
        (
            "short description",
            good.replace(
                "shortDescription: Explain why an Istio mesh answers 503",
                "shortDescription: \"two\\nlines\"",
            ),
        ),
        ("overlapping", good.replace("arch: arm64", "arch: amd64")),
        (
            "supported platform",
            good.replacen("os: linux", "os: plan9", 1),
        ),
        (
            "unknown key",
            good.replacen("    bin: ", "    binary: x\n    bin: ", 1),
        ),
    ];
    for (i, (want, text)) in cases.iter().enumerate() {
        let name = if i == 0 { "other" } else { "mesh503" };
        let err = krew::validate(name, text).expect_err(want);
        assert!(err.contains(want), "case {i}: expected {want:?} in {err:?}");
    }
    for ok in ["v0.1.0", "v1.2.3-rc.1", "v1.0.0+build.5"] {
        krew::check_semver(ok).unwrap();
    }
}
