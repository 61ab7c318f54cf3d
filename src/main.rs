//! `kubectl mesh503`: see `kubectl_mesh503::run` for the work and
//! `kubectl_mesh503::cli` for the flags.

fn main() -> std::process::ExitCode {
    kubectl_mesh503::run::main()
}
