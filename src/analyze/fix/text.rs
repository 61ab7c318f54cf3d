//! The words and blocks a fix is printed with: the paste-ready
//! `kubectl apply -f - <<'EOF'` block (the heredoc markers on their own
//! lines, nothing elided), the file name `--fix-out` writes, and how to
//! check the fix worked.

use crate::analyze::catalog::Cause;
use crate::model::Manifest;

use super::problem::Problem;
use super::Verify;

/// `<kind>-<namespace>-<name>.yaml` (lowercase kind; `<kind>-<name>.yaml`
/// for a cluster-scoped object).
pub fn file_name(m: &Manifest) -> String {
    let kind = m.kind().to_ascii_lowercase();
    if m.namespace().is_empty() {
        format!("{kind}-{}.yaml", m.name())
    } else {
        format!("{kind}-{}-{}.yaml", m.namespace(), m.name())
    }
}

/// The block to paste as is: `kubectl apply -f - <<'EOF'`, every object
/// (separated by `---`), `EOF`. The quoted delimiter keeps the shell from
/// expanding anything in the YAML; a delimiter no YAML line equals is used.
pub fn apply_block(manifests: &[&Manifest]) -> String {
    let docs: Vec<String> = manifests.iter().map(|m| m.to_yaml()).collect();
    let body = docs.join("---\n");
    let mut delim = "EOF".to_string();
    while body.lines().any(|l| l.trim() == delim) {
        delim.push('_');
    }
    format!("kubectl apply -f - <<'{delim}'\n{body}{delim}\n")
}

/// The response flag a repaired call stops showing, per cause.
fn flag(cause: Cause) -> &'static str {
    match cause {
        Cause::MtlsPlaintextToStrict => {
            "503 UC (the server sidecar's `NR filter_chain_not_found` stops too)"
        }
        Cause::MtlsToPlaintextServer => "503 UF with TLS error WRONG_VERSION_NUMBER",
        Cause::TlsOriginationToSidecar => "503 UF/UC from the failed handshake",
        Cause::CircuitBreakerOverflow => "503 UO (x-envoy-overloaded: true)",
        Cause::SubsetNotFound => "503 NC (cluster_not_found)",
        Cause::UpstreamConnectionReset => "503 UC on the server sidecar's inbound cluster",
        Cause::NoHealthyUpstream => "503 UH (no healthy upstream)",
        _ => "503",
    }
}

/// The command to run again (naming the caller when it lives in another
/// namespace, where the tool would not look for it by itself) and what it
/// should show.
pub fn verify(mesh: &crate::model::Mesh, cause: Cause, problem: &Problem) -> Verify {
    let svc = problem.svc();
    let caller = problem.caller();
    let from = caller
        .pod
        .as_ref()
        .filter(|k| k.namespace != svc.key.namespace)
        .and_then(|k| mesh.pod(k))
        .map(|p| match p.workload.kind.as_str() {
            "Deployment" => format!(" --from {}/deploy/{}", p.key.namespace, p.workload.name),
            _ => format!(" --from {}/pod/{}", p.key.namespace, p.key.name),
        })
        .unwrap_or_default();
    Verify {
        command: format!(
            "kubectl mesh503 diagnose svc/{} -n {}{from}",
            svc.key.name, svc.key.namespace
        ),
        expect: format!(
            "once the sidecars have the new config (seconds; `istioctl proxy-status` says SYNCED), {} finding for {}:{} is gone, and new calls from {} stop ending {}: in the access log, or in istio_requests_total{{response_code=\"503\"}} with that response_flags label",
            cause.id(),
            svc.fqdn,
            problem.port().number,
            caller.label,
            flag(cause)
        ),
    }
}

/// The files `--fix-out` writes: each chosen fix's objects, in rank order,
/// `(file name, YAML)`, once each; and, in words, the objects two findings'
/// fixes change differently (the later one is left out: apply one fix,
/// diagnose again).
pub fn fix_files(findings: &[crate::analyze::Finding]) -> (Vec<(String, String)>, Vec<String>) {
    let mut files: Vec<(String, String)> = Vec::new();
    let mut conflicts = Vec::new();
    for (i, f) in findings.iter().enumerate() {
        let Some(fix) = f.chosen_fix() else { continue };
        for m in &fix.manifests {
            match files.iter().find(|(name, _)| *name == m.file) {
                Some((_, yaml)) if *yaml == m.yaml => {}
                Some(_) => conflicts.push(format!(
                    "{} is changed differently by the fix of finding [{}]: not written; apply the first fix, then diagnose again",
                    m.object,
                    i + 1
                )),
                None => files.push((m.file.clone(), m.yaml.clone())),
            }
        }
    }
    (files, conflicts)
}

/// Fixes of two findings that change one object differently are not
/// merged: the later one (in rank order) says so, since applying both
/// would keep only the last.
pub fn note_conflicts(findings: &mut [crate::analyze::Finding]) {
    let mut seen: Vec<(usize, String, String)> = Vec::new();
    for (i, f) in findings.iter_mut().enumerate() {
        let Some(fix) = f.fixes.as_mut().and_then(|x| x.chosen.as_mut()) else {
            continue;
        };
        let mut notes = Vec::new();
        for m in &fix.manifests {
            match seen.iter().find(|(_, file, _)| *file == m.file) {
                Some((j, _, yaml)) if *yaml != m.yaml => notes.push(format!(
                    "{} is also changed by the fix of finding [{}], differently: this manifest does not hold that change. Apply that fix first, then diagnose again.",
                    m.object,
                    j + 1
                )),
                Some(_) => {}
                None => seen.push((i, m.file.clone(), m.yaml.clone())),
            }
        }
        fix.notes.extend(notes);
    }
}
