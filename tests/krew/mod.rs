//! What krew checks and does with a plugin manifest, re-read from
//! kubernetes-sigs/krew (v0.4.5) for the release tests:
//!
//! - `cmd/validate-krew-manifest/main.go` (`validateManifestFile`): the file
//!   is `NAME.yaml`; every platform selector matches one of krew's supported
//!   os/arch pairs (`allPlatforms`) and no pair is matched twice
//!   (`isOverlappingPlatformSelectors`); after install a LICENSE-like file is
//!   among the extracted files (`validateLicenseFileExists`, `licenseFiles`);
//! - `internal/index/validation/validate.go` (`ValidatePlugin`,
//!   `validatePlatform`, `validateFiles`, `validateSelector`): apiVersion,
//!   kind, a safe name equal to the file name, a one-line shortDescription,
//!   a `v`-prefixed semantic version, per platform uri + 64-hex sha256 + bin,
//!   `files` absent or non-empty with from/to, selectors with os/arch keys;
//! - `internal/installation/install.go` + `move.go` +
//!   `internal/download/downloader.go` (`extractTARGZ`, `suspiciousPath`):
//!   unpack into a staging dir, move `files` into
//!   `store/NAME/VERSION/`, link `bin/kubectl-NAME` to the `bin`.
//!
//! Stricter than krew in one way: unknown keys are errors (krew ignores
//! them, so a misspelt `sha256` would only fail at install time).
#![allow(dead_code)]

use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const API_VERSION: &str = "krew.googlecontainertools.github.com/v1alpha2";

/// krew's `allPlatforms()`.
pub const PLATFORMS: &[(&str, &str)] = &[
    ("windows", "386"),
    ("windows", "amd64"),
    ("windows", "arm64"),
    ("linux", "386"),
    ("linux", "amd64"),
    ("linux", "arm"),
    ("linux", "arm64"),
    ("linux", "ppc64le"),
    ("darwin", "386"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
];

/// krew's `licenseFiles` (compared lowercased).
const LICENSE_FILES: &[&str] = &[
    "license",
    "license.txt",
    "license.md",
    "licenses",
    "licenses.txt",
    "licenses.md",
    "copying",
    "copying.txt",
];

const WINDOWS_FORBIDDEN: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

#[derive(Debug, Clone)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub platforms: Vec<Platform>,
}

#[derive(Debug, Clone)]
pub struct Platform {
    pub uri: String,
    pub sha256: String,
    pub bin: String,
    /// (from, to); krew's default when absent is `* → .`.
    pub files: Vec<(String, String)>,
    /// The supported os/arch pairs the selector matches.
    pub matches: Vec<(String, String)>,
}

/// Validates the manifest file at `path` as `validate-krew-manifest
/// -skip-install` does (the install half is [`install`]).
pub fn validate_file(path: &Path) -> Result<Manifest, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
    let name = file
        .strip_suffix(".yaml")
        .ok_or_else(|| format!("expected manifest extension \".yaml\" in {file:?}"))?;
    validate(name, &text)
}

