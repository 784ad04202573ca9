// cargo runner for wasm32-wasip1 test binaries: runs them in Node.js's V8 (the same engine
// family as Envoy's), so the SIMD128 code paths are tested, not only the host fallbacks.
import { readFileSync } from "node:fs";
import { WASI } from "node:wasi";

const [path, ...args] = process.argv.slice(2);
// cargo runs tests in the package root; tests read their fixtures (the fuzz corpus) from there.
const wasi = new WASI({
  version: "preview1",
  args: [path, ...args],
  env: process.env,
  preopens: { [process.cwd()]: process.cwd() },
  returnOnExit: true,
});
const module = await WebAssembly.compile(readFileSync(path));
// The proxy-wasm host functions are linked in but never called by core tests: any call fails.
const imports = wasi.getImportObject();
for (const { module: m, name, kind } of WebAssembly.Module.imports(module)) {
  if (kind === "function" && !(imports[m] && name in imports[m])) {
    (imports[m] ??= {})[name] = () => { throw new Error(`host function ${m}.${name} called in a test`); };
  }
}
const instance = await WebAssembly.instantiate(module, imports);
// The filter's `_initialize` (proxy_wasm::main!) sits beside the test harness's `_start`, and
// Node's WASI refuses a module exporting both: hand it only what a command needs.
const { _start, memory } = instance.exports;
process.exitCode = wasi.start({ exports: { _start, memory } });
