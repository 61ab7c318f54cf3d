#!/usr/bin/env bash
# Bounded time on LARGE inputs, which libFuzzer's short inputs never reach:
# generates worst-case-shaped inputs of a few MB for each target into
# fuzz/work/scale/ and runs each once through the fuzz binary (the same
# harness), printing the time per input. A tool, not a test: compare the
# times with docs/fuzzing.md (they grow with the input, never explode).
#   cargo +nightly fuzz build && fuzz/scale.sh [TARGET…]
# Any run over 60 s (libFuzzer's -timeout) or 2 GB (-rss_limit_mb) fails.
set -euo pipefail
cd "$(dirname "$0")"
bin=target/x86_64-unknown-linux-gnu/release
out=work/scale
mkdir -p "$out"

gen() { # NAME: writes $out/NAME (once)
  local f="$out/$1"
  [ -s "$f" ] && return
  case $1 in
  clusters-100k-hosts.txt) # 100,000 hosts in one cluster
    awk 'BEGIN { for (i = 0; i < 100000; i++)
      printf "c::10.%d.%d.%d:80::rq_total::%d\n", int(i / 65536), int(i / 256) % 256, i % 256, i }' ;;
  clusters-50k-clusters.txt) # 50,000 outbound clusters of 2 hosts
    awk 'BEGIN { for (i = 0; i < 50000; i++) for (h = 0; h < 2; h++)
      printf "outbound|80||s%d.ns.svc.cluster.local::10.0.%d.%d:80::rq_total::1\n", i, h, i % 256 }' ;;
  access_log-60k-paths.log) # 130 lines with a 60 KB request path (8 MB)
    awk 'BEGIN { p = "/"; for (i = 0; i < 60000; i++) p = p "a";
      for (i = 0; i < 130; i++) printf "[2024-01-01T00:00:00.000Z] \"GET %s HTTP/1.1\" 503 UF - - \"-\" 0 0 1 - \"-\" \"curl\" \"id\" \"a:80\" \"10.0.0.9:80\" outbound|80||a.b.svc.cluster.local - 10.0.0.9:80 10.0.0.5:4000 - default\n", p }' ;;
  access_log-8mb-one-line.log) # one 8 MB line: `[` then words and quotes
    awk 'BEGIN { printf "[x] \""; for (i = 0; i < 1000000; i++) printf "a\" b \""; print "" }' ;;
  access_log-adjacent-fields.bin) # a listener with 2,000 adjacent operators, a 1 MB line of digits
    awk 'BEGIN { printf "{\"name\":\"l\",\"filter_chains\":[{\"filters\":[{\"name\":\"envoy.tcp_proxy\",\"typed_config\":{\"access_log\":[{\"typed_config\":{\"log_format\":{\"text_format\":\"";
      for (i = 0; i < 2000; i++) printf "%%BYTES_SENT%%"; printf "x\"}}}]}}]}]}%c", 0;
      for (i = 0; i < 1000000; i++) printf "1"; print "" }' ;;
  access_log-many-literals.bin) # a listener with 2,000 distinct literals, 400 lines that almost fit
    awk 'BEGIN { printf "{\"name\":\"l\",\"filter_chains\":[{\"filters\":[{\"name\":\"envoy.tcp_proxy\",\"typed_config\":{\"access_log\":[{\"typed_config\":{\"log_format\":{\"text_format\":\"";
      for (i = 0; i < 2000; i++) printf "%%UPSTREAM_HOST%%x%d", i; printf "\"}}}]}}]}]}%c", 0;
      for (l = 0; l < 400; l++) { for (i = 0; i < 1999; i++) printf "ax%d", i; print "" } }' ;;
  stats-long-regex.txt) # a 3,000-atom inclusion regex and 16 stat names of 3,000 characters
    awk 'BEGIN { for (i = 0; i < 3000; i++) printf "a*"; print "";
      for (n = 0; n < 16; n++) { printf "s%d", n; for (i = 0; i < 3000; i++) printf "a"; print ": 1" } }' ;;
  stats-8mb.txt) # 200,000 stats and standard-metric lines
    awk 'BEGIN { for (i = 0; i < 100000; i++) {
      printf "cluster.outbound|80||s%d.ns.svc.cluster.local.upstream_rq_pending_overflow: %d\n", i, i;
      printf "istio_requests_total{reporter=\"source\",destination_service=\"s%d\",response_code=\"503\",response_flags=\"UF\"} %d\n", i, i } }' ;;
  config_dump-20k-listeners.json) # 20,000 listeners with distinct access log formats; 20,000 clusters
    awk 'BEGIN { printf "{\"configs\":[{\"@type\":\"type.googleapis.com/envoy.admin.v3.ListenersConfigDump\",\"dynamic_listeners\":[";
      for (i = 0; i < 20000; i++) printf "%s{\"name\":\"l%d\",\"active_state\":{\"listener\":{\"name\":\"l%d\",\"address\":{\"socket_address\":{\"address\":\"0.0.0.0\",\"port_value\":%d}},\"filter_chains\":[{\"filters\":[{\"name\":\"envoy.filters.network.tcp_proxy\",\"typed_config\":{\"cluster\":\"c%d\",\"access_log\":[{\"typed_config\":{\"log_format\":{\"text_format\":\"%%RESPONSE_CODE%% %d\"}}}]}}]}]}}}", (i ? "," : ""), i, i, i % 65535 + 1, i, i;
      printf "]},{\"@type\":\"type.googleapis.com/envoy.admin.v3.ClustersConfigDump\",\"dynamic_active_clusters\":[";
      for (i = 0; i < 20000; i++) printf "%s{\"cluster\":{\"name\":\"outbound|80||s%d.ns.svc.cluster.local\",\"type\":\"EDS\"}}", (i ? "," : ""), i;
      print "]}]}" }' ;;
  tls_check-2x5k-clusters.json) # two full dumps of 5,000 clusters with endpoints each
    awk 'BEGIN { printf "[";
      for (d = 0; d < 2; d++) { printf "%s{\"configs\":[{\"@type\":\"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump\",\"bootstrap\":{\"node\":{\"id\":\"sidecar~10.1.0.%d~p%d.ns~ns.svc.cluster.local\"}}},{\"@type\":\"type.googleapis.com/envoy.admin.v3.ClustersConfigDump\",\"dynamic_active_clusters\":[", (d ? "," : ""), d, d;
        for (i = 0; i < 5000; i++) printf "%s{\"cluster\":{\"name\":\"outbound|80||s%d.ns.svc.cluster.local\"}}", (i ? "," : ""), i;
        printf "]},{\"@type\":\"type.googleapis.com/envoy.admin.v3.EndpointsConfigDump\",\"dynamic_endpoint_configs\":[";
        for (i = 0; i < 5000; i++) printf "%s{\"endpoint_config\":{\"cluster_name\":\"outbound|80||s%d.ns.svc.cluster.local\",\"endpoints\":[{\"lb_endpoints\":[{\"endpoint\":{\"address\":{\"socket_address\":{\"address\":\"10.1.0.%d\",\"port_value\":80}}}}]}]}}", (i ? "," : ""), i, i % 2;
        printf "]},{\"@type\":\"type.googleapis.com/envoy.admin.v3.ListenersConfigDump\",\"dynamic_listeners\":[{\"name\":\"virtualInbound\",\"active_state\":{\"listener\":{\"name\":\"virtualInbound\",\"address\":{\"socket_address\":{\"address\":\"0.0.0.0\",\"port_value\":15006}},\"filter_chains\":[{\"filter_chain_match\":{\"destination_port\":80}}]}}}]}]}" }
      print "]" }' ;;
  snapshot-big.json) # the lab recording with its proxies' evidence scaled up (needs jq)
    jq -c --rawfile log "$out/access_log-60k-paths.log" --rawfile cl "$out/clusters-100k-hosts.txt" \
      --rawfile st "$out/stats-8mb.txt" '.proxies |= map(.log_tail = $log | .clusters = $cl | .stats = $st)' \
      ../tests/recordings/healthy.snapshot.json ;;
  snapshot-many-objects.json) # the lab recording plus 5,000 DestinationRules, PeerAuthentications and Pods
    jq -c '.objects += ([range(5000) | tostring as $i |
        {apiVersion: "networking.istio.io/v1", kind: "DestinationRule",
         metadata: {name: ("dr-" + $i), namespace: "foo", creationTimestamp: "2024-01-01T00:00:00Z"},
         spec: {host: "*.foo.svc.cluster.local", trafficPolicy: {tls: {mode: "ISTIO_MUTUAL"}},
                subsets: [{name: "v1", labels: {version: "v1"}}]}},
        {apiVersion: "security.istio.io/v1", kind: "PeerAuthentication",
         metadata: {name: ("pa-" + $i), namespace: "foo"},
         spec: {selector: {matchLabels: {app: ("a" + $i)}}, mtls: {mode: "STRICT"}, portLevelMtls: {"8080": {mode: "DISABLE"}}}},
        {apiVersion: "v1", kind: "Pod",
         metadata: {name: ("httpbin-" + $i), namespace: "foo", labels: {app: "httpbin"}},
         spec: {containers: [{name: "httpbin"}, {name: "istio-proxy", image: "istio/proxyv2:1.28.0"}]},
         status: {podIP: ("10.9." + (($i | tonumber) / 256 | floor | tostring) + "." + (($i | tonumber) % 256 | tostring)), phase: "Running"}}])' \
      ../tests/recordings/healthy.snapshot.json ;;
  esac >"$f"
}

declare -A inputs=(
  [clusters]="clusters-100k-hosts.txt clusters-50k-clusters.txt"
  [access_log]="access_log-60k-paths.log access_log-8mb-one-line.log access_log-adjacent-fields.bin access_log-many-literals.bin"
  [stats]="stats-long-regex.txt stats-8mb.txt"
  [config_dump]="config_dump-20k-listeners.json"
  [tls_check]="tls_check-2x5k-clusters.json"
  [snapshot]="snapshot-big.json snapshot-many-objects.json"
)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(clusters access_log stats config_dump tls_check snapshot)
gen access_log-60k-paths.log
gen clusters-100k-hosts.txt
gen stats-8mb.txt
for t in "${targets[@]}"; do
  for name in ${inputs[$t]}; do
    gen "$name"
    printf '%-14s %-34s %6d KB  ' "$t" "$name" "$(($(wc -c <"$out/$name") / 1024))"
    "$bin/$t" -timeout=60 -rss_limit_mb=2048 "$out/$name" 2>&1 | grep -Eo 'Executed .* in [0-9]+ ms|ERROR: .*' | sed 's/Executed .* in //' || true
  done
done