/// Validates manifest `text` for plugin `name` (the file name without `.yaml`).
pub fn validate(name: &str, text: &str) -> Result<Manifest, String> {
    let doc: Value = serde_yaml::from_str(text).map_err(|e| format!("not YAML: {e}"))?;
    let top = map(&doc, "the manifest")?;
    only_keys(
        top,
        &["apiVersion", "kind", "metadata", "spec"],
        "the manifest",
    )?;
    let api = str_at(top, "apiVersion");
    if api != API_VERSION {
        return Err(format!("apiVersion={api:?}, not {API_VERSION:?}"));
    }
    if str_at(top, "kind") != "Plugin" {
        return Err(format!(
            "kind={:?}, but only \"Plugin\" is supported",
            str_at(top, "kind")
        ));
    }
    if !safe_name(name) {
        return Err(format!(
            "the plugin name {name:?} is not allowed, must match ^[\\w-]+$"
        ));
    }
    let meta = map(top.get("metadata").unwrap_or(&Value::Null), "metadata")?;
    if str_at(meta, "name") != name {
        return Err(format!(
            "plugin should be named {name:?}, not {:?}",
            str_at(meta, "name")
        ));
    }
    let spec = map(top.get("spec").unwrap_or(&Value::Null), "spec")?;
    only_keys(
        spec,
        &[
            "version",
            "shortDescription",
            "description",
            "caveats",
            "homepage",
            "platforms",
        ],
        "spec",
    )?;
    let short = str_at(spec, "shortDescription");
    if short.is_empty() {
        return Err("should have a short description".into());
    }
    if short.contains(['\r', '\n']) {
        return Err("should not have line breaks in short description".into());
    }
    if str_at(spec, "description").trim().is_empty() {
        // Not in ValidatePlugin, but krew-index's review requires one.
        return Err("should have a description".into());
    }
    let platforms = spec
        .get("platforms")
        .and_then(Value::as_sequence)
        .filter(|p| !p.is_empty())
        .ok_or("should have a platform specified")?;
    let version = str_at(spec, "version").to_string();
    if version.is_empty() {
        return Err("should have a version specified".into());
    }
    check_semver(&version)?;
    let mut out = Vec::new();
    for (i, p) in platforms.iter().enumerate() {
        out.push(platform(p).map_err(|e| format!("platform[{i}] is badly constructed: {e}"))?);
    }
    for pair in PLATFORMS {
        let hits: Vec<usize> = out
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.matches
                    .iter()
                    .any(|(o, a)| (o.as_str(), a.as_str()) == *pair)
            })
            .map(|(i, _)| i)
            .collect();
        if hits.len() > 1 {
            return Err(format!(
                "overlapping platform selectors: spec.platforms {hits:?} all select {}/{}",
                pair.0, pair.1
            ));
        }
    }
    Ok(Manifest {
        name: name.to_string(),
        version,
        platforms: out,
    })
}

