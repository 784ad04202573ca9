#!/usr/bin/env bash
# `make traffic`: a bounded stream of requests through the demo router (`make run` in another
# terminal), so the live page and `model-router top` have something to show. Four clients
# alternate between default:latency, default:throughput and default for SECONDS (default 60).
set -euo pipefail
listen=${1:-127.0.0.1:10000}
seconds=${2:-60}
curl -sf "http://$listen/v1/models" >/dev/null || { echo "no router on $listen: start it with make run"; exit 1; }
echo "sending requests to http://$listen for ${seconds}s (4 clients); watch them at"
echo "  http://$listen/model-router/status/ui   or   target/release/model-router top --url http://$listen/model-router/status"
end=$((SECONDS + seconds))
client() {
  local n=0 models=("default:latency" "default:throughput" "default")
  while (( SECONDS < end && n < 100000 )); do
    local model=${models[$(( (n + $1) % 3 ))]}
    curl -s -m 30 -o /dev/null "http://$listen/v1/chat/completions" -H 'content-type: application/json' \
      -d "{\"model\":\"$model\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" || true
    n=$((n + 1))
  done
  echo "client $1: $n requests"
}
for i in 0 1 2 3; do client "$i" & done
wait
