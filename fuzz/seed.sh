#!/usr/bin/env bash
# Seeds the fuzz corpora from the lab recordings committed in this repository
# (docs/examples/*.snapshot.json, tests/recordings/*.snapshot.json): each
# proxy's config dumps, /clusters, /stats and log tail become separate seed
# files under fuzz/corpus/<target>/rec-*. Hand-written seeds (hand-*) are left
# alone. Idempotent: rerun it after adding a recording, and commit the result.
#
# With MESH503_FIXTURES=DIR (e.g. the team's shared fixtures of real sidecar
# dumps), it also cuts every JSON config dump, /clusters JSON, /stats text and
# Kubernetes YAML under DIR into seeds under fuzz/corpus-extra/<target>/
# (git-ignored: those files are not ours to commit). Pass both directories to
# a run: `cargo +nightly fuzz run config_dump fuzz/work/config_dump
# fuzz/corpus/config_dump fuzz/corpus-extra/config_dump`.
#
# Needs jq (>= 1.6).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v jq >/dev/null || { echo "seed.sh: needs jq" >&2; exit 1; }

corpus=fuzz/corpus
targets=(config_dump clusters stats access_log snapshot istio_objects tls_check)
for t in "${targets[@]}"; do
  mkdir -p "$corpus/$t"
  rm -f "$corpus/$t"/rec-*
done

# Text seeds are cut to 32 KiB at a line end: libFuzzer's inputs stay short.
# (awk reads to the end: an early exit would fail the writer under pipefail.)
cap() { LC_ALL=C awk 'BEGIN { n = 0 } { n += length($0) + 1; if (n <= 32768) print }'; }

# put FILE: stdin to FILE, unless a seed of the same target differs from it
# only in numbers (timestamps, counters, versions): recordings of one lab
# share most of their evidence.
seen=$(mktemp -d)
trap 'rm -rf "$seen"' EXIT
put() {
  local f=$1 tmp key
  tmp=$(mktemp)
  cat >"$tmp"
  key="$(basename "$(dirname "$f")")-$(sed -E 's/[0-9]+/N/g' "$tmp" | md5sum | cut -c1-16)"
  if [ -s "$tmp" ] && [ ! -e "$seen/$key" ]; then
    touch "$seen/$key"
    chmod 644 "$tmp"
    mv "$tmp" "$f"
  else
    rm -f "$tmp"
  fi
}

# The resources of a config dump the analysis of the lab's target reads:
# its clusters, the inbound side and the catch-alls (the rest of a dump is
# the same shapes again for other services).
slim_dump='if . == null then null else .configs |= map(select(tostring
  | test("httpbin|inbound|Inbound|PassthroughCluster|BlackHole"))) end'