fn platform(p: &Value) -> Result<Platform, String> {
    let m = map(p, "platform")?;
    only_keys(
        m,
        &["uri", "sha256", "selector", "files", "bin"],
        "platform",
    )?;
    let uri = str_at(m, "uri").to_string();
    if uri.is_empty() {
        return Err("`uri` has to be set".into());
    }
    let sha256 = str_at(m, "sha256").to_string();
    if sha256.is_empty() {
        return Err("`sha256` sum has to be set".into());
    }
    if sha256.len() != 64
        || !sha256
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    {
        return Err(format!(
            "`sha256` value {sha256} is not valid, must match ^[a-f0-9]{{64}}$"
        ));
    }
    let bin = str_at(m, "bin").to_string();
    if bin.is_empty() {
        return Err("`bin` has to be set".into());
    }
    let files = match m.get("files") {
        None | Some(Value::Null) => vec![("*".to_string(), ".".to_string())],
        Some(Value::Sequence(ops)) if ops.is_empty() => {
            return Err("`files` has to be unspecified or non-empty".into())
        }
        Some(Value::Sequence(ops)) => ops
            .iter()
            .map(|op| {
                let op = map(op, "files[]")?;
                let (from, to) = (str_at(op, "from"), str_at(op, "to"));
                if from.is_empty() {
                    return Err("`from` field has to be set".to_string());
                }
                if to.is_empty() {
                    return Err("`to` field has to be set".to_string());
                }
                Ok((from.to_string(), to.to_string()))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("`files` is not a list: {other:?}")),
    };
    let selector = m.get("selector").ok_or("nil selector is not supported")?;
    let matches = selector_matches(selector)?;
    if matches.is_empty() {
        return Err(format!(
            "selector {selector:?} doesn't match any supported platform"
        ));
    }
    Ok(Platform {
        uri,
        sha256,
        bin,
        files,
        matches,
    })
}

/// `validateSelector`, then the supported pairs the selector matches
/// (`metav1.LabelSelectorAsSelector` semantics: all matchLabels and all
/// matchExpressions must hold).
fn selector_matches(sel: &Value) -> Result<Vec<(String, String)>, String> {
    let sel = map(sel, "selector")?;
    only_keys(sel, &["matchLabels", "matchExpressions"], "selector")?;
    let labels = sel
        .get("matchLabels")
        .map(|l| map(l, "matchLabels"))
        .transpose()?;
    let exprs = match sel.get("matchExpressions") {
        None => Vec::new(),
        Some(Value::Sequence(s)) if s.is_empty() => {
            return Err("`matchExpressions` specified but empty".into())
        }
        Some(Value::Sequence(s)) => s.clone(),
        Some(other) => return Err(format!("matchExpressions is not a list: {other:?}")),
    };
    if labels.is_none() && exprs.is_empty() {
        return Err("empty selector is not supported".into());
    }
    let mut want: BTreeMap<String, String> = BTreeMap::new();
    if let Some(labels) = labels {
        if labels.is_empty() {
            return Err("`matchLabels` specified but empty".into());
        }
        for (k, v) in labels {
            let k = k.as_str().unwrap_or("");
            if k != "os" && k != "arch" {
                return Err(format!("key {k:?} not supported"));
            }
            want.insert(k.to_string(), v.as_str().unwrap_or("").to_string());
        }
    }
    let mut parsed = Vec::new();
    for e in &exprs {
        let e = map(e, "matchExpressions[]")?;
        let key = str_at(e, "key").to_string();
        if key != "os" && key != "arch" {
            return Err(format!("key {key:?} not supported"));
        }
        let values: Vec<String> = e
            .get("values")
            .and_then(Value::as_sequence)
            .map(|v| {
                v.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        parsed.push((key, str_at(e, "operator").to_string(), values));
    }
    let mut out = Vec::new();
    for (os, arch) in PLATFORMS {
        let get = |k: &str| if k == "os" { *os } else { *arch };
        let labels_ok = want.iter().all(|(k, v)| get(k) == v);
        let exprs_ok = parsed.iter().all(|(k, op, vals)| match op.as_str() {
            "In" => vals.iter().any(|v| v == get(k)),
            "NotIn" => !vals.iter().any(|v| v == get(k)),
            "Exists" => true,
            _ => false,
        });
        if labels_ok && exprs_ok {
            out.push((os.to_string(), arch.to_string()));
        }
    }
    Ok(out)
}

/// krew's `semver.Parse`: a leading `v`, then k8s.io/apimachinery's
/// `ParseSemantic` (MAJOR.MINOR.PATCH, no leading zeros, optional
/// -prerelease and +build).
pub fn check_semver(v: &str) -> Result<(), String> {
    let rest = v
        .strip_prefix('v')
        .ok_or_else(|| format!("version string {v:?} not starting with 'v'"))?;
    let (core, _build) = rest.split_once('+').unwrap_or((rest, ""));
    let (core, pre) = match core.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (core, None),
    };
    let nums: Vec<&str> = core.split('.').collect();
    let numeric = |n: &str| {
        !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) && (n == "0" || !n.starts_with('0'))
    };
    if nums.len() != 3 || !nums.iter().all(|n| numeric(n)) {
        return Err(format!("version {v:?} is not MAJOR.MINOR.PATCH"));
    }
    if let Some(pre) = pre {
        let ok = pre
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if !ok {
            return Err(format!("version {v:?} has an invalid pre-release"));
        }
    }
    Ok(())
}

fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        && !WINDOWS_FORBIDDEN
            .iter()
            .any(|f| f.eq_ignore_ascii_case(name))
}

fn map<'a>(v: &'a Value, what: &str) -> Result<&'a Mapping, String> {
    v.as_mapping()
        .ok_or_else(|| format!("{what} is not a mapping"))
}

fn str_at<'a>(m: &'a Mapping, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or("")
}

fn only_keys(m: &Mapping, allowed: &[&str], what: &str) -> Result<(), String> {
    for k in m.keys() {
        let k = k.as_str().unwrap_or("?");
        if !allowed.contains(&k) {
            return Err(format!("{what}: unknown key {k:?}"));
        }
    }
    Ok(())
}

