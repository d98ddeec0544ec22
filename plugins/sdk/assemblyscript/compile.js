// Compiles an AssemblyScript plugin with the flags the SDK is meant for
// (see README.md, "Building"). Used by the tests; usable from build scripts:
//
//     node compile.js <entry.ts> <out.wasm> [--runtime stub] [other asc flags...]

import asc from "assemblyscript/asc";
import { fileURLToPath } from "node:url";

/**
 * The asc flags plugins are built with: optimised, no imports (`abort` traps
 * in place), and the `minimal` runtime, whose collector the SDK runs at the
 * start of every batch. Later flags win, so `--runtime stub` can follow.
 */
export const PLUGIN_FLAGS = ["-O3", "--runtime", "minimal", "--use", "abort="];

/** Compiles `entry` to `outFile`; throws with the compiler's diagnostics on failure. */
export async function compile(entry, outFile, extra = []) {
  const stderr = [];
  const { error } = await asc.main([entry, "-o", outFile, ...PLUGIN_FLAGS, ...extra], {
    stdout: { write() {} },
    stderr: { write(s) { stderr.push(String(s)); } },
  });
  if (error) throw new Error(`asc ${entry}: ${error.message}\n${stderr.join("")}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [entry, out, ...extra] = process.argv.slice(2);
  if (!entry || !out) {
    console.error("usage: node compile.js <entry.ts> <out.wasm> [asc flags...]");
    process.exit(2);
  }
  await compile(entry, out, extra);
}
