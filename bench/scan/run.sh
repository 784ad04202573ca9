#!/usr/bin/env bash
# Body-scan speed in V8 (Node.js): the same scan built four ways (opt-level 3 or s, with or
# without SIMD128), timed side by side in one run on bodies of 1 KB to 1 MB with `model` last.
# Writes bench/results/scan.json and bench/results/scan.md.
set -euo pipefail
cd "$(dirname "$0")"
out=../results
variants=("o3|-C opt-level=3" "o3-simd128|-C opt-level=3 -C target-feature=+simd128"
          "os|-C opt-level=s" "os-simd128|-C opt-level=s -C target-feature=+simd128")
args=()
for v in "${variants[@]}"; do
  label=${v%%|*}
  # RUSTFLAGS replaces the repository's .cargo/config.toml rustflags (which turn SIMD128 on).
  RUSTFLAGS="${v#*|}" CARGO_TARGET_DIR="target/$label" \
    cargo build -q --release --target wasm32-wasip1
  args+=("$label=target/$label/wasm32-wasip1/release/scan_bench.wasm")
done
node run.mjs "${args[@]}" > "$out/scan.json"
python3 - "$out/scan.json" "$out/scan.md" <<'PY'
import json, os, sys
data = json.load(open(sys.argv[1]))
sizes = list(next(iter(data.values())).keys())
base = data["o3"]
lines = ["# Body scan in V8: opt-level and SIMD128", "",
         "`make bench-scan` (bench/scan/run.sh): `body_scan::find_model` compiled to wasm32-wasip1 four",
         "ways, run in Node.js " + os.popen("node --version").read().strip() + " (V8), modules taking turns within each of 7 rounds; median",
         "µs per scan of a chat body whose `model` is the last key (prose with an escaped newline",
         "about every 100 bytes). Ratio = time / time of opt-level 3 without SIMD128.", "",
         "| build | " + " | ".join(f"{int(s) // 1024} KB" for s in sizes) + " |",
         "|---|" + "---|" * len(sizes)]
for label, row in data.items():
    cells = [f"{row[s]:.1f} µs ({row[s] / base[s]:.2f}×)" for s in sizes]
    lines.append(f"| {label} | " + " | ".join(cells) + " |")
lines += ["", f"Machine: {os.cpu_count()} cores; other work on the machine moves absolute times, the",
          "ratios come from the same rounds."]
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