for rec in docs/examples/*.snapshot.json tests/recordings/*.snapshot.json; do
  name=$(basename "$rec" .snapshot.json)
  n=$(jq '.proxies | length' "$rec")
  for ((i = 0; i < n; i++)); do
    p=$(jq -c ".proxies[$i]" "$rec")
    role=$(jq -r '.role' <<<"$p")
    base="rec-$name-$role"
    for part in clusters_config listeners_config endpoints_config; do
      if [ "$(jq ".$part != null" <<<"$p")" = true ]; then
        jq -c ".$part" <<<"$p" | put "$corpus/config_dump/$base-$part.json"
      fi
    done
    if [ "$(jq '.clusters != null' <<<"$p")" = true ]; then
      jq -r '.clusters' <<<"$p" | cap | put "$corpus/clusters/$base.txt"
    fi
    if [ "$(jq '.stats != null' <<<"$p")" = true ]; then
      jq -r '.stats' <<<"$p" | cap | put "$corpus/stats/$base.txt"
    fi
    if [ "$(jq '.log_tail != null' <<<"$p")" = true ]; then
      jq -r '.log_tail' <<<"$p" | cap | put "$corpus/access_log/$base.log"
      # LISTENER \0 LOG: the formats come from the first listener that declares an access log.
      listener=$(jq -c '[.listeners_config.configs[]? | (.active_state.listener // .listener // empty)
                         | select(tostring | test("access_log"))][0] // empty' <<<"$p")
      if [ -n "$listener" ]; then
        { printf '%s' "$listener"; printf '\0'; jq -r '.log_tail' <<<"$p" | cap; } \
          | put "$corpus/access_log/$base-listener.bin"
      fi
    fi
  done
  jq -c '.objects' "$rec" | put "$corpus/istio_objects/rec-$name.json"
  # tls-check --config-dump: one full dump per proxy (all three resources in one `configs`).
  jq -c "[.proxies[] | {configs: ([.clusters_config, .listeners_config, .endpoints_config]
           | map($slim_dump | .configs // []) | add)}]" "$rec" | put "$corpus/tls_check/rec-$name.json"
  # A slim snapshot: the same evidence cut to what concerns the target's host
  # and the inbound side (config dumps as above; /stats and /clusters lines;
  # log tails to their access-log lines). Each gives the same report as its
  # recording (`diagnose --snapshot … -o json`; checked when written, see
  # docs/fuzzing.md).
  jq -c "
    def keep(f): if . == null then null else (split(\"\\n\") | map(select(f)) | join(\"\\n\")) end;
    .proxies |= map(
      .clusters_config |= ($slim_dump) | .listeners_config |= ($slim_dump)
      | .endpoints_config |= ($slim_dump)
      | .stats |= keep(test(\"httpbin|inbound|istio_requests|ssl[.]|cx_connect_fail|pending|no_filter_chain_match\"))
      | .clusters |= keep(test(\"httpbin|inbound\"))
      | .log_tail |= keep(startswith(\"[\") or startswith(\"{\")))
  " "$rec" | put "$corpus/snapshot/rec-$name.json"
done

if [ -n "${MESH503_FIXTURES:-}" ]; then
  extra=fuzz/corpus-extra
  rm -rf "$extra"
  for t in "${targets[@]}"; do mkdir -p "$extra/$t"; done
  cut20='.configs |= map(with_entries(if (.value | type) == "array" then .value |= .[:20] else . end))'
  one_each='.configs[] | . as $c | (to_entries[] | select(.value | type == "array") | .key as $k
    | .value[] | {configs: [{"@type": $c["@type"], ($k): [.]}]}),
    {configs: [with_entries(select(.value | type != "array"))]}'
  k=0
  while IFS= read -r -d '' f; do
    k=$((k + 1))
    if jq -e 'has("configs")' "$f" >/dev/null 2>&1; then
      # A whole dump (its lists cut to 20 entries) is a tls_check seed; each
      # entry of each list of each element a config_dump seed of its own.
      jq -c "$cut20" "$f" >"$extra/tls_check/fx-$k.json"
      jq -c "$one_each" "$f" | split -l 1 -a 4 - "$extra/config_dump/fx-$k-"
    elif jq -e 'has("cluster_statuses")' "$f" >/dev/null 2>&1; then
      cp "$f" "$extra/clusters/fx-$k.json"
    fi
  done < <(find "$MESH503_FIXTURES" -name '*.json' -print0)
  # Dumps saved as `.yaml` (JSON inside) and Kubernetes YAML documents.
  while IFS= read -r -d '' f; do
    k=$((k + 1))
    if jq -e 'has("configs") or has("dynamic_listeners")' "$f" >/dev/null 2>&1; then
      jq -c 'if has("configs") then . else {configs: [.]} end' "$f" | jq -c "$one_each" \
        | split -l 1 -a 4 - "$extra/config_dump/fx-$k-"
    else
      cp "$f" "$extra/istio_objects/fx-$k.yaml"
    fi
  done < <(find "$MESH503_FIXTURES" -name '*.yaml' -print0)
  while IFS= read -r -d '' f; do
    k=$((k + 1))
    cp "$f" "$extra/stats/fx-$k.txt"
  done < <(find "$MESH503_FIXTURES" -name '*stats*.txt' -print0)
  echo "seed.sh: $(find "$extra" -type f | wc -l) extra seeds from $MESH503_FIXTURES in $extra" >&2
fi

for t in "${targets[@]}"; do
  printf '%-14s %4d files %6d KiB\n' "$t" "$(find "$corpus/$t" -type f | wc -l)" \
    "$(du -sk "$corpus/$t" | cut -f1)"
done
