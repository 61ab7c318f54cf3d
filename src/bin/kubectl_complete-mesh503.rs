//! `kubectl_complete-mesh503`: what kubectl (≥ 1.26) runs from PATH to
//! complete `kubectl mesh503 …` (kubernetes/kubectl
//! `pkg/cmd/plugin/plugin_completion.go`, `lookupCompletionExec`). Called
//! with the plugin's words, the last one partial; prints cobra's format
//! (candidates, then `:<directive>`) and always exits 0, silently: see
//! `kubectl_mesh503::complete`.

use clap::CommandFactory;
use kubectl_mesh503::cli::Cli;
use kubectl_mesh503::complete::{self, live, Completions};
use std::io::Write;

fn main() {
    // A panic message would land on the user's terminal mid-line.
    std::panic::set_hook(Box::new(|info| live::debug(&format!("panic: {info}"))));
    let words: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    let answer = std::panic::catch_unwind(|| {
        complete::complete(Cli::command(), &words, &live::Cluster::from_env())
    })
    .unwrap_or_else(|_| Completions::nothing());
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(answer.render().as_bytes());
    let _ = out.flush();
    // Not waiting for a fetch thread still stuck past its deadline.
    std::process::exit(0);
}
