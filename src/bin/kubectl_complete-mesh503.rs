//! `kubectl_complete-mesh503`: what kubectl (≥ 1.26) runs from PATH to
//! complete `kubectl mesh503 …` (kubernetes/kubectl
//! `pkg/cmd/plugin/plugin_completion.go`, `lookupCompletionExec`). Called
//! with the plugin's words, the last one partial; prints cobra's format
//! (candidates, then `:<directive>`) and always exits 0, silently: see
//! `kubectl_mesh503::complete`.

fn main() {
    kubectl_mesh503::complete::helper_main()
}
