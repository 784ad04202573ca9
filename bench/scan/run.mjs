// Times the body scan in V8 (Node.js) for every module given on the command line, on bodies of
// 1 KB to 1 MB with `model` last (the whole body is scanned), several rounds, and prints JSON:
// { "<label>": { "<size>": microseconds per scan (median of rounds) } }.
// usage: node run.mjs label=path.wasm [label=path.wasm ...]
import { readFileSync } from "node:fs";

const SIZES = [1024, 16 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024];
const ROUNDS = 7;
const TARGET_NS = 60e6; // time per round, so small bodies get enough repetitions

function body(size) {
  const head = '{"messages":[{"role":"user","content":"';
  const tail = '"}],"stream":false,"model":"default"}';
  let filler = "";
  // Prose with an escaped newline about every 100 bytes, like a typical prompt.
  const piece = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore.\\n";
  while (filler.length < size - head.length - tail.length) filler += piece;
  return Buffer.from(head + filler.slice(0, size - head.length - tail.length) + tail);
}

function stubImports(module) {
  const imports = {};
  for (const { module: m, name, kind } of WebAssembly.Module.imports(module)) {
    if (kind !== "function") continue;
    (imports[m] ??= {})[name] = () => 0;
  }
  return imports;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

// Modules take turns within each round, so machine noise hits them alike.
const modules = process.argv.slice(2).map((arg) => {
  const [label, path] = arg.split("=");
  const module = new WebAssembly.Module(readFileSync(path));
  return { label, exports: new WebAssembly.Instance(module, stubImports(module)).exports };
});
const results = Object.fromEntries(modules.map((m) => [m.label, {}]));
for (const size of SIZES) {
  const bytes = body(size);
  const runs = modules.map(({ label, exports }) => {
    const ptr = exports.body_buffer(bytes.length);
    new Uint8Array(exports.memory.buffer, ptr, bytes.length).set(bytes);
    if (exports.scan(1) !== BigInt(bytes.length - 1)) throw new Error(`${label}: wrong result at ${size}`);
    let reps = 1; // calibrated so one round takes about TARGET_NS
    for (;;) {
      const t = process.hrtime.bigint();
      exports.scan(reps);
      if (Number(process.hrtime.bigint() - t) > TARGET_NS / 4 || reps > 1e7) break;
      reps *= 2;
    }
    return { label, exports, reps: reps * 4, perScan: [] };
  });
  for (let r = 0; r < ROUNDS; r++) {
    for (const run of runs) {
      const t = process.hrtime.bigint();
      run.exports.scan(run.reps);
      run.perScan.push(Number(process.hrtime.bigint() - t) / run.reps / 1000);
    }
  }
  for (const run of runs) results[run.label][size] = median(run.perScan);
}
console.log(JSON.stringify(results, null, 1));
