//! `kubectl mesh503`: see `kubectl_mesh503::run` for the work and
//! `kubectl_mesh503::cli` for the flags.

fn main() -> std::process::ExitCode {
    // Started through a `kubectl_complete-mesh503` symlink: answer kubectl's
    // completion request instead (docs/completion.md).
    if kubectl_mesh503::complete::invoked_as_helper() {
        kubectl_mesh503::complete::helper_main();
    }
    kubectl_mesh503::run::main()
}
