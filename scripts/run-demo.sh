#!/usr/bin/env bash
# `make run`: three simulated models of different speeds and Envoy with the router in front.
# Stops everything on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
listen=${1:-127.0.0.1:10000}
admin=${2:-127.0.0.1:9901}
sim=target/release/model-sim
run_dir=$(mktemp -d -t model-router-demo.XXXXXX)
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "stopping..."
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$run_dir"
}
trap cleanup INT TERM EXIT

# Ports and upstream names match envoy/demo.json.
"$sim" --listen 127.0.0.1:18081 --admin 127.0.0.1:19081 --model sim/fast-7b     --ttft-ms 40  --tokens-per-sec 120 --output-tokens 24 >"$run_dir/fast.log" 2>&1 &
pids+=($!)
"$sim" --listen 127.0.0.1:18082 --admin 127.0.0.1:19082 --model sim/balanced-32b --ttft-ms 120 --tokens-per-sec 60 --output-tokens 24 >"$run_dir/balanced.log" 2>&1 &
pids+=($!)
"$sim" --listen 127.0.0.1:18083 --admin 127.0.0.1:19083 --model sim/big-70b      --ttft-ms 300 --tokens-per-sec 30 --output-tokens 24 >"$run_dir/big.log" 2>&1 &
pids+=($!)

target/release/model-router envoy envoy/demo.json --wasm build/model_router.wasm \
  --listen "$listen" --admin "$admin" >"$run_dir/envoy.yaml"
envoy -c "$run_dir/envoy.yaml" --concurrency 2 --log-level warn --component-log-level wasm:info &
pids+=($!)

for _ in $(seq 1 100); do
  curl -sf "http://$listen/v1/models" >/dev/null 2>&1 && break
  sleep 0.1
done

cat <<MSG

model-router is up on http://$listen (Envoy admin: http://$admin)
  models: fast (:18081), balanced (:18082), big (:18083); pool "default" = big -> balanced -> fast
  make a model sick:  curl -XPOST 127.0.0.1:19083/sim/config -d '{"fail":"503"}'   (then '{"fail":"none"}')
  live routing:       "model":"default:latency" (lowest TTFT) or "default:throughput" (most tokens/s)
  live numbers:       curl -s http://$listen/model-router/status
  live page:          http://$listen/model-router/status/ui   (terminal: target/release/model-router top)
  some traffic:       make traffic   (in another terminal; 60 s of requests from 4 clients)

  curl -s http://$listen/v1/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"default","messages":[{"role":"user","content":"hi"}]}' -i

  python3 - <<'PY'
from openai import OpenAI
client = OpenAI(base_url="http://$listen/v1", api_key="unused")
for chunk in client.chat.completions.create(model="default", stream=True,
        messages=[{"role": "user", "content": "hi"}]):
    print(chunk.choices[0].delta.content or "" if chunk.choices else "", end="", flush=True)
print()
PY

Ctrl-C stops everything.
MSG
wait
