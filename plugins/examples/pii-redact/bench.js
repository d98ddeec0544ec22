// Rough per-batch cost of pii-redact.wasm under Node for the shared 200-event
// fixtures (the production host runs wazero; expect different numbers there).
//
//     node bench.js [path/to/plugin.wasm]

import { readFile, readdir } from "node:fs/promises";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Plugin, canonicalEvent, encodeBatch } from "@uptimizr/plugin-sdk/host.js";

const root = path.dirname(fileURLToPath(import.meta.url));
const fixtures = path.join(root, "../../../testdata/fixtures");
const wasmPath = process.argv[2] || path.join(root, "pii-redact.wasm");

if (!existsSync(fixtures)) {
  console.error(`no fixtures at ${fixtures}`);
  process.exit(1);
}
const wasm = await readFile(wasmPath);
const p = await Plugin.load(wasm);
if (p.init("{}") !== 0) throw new Error("init failed");

const files = (await readdir(fixtures)).filter((f) => f.startsWith("batch200_")).sort();
console.log(`${path.basename(wasmPath)}: ${wasm.length} bytes`);
for (const f of files) {
  const events = JSON.parse(await readFile(path.join(fixtures, f), "utf8")).events.map((e) => canonicalEvent(e));
  const batch = encodeBatch(events);
  const { exports: x, memory } = p;
  const run = () => {
    const ptr = x.uptimizr_alloc(batch.length);
    new Uint8Array(memory.buffer, ptr, batch.length).set(batch);
    const r = x.uptimizr_filter(ptr, batch.length);
    if (r < 0n) throw new Error(`filter: ${r}`);
  };
  for (let i = 0; i < 2000; i++) run(); // warm up the tiers
  const samples = [];
  for (let round = 0; round < 15; round++) {
    const n = 500;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) run();
    samples.push(Number(process.hrtime.bigint() - t0) / n / 1000);
  }
  samples.sort((a, b) => a - b);
  console.log(
    `${f}: ${events.length} events, ${batch.length} bytes: ` +
      `${samples[0].toFixed(1)} µs/batch best, ${samples[7].toFixed(1)} µs median (15 rounds of 500, copy-in included)`,
  );
}