/// Installs `platform` of `manifest` from the local `archive` into
/// `krew_root` as `kubectl krew install --manifest … --archive …` does:
/// unpack (refusing `..` and absolute entries), move each `files` entry into
/// `store/NAME/VERSION/`, check a LICENSE-like file arrived, link
/// `bin/kubectl-NAME` to the `bin`. Returns the install dir.
pub fn install(
    manifest: &Manifest,
    platform: &Platform,
    archive: &Path,
    krew_root: &Path,
) -> Result<PathBuf, String> {
    let staging = tempfile::tempdir().map_err(|e| e.to_string())?;
    extract_tar_gz(archive, staging.path())?;
    let install_dir = krew_root
        .join("store")
        .join(&manifest.name)
        .join(&manifest.version);
    std::fs::create_dir_all(&install_dir).map_err(|e| e.to_string())?;
    for (from, to) in &platform.files {
        if from.contains('*') || from.contains('?') || from.contains('[') {
            return Err(format!(
                "files: glob {from:?} is not exercised by this check"
            ));
        }
        let src = staging.path().join(from);
        if !src.is_file() {
            return Err(format!("files: {from:?} is not in the archive"));
        }
        if to.contains("..") || Path::new(to).is_absolute() {
            return Err(format!("files: {to:?} leaves the install dir"));
        }
        let dest = if to == "." {
            install_dir.join(Path::new(from).file_name().unwrap_or_default())
        } else {
            install_dir.join(to)
        };
        std::fs::create_dir_all(dest.parent().unwrap_or(&install_dir))
            .map_err(|e| e.to_string())?;
        std::fs::rename(&src, &dest).map_err(|e| format!("move {from}: {e}"))?;
    }
    let mut found = Vec::new();
    walk_files(&install_dir, &mut found);
    if !found
        .iter()
        .any(|f| LICENSE_FILES.contains(&f.to_ascii_lowercase().as_str()))
    {
        return Err(format!(
            "LICENSE (or alike) file is not extracted from the archive: found only {found:?}"
        ));
    }
    let bin = install_dir.join(&platform.bin);
    if !bin.is_file() {
        return Err(format!(
            "bin {:?} is not among the installed files",
            platform.bin
        ));
    }
    let bin_dir = krew_root.join("bin");
    std::fs::create_dir_all(&bin_dir).map_err(|e| e.to_string())?;
    let link = bin_dir.join(format!("kubectl-{}", manifest.name.replace('-', "_")));
    std::os::unix::fs::symlink(&bin, &link).map_err(|e| format!("link {}: {e}", link.display()))?;
    Ok(install_dir)
}

/// `extractTARGZ`: regular files and directories only, no `..`, no
/// absolute names, the archive's modes kept.
pub fn extract_tar_gz(archive: &Path, into: &Path) -> Result<Vec<String>, String> {
    use std::os::unix::fs::PermissionsExt;
    let file = std::fs::File::open(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut names = Vec::new();
    for entry in tar.entries().map_err(|e| format!("tar: {e}"))? {
        let mut entry = entry.map_err(|e| format!("tar: {e}"))?;
        let name = entry
            .path()
            .map_err(|e| format!("tar: {e}"))?
            .to_string_lossy()
            .into_owned();
        if name.contains("..") || name.starts_with('/') || name.starts_with('\\') {
            return Err(format!(
                "refusing to unpack archive with suspicious entry {name:?}"
            ));
        }
        let dest = into.join(&name);
        let mode = entry.header().mode().map_err(|e| format!("tar: {e}"))?;
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&dest).map_err(|e| e.to_string())?
            }
            tar::EntryType::Regular => {
                std::fs::create_dir_all(dest.parent().unwrap_or(into))
                    .map_err(|e| e.to_string())?;
                let mut out = std::fs::File::create(&dest).map_err(|e| e.to_string())?;
                std::io::copy(&mut entry, &mut out).map_err(|e| format!("{name}: {e}"))?;
                std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))
                    .map_err(|e| e.to_string())?;
            }
            other => return Err(format!("unable to handle file type {other:?} for {name:?}")),
        }
        names.push(name);
    }
    Ok(names)
}

fn walk_files(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk_files(&path, out),
            Ok(t) if t.is_file() => out.push(entry.file_name().to_string_lossy().into_owned()),
            _ => {}
        }
    }
}
