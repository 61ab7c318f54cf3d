//! Every scenario of tests/scenarios, with real traffic: whenever a request
//! got a 503, `diagnose` of the service it was for names an error-level
//! cause (or `UNEXPLAINED_503S`, itself an error) and exits non-zero. Never
//! "no cause" with exit 0 while 503s are in front of it (issue 8).
//!
//! What each scenario drives is in its header, in order:
//! - `# step: steps/FILE.yaml`: `kubectl apply -f` it, then wait for the
//!   sidecars to take it;
//! - `# traffic: NS/DEPLOY -> URL [xN] [cM] [| svc/NAME -n NS]`: N requests
//!   (default 3), M at a time (default 1), from that Deployment's pod as its
//!   app would send them; `gateway NS/SVC -> URL …` sends them through an
//!   ingress gateway Service from outside the mesh. The diagnosed service is
//!   the URL's `name.namespace`, or the one after `|`;
//! - `# pause: 500ms`: wait (a keep-alive race needs an idle connection).
//!
//! A scenario without a `# traffic:` header must be listed in
//! [`NO_TRAFFIC`] with the reason, so a new scenario is never skipped
//! silently. Labs run two at a time (one per core), each used once.
//! `EVERY_SCENARIO=overflow.yaml` runs one scenario only (debugging).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use common::*;
use mesh503_lab::lab::Lab;

/// Scenarios that drive no traffic, with the reason. Empty today: every
/// scenario has a header.
const NO_TRAFFIC: &[(&str, &str)] = &[];

/// Services whose 503s the plugin does not explain yet, with the reason
/// (`scenario`, `svc/NAME -n NS`). The test asserts they still miss, so the
/// entry goes when the miss is fixed; any other miss fails.
const KNOWN_MISSES: &[(&str, &str, &str)] = &[];

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Apply(String),
    Traffic {
        gateway: Option<String>,
        from: String,
        url: String,
        count: usize,
        concurrency: usize,
        /// `svc/NAME -n NS`.
        target: (String, String),
    },
    PauseMs(u64),
}

/// The header of a scenario file, read strictly: a malformed line is an error.
fn header(path: &Path) -> Result<Vec<Step>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut steps = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = |m: &str| format!("{}:{}: {m}: {line}", path.display(), i + 1);
        if let Some(f) = line.strip_prefix("# step: ") {
            steps.push(Step::Apply(f.trim().to_string()));
        } else if let Some(p) = line.strip_prefix("# pause: ") {
            let ms = p
                .trim()
                .strip_suffix("ms")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| at("pause wants `<N>ms`"))?;
            steps.push(Step::PauseMs(ms));
        } else if let Some(t) = line.strip_prefix("# traffic: ") {
            steps.push(traffic(t).map_err(|e| at(&e))?);
        }
    }
    Ok(steps)
}

fn traffic(t: &str) -> Result<Step, String> {
    let (t, target) = match t.split_once('|') {
        Some((a, b)) => {
            let w: Vec<&str> = b.split_whitespace().collect();
            match w.as_slice() {
                [svc, "-n", ns] if svc.starts_with("svc/") => {
                    (a, Some((svc[4..].to_string(), ns.to_string())))
                }
                _ => return Err("the target after `|` is `svc/NAME -n NS`".into()),
            }
        }
        None => (t, None),
    };
    let (from, rest) = t.split_once("->").ok_or("no `->`")?;
    let mut from_words = from.split_whitespace();
    let (gateway, from) = match (from_words.next(), from_words.next()) {
        (Some("gateway"), Some(svc)) => (Some(svc.to_string()), svc.to_string()),
        (Some(f), None) => (None, f.to_string()),
        _ => return Err("the caller is `NS/DEPLOY` or `gateway NS/SVC`".into()),
    };
    let mut words = rest.split_whitespace();
    let url = words.next().ok_or("no URL")?.to_string();
    let (mut count, mut concurrency) = (3, 1);
    for w in words {
        if let Some(n) = w.strip_prefix('x') {
            count = n.parse().map_err(|_| format!("bad count {w}"))?;
        } else if let Some(n) = w.strip_prefix('c') {
            concurrency = n.parse().map_err(|_| format!("bad concurrency {w}"))?;
        } else {
            return Err(format!("unknown word {w}"));
        }
    }
    let target = match target {
        Some(t) => t,
        None => {
            let host = url
                .split("://")
                .nth(1)
                .and_then(|r| r.split([':', '/']).next())
                .ok_or("no host in the URL")?;
            let mut labels = host.split('.');
            match (labels.next(), labels.next()) {
                (Some(n), Some(ns)) => (n.to_string(), ns.to_string()),
                _ => {
                    return Err(
                        "the URL's host is not `name.namespace…`: add `| svc/NAME -n NS`".into(),
                    )
                }
            }
        }
    };
    Ok(Step::Traffic {
        gateway,
        from,
        url,
        count,
        concurrency,
        target,
    })
}

fn scenarios() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

