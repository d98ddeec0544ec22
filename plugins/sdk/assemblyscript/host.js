// A small JavaScript host for ABI v1 plugins (docs/PLUGIN_ABI.md), for tests
// and local experiments under Node. It follows the production calling
// sequence: instantiate (offering only env.abort), check the ABI version, alloc → copy
// → init, then per batch alloc → copy → filter → decode the output, and it
// checks the output as strictly as the collector does for framing.

const te = new TextEncoder();
const td = new TextDecoder("utf-8", { fatal: true });

/** Encodes events (strings, objects or byte arrays) as an ABI v1 batch. */
export function encodeBatch(events) {
  const parts = events.map((e) =>
    e instanceof Uint8Array ? e : te.encode(typeof e === "string" ? e : JSON.stringify(e)),
  );
  let size = 8;
  for (const p of parts) size += 4 + p.length;
  const buf = new Uint8Array(size);
  const dv = new DataView(buf.buffer);
  dv.setUint32(0, 1, true);
  dv.setUint32(4, parts.length, true);
  let o = 8;
  for (const p of parts) {
    dv.setUint32(o, p.length, true);
    buf.set(p, o + 4);
    o += 4 + p.length;
  }
  return buf;
}

/** Thrown when a plugin's output breaks the ABI (the host would discard the instance). */
export class BadOutputError extends Error {}

/**
 * Decodes a result region (a copy of the bytes) into [{op, json?, bytes?}].
 * Throws BadOutputError on a count mismatch, an unknown op, a truncated
 * entry, invalid UTF-8 or trailing bytes.
 */
export function decodeOutput(bytes, expectedCount) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4) throw new BadOutputError("output shorter than its count");
  const count = dv.getUint32(0, true);
  if (count !== expectedCount) throw new BadOutputError(`count ${count}, want ${expectedCount}`);
  const out = [];
  let o = 4;
  for (let i = 0; i < count; i++) {
    if (o >= bytes.length) throw new BadOutputError(`entry ${i} truncated`);
    const op = bytes[o++];
    if (op === 0 || op === 1) {
      out.push({ op });
    } else if (op === 2) {
      if (o + 4 > bytes.length) throw new BadOutputError(`entry ${i} length truncated`);
      const n = dv.getUint32(o, true);
      o += 4;
      if (o + n > bytes.length) throw new BadOutputError(`entry ${i} JSON truncated`);
      const raw = bytes.slice(o, o + n);
      o += n;
      let json;
      try {
        json = td.decode(raw);
      } catch {
        throw new BadOutputError(`entry ${i} is not valid UTF-8`);
      }
      out.push({ op, json, bytes: raw });
    } else {
      throw new BadOutputError(`entry ${i}: unknown op ${op}`);
    }
  }
  if (o !== bytes.length) throw new BadOutputError(`${bytes.length - o} trailing bytes`);
  return out;
}

/** One plugin instance. */
export class Plugin {
  constructor(instance) {
    this.instance = instance;
    this.exports = instance.exports;
    for (const name of ["memory", "uptimizr_abi_version", "uptimizr_alloc", "uptimizr_init", "uptimizr_filter"]) {
      if (!(name in this.exports)) throw new Error(`module does not export ${name}`);
    }
    if (typeof this.exports._initialize === "function") this.exports._initialize();
    const v = this.exports.uptimizr_abi_version();
    if (v !== 1) throw new Error(`ABI version ${v}, want 1`);
  }

  /**
   * Instantiates `bytes`. The only import offered is `env.abort` (AssemblyScript's, which the
   * ABI allows; it traps), so a module importing anything else fails here as it would at upload.
   */
  static async load(bytes) {
    const env = {
      abort() {
        throw new WebAssembly.RuntimeError("abort");
      },
    };
    const { instance } = await WebAssembly.instantiate(bytes, { env });
    return new Plugin(instance);
  }

  get memory() {
    return this.exports.memory;
  }

  /** Copies `bytes` into guest memory obtained from uptimizr_alloc; returns the address. */
  put(bytes) {
    const ptr = this.exports.uptimizr_alloc(bytes.length);
    if (ptr === 0) throw new Error("uptimizr_alloc failed");
    new Uint8Array(this.memory.buffer, ptr, bytes.length).set(bytes);
    return ptr;
  }

  /** Calls uptimizr_init with a config (string or object); returns its code. */
  init(config = "{}") {
    const bytes = te.encode(typeof config === "string" ? config : JSON.stringify(config));
    const ptr = this.put(bytes);
    return this.exports.uptimizr_init(ptr, bytes.length);
  }

  /** Filters encoded batch bytes; returns {code} on an error code, else {out: Uint8Array copy}. */
  filterBytes(batch) {
    const ptr = this.put(batch);
    const r = this.exports.uptimizr_filter(ptr, batch.length);
    if (r < 0n) return { code: Number(r) };
    const outPtr = Number(r >> 32n);
    const outLen = Number(r & 0xffffffffn);
    if (outPtr + outLen > this.memory.buffer.byteLength) throw new BadOutputError("output outside memory");
    return { out: new Uint8Array(this.memory.buffer, outPtr, outLen).slice() };
  }

  /**
   * Filters a batch of events. Returns {code} when the plugin answered with
   * an error code, else {results: [{op, json?}]} (decoded and checked).
   */
  filter(events) {
    const r = this.filterBytes(encodeBatch(events));
    if (r.code !== undefined) return r;
    return { results: decodeOutput(r.out, events.length) };
  }
}

const ENVELOPE = ["type", "projectId", "sessionId", "visitorId", "ts", "sdkVersion", "sceneId", "url", "pageMeta"];

/**
 * Re-encodes an event object (e.g. from a collect body, whose members may
 * come in any order) in the canonical member order the host sends:
 * envelope first, then the payload members in their given order. A missing
 * `visitorId` (the server sets it) is filled with `visitorId`.
 */
export function canonicalEvent(ev, visitorId = "5d41402abc4b2a76b9719d911017c592") {
  const out = {};
  for (const k of ENVELOPE) {
    if (k === "visitorId" && ev[k] === undefined) out[k] = visitorId;
    else if (ev[k] !== undefined) out[k] = ev[k];
  }
  for (const k of Object.keys(ev)) if (!ENVELOPE.includes(k)) out[k] = ev[k];
  return JSON.stringify(out);
}
