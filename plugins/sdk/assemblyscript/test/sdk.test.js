// Tests of the SDK through a test plugin (test/plugin/sdk-test.ts) compiled
// with asc and run under Node's WebAssembly by the ABI host in host.js.

import { test, describe, before } from "node:test";
import assert from "node:assert/strict";
import { readFile, mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { compile } from "../compile.js";
import { Plugin, encodeBatch, decodeOutput, BadOutputError } from "../host.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const buildDir = path.join(here, "..", "build");
const entry = path.join(here, "plugin", "sdk-test.ts");

const ENV = {
  projectId: "768d1583-bec1-43a1-b54d-91d04a1a6453",
  sessionId: "2ffcb6990083cf20e5ae085857f53b3c",
  visitorId: "9f1c2e4d5b6a79880a1b2c3d4e5f6071",
};
let clock = 1795892750979;

/** A small seeded random number generator (mulberry32), for repeatable tests. */
function prng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A canonical event of `type` with `payload` members (and optional url/pageMeta). */
function event(type, payload = {}, { url, pageMeta } = {}) {
  const ev = { type, ...ENV, ts: clock++, sdkVersion: "0.5.0", sceneId: "showroom" };
  if (url !== undefined) ev.url = url;
  if (pageMeta !== undefined) ev.pageMeta = pageMeta;
  return JSON.stringify(Object.assign(ev, payload));
}

const custom = (name, props = {}, opts) => event("custom", { name, props }, opts);
const pointerMove = () => event("pointer_move", { screen: [0.5, 0.25], source: "mouse" });
const cameraSample = () => event("camera_sample", { position: [1, 2, 3], direction: [0, 0, -1], fov: 0.8 });

/** The raw JSON text of each immutable member ("key":value) of an event. */
function immutableMembers(json) {
  const obj = JSON.parse(json);
  return ["type", "projectId", "sessionId", "visitorId", "ts"].map((k) => {
    const member = `${JSON.stringify(k)}:${JSON.stringify(obj[k])}`;
    assert.ok(json.includes(member), `${member} in ${json}`);
    return member;
  });
}

async function build(runtime) {
  await mkdir(buildDir, { recursive: true });
  const out = path.join(buildDir, `sdk-test-${runtime}.wasm`);
  await compile(entry, out, ["--runtime", runtime]);
  return readFile(out);
}

async function ready(wasm, config = "{}") {
  const p = await Plugin.load(wasm);
  assert.equal(p.init(config), 0);
  return p;
}

for (const runtime of ["minimal", "stub", "incremental"]) {
  describe(`SDK (${runtime} runtime)`, () => {
    let wasm;
    before(async () => {
      wasm = await build(runtime);
    });

    test("exports the ABI and imports nothing", () => {
      const mod = new WebAssembly.Module(wasm);
      assert.deepEqual(WebAssembly.Module.imports(mod), []);
      const names = WebAssembly.Module.exports(mod).map((e) => e.name).sort();
      assert.deepEqual(names, ["memory", "uptimizr_abi_version", "uptimizr_alloc", "uptimizr_filter", "uptimizr_init"]);
    });

    test("uptimizr_alloc: grows one reused buffer, 0 for impossible sizes", async () => {
      const p = await Plugin.load(wasm);
      const a = p.exports.uptimizr_alloc(100);
      assert.ok(a > 0);
      assert.equal(p.exports.uptimizr_alloc(10), a, "smaller request reuses the buffer");
      assert.ok(p.exports.uptimizr_alloc(0) > 0);
      const big = p.exports.uptimizr_alloc(4 << 20);
      assert.ok(big > 0);
      assert.ok(p.memory.buffer.byteLength >= big + (4 << 20));
      assert.equal(p.exports.uptimizr_alloc(-1), 0);
      assert.equal(p.exports.uptimizr_alloc(0x7fffffff), 0);
    });

    test("keep, drop and replace are encoded as ops 0, 1 and 2", async () => {
      const p = await ready(wasm);
      const events = [custom("hello", { a: "b" }), pointerMove(), custom("mark", { a: "secret", n: 1, b: "x" }), cameraSample()];
      const { results } = p.filter(events);
      assert.deepEqual(results.map((r) => r.op), [0, 1, 2, 0]);
      const edited = JSON.parse(results[2].json);
      assert.deepEqual(edited, { ...JSON.parse(events[2]), props: { a: "[x]", n: 1, b: "[x]" } });
      // everything outside the edited values is byte-identical
      assert.equal(results[2].json, events[2].replace('"secret"', '"[x]"').replace('"x"', '"[x]"'));
    });

    test("the output region follows the ABI byte layout", async () => {
      const p = await ready(wasm);
      const events = [custom("drop"), custom("mark", { a: "zz" }), custom("k")];
      const { out } = p.filterBytes(encodeBatch(events));
      const dv = new DataView(out.buffer);
      assert.equal(dv.getUint32(0, true), 3);
      assert.equal(out[4], 1);
      assert.equal(out[5], 2);
      const n = dv.getUint32(6, true);
      assert.equal(new TextDecoder().decode(out.subarray(10, 10 + n)), events[1].replace('"zz"', '"[x]"'));
      assert.equal(out[10 + n], 0);
      assert.equal(out.length, 11 + n);
    });

    test("an empty batch answers count 0", async () => {
      const p = await ready(wasm);
      assert.deepEqual(p.filter([]), { results: [] });
    });

    test("a replacement equal to the original keeps the event (op 0)", async () => {
      const p = await ready(wasm);
      const { results } = p.filter([
        custom("same", { a: "x", b: "é \"q\" \\ \n" }),
        custom("undo", { a: "back" }),
      ]);
      assert.deepEqual(results.map((r) => r.op), [0, 0]);
    });

    test("dropping an edited event drops it", async () => {
      const p = await ready(wasm);
      assert.deepEqual(p.filter([custom("editdrop", { a: "x" })]).results, [{ op: 1 }]);
    });

    test("random strings round-trip at every length and alignment", async () => {
      const p = await ready(wasm, { marker: "" });
      const rand = prng(7);
      const alphabet = ["a", "Z", "0", " ", '"', "\\", "/", "\n", "\u0000", "\u001f", "\u007f", "\u00e9", "\u4e2d", "\u{1F600}", "\t"];
      const texts = [];
      for (let i = 0; i < 400; i++) {
        let t = "";
        const len = Math.floor(rand() * 40);
        for (let k = 0; k < len; k++) t += alphabet[Math.floor(rand() * alphabet.length)];
        texts.push(t);
      }
      const { results } = p.filter(texts.map((text, i) => custom("echo", { pad: "x".repeat(i % 8), text })));
      results.forEach((r, i) => assert.equal(JSON.parse(r.json).props.text, texts[i] + "|", `text ${i}`));
    });

    test("mutated events never trap: a result or -2", async () => {
      const rand = prng(11);
      const base = custom("mark", { a: "b", list: "x" }, { url: "https://x.test/", pageMeta: { title: "t", viewport: [1, 2] } });
      const chars = '{}[]",:\\0123456789-+.eEtrufalsn xyz';
      let codes = 0;
      for (let i = 0; i < 1500; i++) {
        const p = await ready(wasm);
        let s = base;
        const edits = 1 + Math.floor(rand() * 3);
        for (let k = 0; k < edits; k++) {
          const at = Math.floor(rand() * s.length);
          const c = chars[Math.floor(rand() * chars.length)];
          const what = rand();
          if (what < 0.4) s = s.slice(0, at) + c + s.slice(at + 1);
          else if (what < 0.7) s = s.slice(0, at) + c + s.slice(at);
          else if (what < 0.9) s = s.slice(0, at) + s.slice(at + 1);
          else s = s.slice(0, at);
        }
        const r = p.filter([s, custom("x")]);
        if (r.code !== undefined) {
          assert.equal(r.code, -2, s);
          codes++;
        } else {
          assert.equal(r.results.length, 2);
        }
      }
      assert.ok(codes > 100, `only ${codes} malformed`);
    });

    test("a second edit of the same value supersedes the first", async () => {
      const p = await ready(wasm);
      const { results } = p.filter([custom("twice", { a: "orig", z: "keep" })]);
      assert.equal(results[0].op, 2);
      assert.deepEqual(JSON.parse(results[0].json).props, { a: "second", z: "keep" });
    });

    test("unicode and escapes round-trip through string reads and writes", async () => {
      const text = "h\u00e9llo \"q\" back\\slash \n\t\r\b\f \u0001 \u007f \u4e2d\u6587 \u{1F600} /";
      const p = await ready(wasm, { marker: "\u2192\u2713\u{1F512}" });
      const { results } = p.filter([custom("echo", { text }), custom("upper", { text })]);
      assert.equal(results[0].op, 2);
      assert.equal(JSON.parse(results[0].json).props.text, text + "|\u2192\u2713\u{1F512}");
      // the SDK escapes minimally, like the collector's canonical JSON
      assert.ok(results[0].json.includes(JSON.stringify(text + "|\u2192\u2713\u{1F512}")));
      const upper = text.replace(/[a-z]/g, (c) => c.toUpperCase());
      assert.equal(JSON.parse(results[1].json).props.text, upper);
    });

    test("\\u escapes, surrogate pairs and lone surrogates decode to valid UTF-8", async () => {
      const p = await ready(wasm);
      // written by hand: \u escapes the collector would not produce, and a lone surrogate
      const raw = event("custom", { name: "echo", props: { text: "PLACEHOLDER" } })
        .replace('"PLACEHOLDER"', '"\\u0041\\u00e9\\ud83d\\ude00 \\ud800x \\udc00 \\/"');
      const { results } = p.filter([raw]);
      assert.equal(results[0].op, 2);
      assert.equal(JSON.parse(results[0].json).props.text, "A\u00e9\u{1F600} \ufffdx \ufffd /|[x]");
    });

    test("escaped keys are decoded and matched", async () => {
      const p = await ready(wasm);
      const { results } = p.filter([custom("keys", { "k\"ey": 1, "\u00fcber": true, plain: null, out: "" })]);
      assert.equal(JSON.parse(results[0].json).props.out, "k\"ey,\u00fcber,plain,out");
    });

    test("numbers are read exactly", async () => {
      const p = await ready(wasm);
      const cases = [[21.5, 43], [1e3, 2000], [-0.125, -0.25], [0, 0], [123456.789, 246913.578], [1.5e-7, 3e-7], [12345678901234567890, 24691357802469135000]];
      for (const [n, want] of cases) {
        const { results } = p.filter([custom("number", { n, out: "" })]);
        assert.equal(Number(JSON.parse(results[0].json).props.out), want, `2 × ${n}`);
      }
    });

    test("nested objects and arrays are reachable", async () => {
      const p = await ready(wasm);
      const { results } = p.filter([
        custom("nested", { out: "" }, { url: "https://x.test/", pageMeta: { title: "Showroom", viewport: [1920, 1080], language: "en" } }),
      ]);
      assert.equal(JSON.parse(results[0].json).props.out, "Showroom 1920x1080 1080.0");
    });

    test("member count and event position", async () => {
      const p = await ready(wasm);
      const { results } = p.filter([custom("x"), custom("members", { out: "" }), custom("batch", { out: "" })]);
      assert.equal(JSON.parse(results[1].json).props.out, "9");
      assert.equal(JSON.parse(results[2].json).props.out, "3@2");
    });

    test("immutable fields cannot be edited and stay byte-identical", async () => {
      const p = await ready(wasm);
      const events = [custom("immutable", { out: "" }), custom("mark", { a: "1", b: "2" })];
      const { results } = p.filter(events);
      assert.equal(JSON.parse(results[0].json).props.out, "refused");
      for (let i = 0; i < events.length; i++) {
        assert.equal(results[i].op, 2);
        const before = immutableMembers(events[i]);
        const after = immutableMembers(results[i].json);
        assert.deepEqual(after, before);
        // in canonical order they lead the event: the whole prefix is unchanged
        const prefix = events[i].slice(0, events[i].indexOf(',"sdkVersion"'));
        assert.ok(results[i].json.startsWith(prefix));
      }
    });

    test("config reaches the plugin through uptimizr_init", async () => {
      const p = await Plugin.load(wasm);
      assert.equal(p.init(" { \"marker\" : \"<gone>\" } \n"), 0);
      const { results } = p.filter([custom("mark", { a: "b" })]);
      assert.deepEqual(JSON.parse(results[0].json).props, { a: "<gone>" });
    });

    test("init refuses bad configs with the plugin's code or -2", async () => {
      const p = await Plugin.load(wasm);
      assert.equal(p.init({ refuse: true }), -100);
      assert.deepEqual(p.filter([custom("x")]), { code: -3 }, "not configured after a refusal");
      assert.equal(p.init({ marker: 7 }), -101);
      assert.equal(p.init("{"), -2);
      assert.equal(p.init("[]"), -2);
      assert.equal(p.init("{\"a\":1} x"), -2);
      assert.equal(p.init("{\"a\":tru}"), -2);
      assert.equal(p.exports.uptimizr_init(p.exports.uptimizr_alloc(0), 0), 0, "no config at all is {}");
      assert.equal(p.init("{}"), 0);
      assert.equal(p.filter([custom("x")]).results[0].op, 0);
    });

    test("filter before init answers -3", async () => {
      const p = await Plugin.load(wasm);
      assert.deepEqual(p.filter([custom("x")]), { code: -3 });
    });

    test("a plugin can reject a batch with its own code", async () => {
      const p = await ready(wasm);
      assert.deepEqual(p.filter([custom("x"), custom("reject")]), { code: -104 });
      // the instance still works afterwards
      assert.equal(p.filter([custom("x")]).results[0].op, 0);
    });

    describe("malformed input answers -2 without trapping", () => {
      const good = () => custom("mark", { a: "b" });
      const batches = {
        "wrong version": () => { const b = encodeBatch([good()]); b[0] = 2; return b; },
        "shorter than the header": () => new Uint8Array([1, 0, 0, 0]),
        "count larger than the events": () => { const b = encodeBatch([good()]); b[4] = 2; return b; },
        "huge count": () => { const b = encodeBatch([good()]); b.set([0xff, 0xff, 0xff, 0xff], 4); return b; },
        "event length past the end": () => { const b = encodeBatch([good()]); b[8] += 1; return b; },
        "truncated length": () => encodeBatch([good()]).subarray(0, 10),
        "trailing bytes": () => { const b = encodeBatch([good()]); const c = new Uint8Array(b.length + 1); c.set(b); return c; },
        "event is not an object": () => encodeBatch(["[1,2]"]),
        "event is empty": () => encodeBatch([""]),
        "edited event missing its closing brace": () => encodeBatch([good().slice(0, -1)]),
        "edited event with garbage after the props": () => encodeBatch([good().slice(0, -1) + ',"x":1,}']),
        "unterminated string": () => encodeBatch(['{"type":"custom","name":"mark","props":{"a":"b}}']),
        "missing colon": () => encodeBatch(['{"type":"custom","name":"mark","props"{"a":"b"}}']),
        "bad literal": () => encodeBatch(['{"type":"custom","name":"mark","props":{"a":nul}}']),
        "nesting deeper than 64": () => encodeBatch([custom("mark", { a: "b" }).replace('"a":"b"', '"a":"b","d":' + "[".repeat(10000) + "]".repeat(10000))]),
        "invalid escape in a string read": () => encodeBatch([custom("echo", { text: "PH" }).replace('"PH"', '"bad \\x escape"')]),
        "truncated \\u escape": () => encodeBatch([custom("echo", { text: "PH" }).replace('"PH"', '"\\u12"')]),
      };
      for (const [name, make] of Object.entries(batches)) {
        test(name, async () => {
          const p = await ready(wasm);
          assert.deepEqual(p.filterBytes(make()), { code: -2 });
          // the instance is still usable (the host discards it anyway)
          assert.equal(p.filter([good()]).results[0].op, 2);
        });
      }

      test("input outside linear memory", async () => {
        const p = await ready(wasm);
        const top = p.memory.buffer.byteLength;
        assert.equal(p.exports.uptimizr_filter(top - 4, 100), -2n);
        assert.equal(p.exports.uptimizr_filter(0, 8), -2n);
        assert.equal(p.exports.uptimizr_filter(16, -1), -2n);
        assert.equal(p.exports.uptimizr_init(top - 1, 10), -2);
      });
    });

    test("a batch of 1000 events", async () => {
      const p = await ready(wasm);
      const events = [];
      const want = [];
      for (let i = 0; i < 1000; i++) {
        switch (i % 5) {
          case 0: events.push(cameraSample()); want.push(0); break;
          case 1: events.push(pointerMove()); want.push(1); break;
          case 2: events.push(custom("mark", { i: String(i), n: i })); want.push(2); break;
          case 3: events.push(custom("drop")); want.push(1); break;
          default: events.push(custom("batch", { out: "" })); want.push(2);
        }
      }
      const { results } = p.filter(events);
      assert.equal(results.length, 1000);
      assert.deepEqual(results.map((r) => r.op), want);
      for (let i = 0; i < 1000; i++) {
        if (i % 5 === 2) assert.deepEqual(JSON.parse(results[i].json).props, { i: "[x]", n: i });
        if (i % 5 === 4) assert.equal(JSON.parse(results[i].json).props.out, `1000@${i}`);
      }
    });

    test("the host-side decoder rejects bad output", () => {
      const ok = new Uint8Array([1, 0, 0, 0, 0]);
      assert.deepEqual(decodeOutput(ok, 1), [{ op: 0 }]);
      assert.throws(() => decodeOutput(ok, 2), BadOutputError);
      assert.throws(() => decodeOutput(new Uint8Array([1, 0, 0, 0, 3]), 1), BadOutputError);
      assert.throws(() => decodeOutput(new Uint8Array([1, 0, 0, 0, 0, 0]), 1), BadOutputError);
      assert.throws(() => decodeOutput(new Uint8Array([1, 0, 0, 0, 2, 5, 0, 0, 0, 0x7b]), 1), BadOutputError);
    });
  });
}

test("minimal runtime: memory stays flat while the plugin allocates every batch", async () => {
  const wasm = await readFile(path.join(buildDir, "sdk-test-minimal.wasm")).catch(() => build("minimal"));
  const p = await ready(wasm);
  const events = [];
  for (let i = 0; i < 500; i++) events.push(custom(i % 2 ? "echo" : "keys", { text: "x".repeat(200), out: "" }));
  const batch = encodeBatch(events);
  let size = 0;
  for (let round = 0; round < 300; round++) {
    const r = p.filterBytes(batch);
    assert.ok(r.out, `round ${round}`);
    if (round === 20) size = p.memory.buffer.byteLength;
  }
  assert.equal(p.memory.buffer.byteLength, size);
});