/// Drive one scenario; the problems found (empty: it keeps the promise).
fn run(path: &Path, steps: &[Step]) -> Vec<String> {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let lab = match Lab::start(path, Default::default()) {
        Ok(l) => l,
        Err(e) => return vec![format!("{name}: lab did not start: {e:#}")],
    };
    // Per diagnosed service: the statuses its traffic got.
    let mut seen: BTreeMap<(String, String), Vec<u16>> = BTreeMap::new();
    for s in steps {
        match s {
            Step::Apply(f) => {
                let p = scenario(f);
                let out = kubectl(&lab, &["apply", "-f", p.to_str().unwrap()], None);
                if !out.status.success() {
                    return vec![format!("{name}: step {f}: {}", text(&out))];
                }
                if let Err(e) = lab.wait_synced() {
                    return vec![format!("{name}: step {f}: {e:#}")];
                }
            }
            Step::PauseMs(ms) => std::thread::sleep(std::time::Duration::from_millis(*ms)),
            Step::Traffic {
                gateway,
                from,
                url,
                count,
                concurrency,
                target,
            } => {
                let rs = match gateway {
                    Some(g) => lab.curl_via_gateway(g, url, *count, *concurrency),
                    None => lab.curl(from, url, *count, *concurrency),
                };
                let rs = match rs {
                    Ok(rs) => rs,
                    Err(e) => return vec![format!("{name}: curl {from} -> {url}: {e:#}")],
                };
                // A transport error (a refused connection) is status 0.
                seen.entry(target.clone())
                    .or_default()
                    .extend(rs.iter().map(|r| r.as_ref().map_or(0, |r| r.status)));
            }
        }
    }
    let mut problems = Vec::new();
    for ((svc, ns), statuses) in &seen {
        if !statuses.contains(&503) {
            continue;
        }
        let target = format!("svc/{svc}");
        let out = mesh503(Some(&lab), &["diagnose", &target, "-n", ns, "-o", "json"]);
        let ids: Vec<String> = serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|j| {
                j["findings"].as_array().map(|fs| {
                    fs.iter()
                        .filter(|f| f["severity"] == "error")
                        .filter_map(|f| f["id"].as_str().map(str::to_string))
                        .collect()
                })
            })
            .unwrap_or_default();
        let code = out.status.code();
        let missed = ids.is_empty() || code == Some(0) || code.is_none();
        let known = KNOWN_MISSES
            .iter()
            .any(|(s, t, _)| *s == name && *t == format!("{target} -n {ns}"));
        if known {
            if !missed {
                problems.push(format!(
                    "{name}: {target} -n {ns} is explained now ({ids:?}): remove it from KNOWN_MISSES"
                ));
            }
            continue;
        }
        if missed {
            problems.push(format!(
                "{name}: {target} -n {ns} got {statuses:?} but diagnose named no error-level cause (exit {code:?}, errors {ids:?})\n{}",
                text(&out)
            ));
        } else {
            eprintln!("{name}: {target} -n {ns} got {statuses:?}: {ids:?}, exit {code:?}");
        }
    }
    problems
}

#[test]
fn every_header_is_well_formed_and_no_scenario_is_skipped() {
    let mut listed: Vec<&str> = NO_TRAFFIC.iter().map(|(n, _)| *n).collect();
    for p in scenarios() {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let steps = header(&p).unwrap_or_else(|e| panic!("{e}"));
        let drives = steps.iter().any(|s| matches!(s, Step::Traffic { .. }));
        let exempt = listed.iter().position(|n| *n == name);
        match (drives, exempt) {
            (true, Some(_)) => panic!("{name} has traffic now: drop it from NO_TRAFFIC"),
            (false, None) => panic!(
                "{name} has no `# traffic:` header: add one (see tests/every_scenario.rs) or list it in NO_TRAFFIC with the reason"
            ),
            (false, Some(i)) => {
                listed.remove(i);
            }
            (true, None) => {}
        }
        for s in &steps {
            if let Step::Apply(f) = s {
                assert!(scenario(f).is_file(), "{name}: no step file {f}");
            }
        }
    }
    assert!(
        listed.is_empty(),
        "NO_TRAFFIC names missing scenarios: {listed:?}"
    );
    // The parser itself: near misses are errors, not silence.
    for bad in [
        "foo/sleep http://x.y/",
        "foo/sleep -> http://x/",
        "foo/sleep -> http://x.y/ y3",
        "foo/sleep -> http://x.y/ | deploy/x -n y",
    ] {
        assert!(traffic(bad).is_err(), "{bad}");
    }
    assert_eq!(
        traffic("gateway istio-system/gw -> http://shop.example.com/get x2 c2 | svc/shop -n foo"),
        Ok(Step::Traffic {
            gateway: Some("istio-system/gw".into()),
            from: "istio-system/gw".into(),
            url: "http://shop.example.com/get".into(),
            count: 2,
            concurrency: 2,
            target: ("shop".into(), "foo".into()),
        })
    );
}

#[test]
fn every_scenario_with_503s_gets_a_cause_or_says_they_are_unexplained() {
    let work: Mutex<Vec<(PathBuf, Vec<Step>)>> = Mutex::new(
        scenarios()
            .into_iter()
            .map(|p| {
                let steps = header(&p).unwrap_or_else(|e| panic!("{e}"));
                (p, steps)
            })
            .filter(|(_, s)| !s.is_empty())
            .filter(|(p, _)| {
                std::env::var("EVERY_SCENARIO").map_or(true, |only| {
                    p.file_name().is_some_and(|n| n.to_string_lossy() == only)
                })
            })
            .collect(),
    );
    let problems: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let next = work.lock().unwrap().pop();
                let Some((path, steps)) = next else { break };
                let p = run(&path, &steps);
                problems.lock().unwrap().extend(p);
            });
        }
    });
    let problems = problems.into_inner().unwrap();
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
