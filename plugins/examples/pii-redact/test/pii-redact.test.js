// Tests of the committed pii-redact.wasm, run under Node's WebAssembly by the
// SDK's ABI host.

import { test, describe, before } from "node:test";
import assert from "node:assert/strict";
import { readFile, readdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import path from "node:path";
import asc from "assemblyscript/asc";
import { Plugin, canonicalEvent, encodeBatch } from "@uptimizr/plugin-sdk/host.js";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const wasmPath = path.join(root, "pii-redact.wasm");
const fixtures = path.join(root, "../../../testdata/fixtures");

const ENV = {
  projectId: "768d1583-bec1-43a1-b54d-91d04a1a6453",
  sessionId: "2ffcb6990083cf20e5ae085857f53b3c",
  visitorId: "9f1c2e4d5b6a79880a1b2c3d4e5f6071",
};
let clock = 1795892750979;

function event(type, payload = {}, { url, pageMeta, env = {} } = {}) {
  const ev = { type, ...ENV, ...env, ts: clock++, sdkVersion: "0.5.0", sceneId: "showroom" };
  if (url !== undefined) ev.url = url;
  if (pageMeta !== undefined) ev.pageMeta = pageMeta;
  return JSON.stringify(Object.assign(ev, payload));
}

let wasm;
before(async () => {
  wasm = await readFile(wasmPath);
});

async function plugin(config = {}) {
  const p = await Plugin.load(wasm);
  const code = p.init(config);
  assert.equal(code, 0, `init(${JSON.stringify(config)})`);
  return p;
}

/** Runs `texts` through props of custom events; returns what each became (unchanged ones as given). */
function redactAll(p, texts) {
  const events = texts.map((t) => event("custom", { name: "t", props: { text: t } }));
  const { results } = p.filter(events);
  return results.map((r, i) => (r.op === 0 ? texts[i] : JSON.parse(r.json).props.text));
}

/** Asserts each [input, expected] pair (expected === input for negatives). */
async function cases(pairs, config) {
  const p = await plugin(config);
  const got = redactAll(p, pairs.map(([input]) => input));
  for (let i = 0; i < pairs.length; i++) assert.equal(got[i], pairs[i][1], `input ${JSON.stringify(pairs[i][0])}`);
}

const same = (s) => [s, s];

test("module: ABI exports, no imports", () => {
  const mod = new WebAssembly.Module(wasm);
  assert.deepEqual(WebAssembly.Module.imports(mod), []);
  assert.deepEqual(
    WebAssembly.Module.exports(mod).map((e) => e.name).sort(),
    ["memory", "uptimizr_abi_version", "uptimizr_alloc", "uptimizr_filter", "uptimizr_init"],
  );
});

describe("patterns", () => {
  test("e-mail addresses", () =>
    cases([
      ["contact john.doe+tag@example.co.uk now", "contact [email] now"],
      ["mailto:a_b@sub.example.org", "mailto:[email]"],
      ["JANE@EXAMPLE.COM.", "[email]."],
      ["encoded john%40example.com here", "encoded [email] here"],
      ["two: a@b.io, c@d.io", "two: [email], [email]"],
      ["caf\u00e9 x@y.de \u{1F600}", "caf\u00e9 [email] \u{1F600}"],
      same("user@localhost"),
      same("@handle and foo@"),
      same("a@b.c"),
      same("version 1.2@3"),
    ]));

  test("phone numbers", () =>
    cases([
      ["call +1 555 123 4567", "call [phone]"],
      ["+4915123456789", "[phone]"],
      ["(555) 123-4567", "[phone]"],
      ["tel 555-123-4567.", "tel [phone]."],
      ["555.123.4567", "[phone]"],
      ["Berlin 030 1234567", "Berlin [phone]"],
      ["+44 20 7946 0958", "[phone]"],
      ["+1 (555) 123-4567", "[phone]"],
      ["06 12 34 56 78", "[phone]"],
      same("2024-01-15"),
      same("15.01.2024"),
      same("at 2024-01-15 10:30"),
      same("21827.692"),
      same("12.345.678"),
      same("call 12345"),
      same("ID 123-45"),
      same("1795892750979"),
      same("v1.2.3"),
      same("+12345"),
      ["+4915123456789 10.1.2.3", "[phone] [ip]"],
      ["+49 30 1234567 or 0171 2345678", "[phone] or [phone]"],
      same("4111 1111 1111 1112 0000"),
    ]));

  test("IPv4 and IPv6 addresses", () =>
    cases([
      ["from 192.168.1.10", "from [ip]"],
      ["client 10.0.0.1:8080", "client [ip]:8080"],
      ["2001:db8::8a2e:370:7334", "[ip]"],
      ["2001:0db8:85a3:0000:0000:8a2e:0370:7334", "[ip]"],
      ["http://[::1]:3000/", "http://[[ip]]:3000/"],
      ["fe80::1ff:fe23:4567:890a%eth0", "[ip]%eth0"],
      ["::ffff:192.0.2.128", "[ip]"],
      same("256.1.1.1"),
      same("1.2.3"),
      same("1.2.3.4.5"),
      same("at 10:30:45"),
      same("std::vector"),
      same("00:1A:2B:3C:4D:5E"),
      same("Chrome/120.0.6099.109"),
      same("app.js:10:15"),
    ]));

  test("payment cards (Luhn)", () =>
    cases([
      ["card 4111 1111 1111 1111 ok", "card [card] ok"],
      ["4111-1111-1111-1111", "[card]"],
      ["4111111111111111", "[card]"],
      ["5555 5555 5555 4444", "[card]"],
      ["amex 3782 822463 10005", "amex [card]"],
      ["4222222222222", "[card]"],
      same("4111 1111 1111 1112"),
      same("4111111111111112"),
      same("1795892750979"),
      same("0000 0000 0000 0000"),
      same("41111111111111111111"),
    ]));

  test("bearer tokens and JWTs", () =>
    cases([
      ["Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abc123def456", "Authorization: Bearer [token]"],
      ["bearer abcdef1234567890", "bearer [token]"],
      ["BEARER  abcdefghijklmnopqrstuvwxyz", "BEARER  [token]"],
      ["jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_abc here", "jwt=[token] here"],
      same("Bearer of bad news"),
      same("Bearer token"),
      same("eyJ is not a token"),
    ]));

  test("API keys and high-entropy secrets", () =>
    cases([
      ["key sk_live_4eC39HqLyjWDarjtT1zdp7dc", "key [secret]"],
      ["sk_test_abcdefgh12345678", "[secret]"],
      ["AKIAIOSFODNN7EXAMPLE", "[secret]"],
      ["id=ASIAY34FZKBOKMUTVV7A;", "id=[secret];"],
      ["ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "[secret]"],
      ["xoxb-123456789012-abcdefghij", "[secret]"],
      ["AIzaSyA-1234567890abcdefghijklmnopqrstu", "[secret]"],
      ["t=Zx9Qm2Lp8Rt5Vw1Ky7Hn3Bc6Df0Gs4Ja", "t=[secret]"],
      ["dGhpcyBpcyBhIHNlY3JldCB0b2tlbjEyMzQ1Njc4", "[secret]"],
      same("768d1583-bec1-43a1-b54d-91d04a1a6453"),
      same("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
      same("ProductConfigurator_Step2_VariantA"),
      same("sk_live_"),
      same("AKIA1234"),
      same("AKIAIOSFODNN7EXAMPLEX"),
      same("short Zx9Qm2Lp8Rt5"),
    ]));

  test("everyday text stays as it is", () =>
    cases([
      same("https://shop.example.com/configurator/model-x?color=red&trim=sport&wheels=19"),
      same("TypeError: Cannot read properties of undefined (reading 'position')"),
      same("    at Scene.render (https://cdn.example.com/babylon.js:1:245678)"),
      same("WebGL: INVALID_OPERATION: drawElements: no buffer is bound to enabled attribute"),
      same("Failed to load https://cdn.example.com/textures/paint_4k_normal.ktx2 (404)"),
      same("https://cdn.example.com/static/js/main.8f2a1b3c.chunk.js"),
      same("Configure your car \u2013 Model X | Example Shop"),
      same("timestamp 2025-03-14T15:09:26.535Z"),
      same("build 20240314.1, price 1299.00 EUR, order #A-10293, +20% faster"),
      same("session 2ffcb6990083cf20e5ae085857f53b3c"),
      same("resolution 1920x1080 at 16:9, dpr 2.0"),
      same("ANGLE (NVIDIA, NVIDIA GeForce RTX 3060 Direct3D11 vs_5_0 ps_5_0, D3D11)"),
      same("Body_Paint_Metallic_LOD0_Variant2_FinalExport_v3"),
      same("materialVariant_CarbonFiber_Gloss2_HighQualityPreset"),
      same("step 3 of 7, 25 items, 100 000 visitors"),
    ]));

  test("deny-listed URL query parameters", () =>
    cases([
      [
        "https://shop.example.com/cb?token=abc123&color=red#access_token=xyz.1",
        "https://shop.example.com/cb?token=[redacted]&color=red#access_token=[redacted]",
      ],
      ["/x?API_KEY=zzz", "/x?API_KEY=[redacted]"],
      ["/x?email=john%40x.com&a=1", "/x?email=[redacted]&a=1"],
      ["/p;jsessionid=1;sid=abc", "/p;jsessionid=1;sid=[redacted]"],
      ["?password=hunter2 and more", "?password=[redacted] and more"],
      same("/x?keyboard=1&tokens=2"),
      same("/x?token=&a=1"),
      same("?color=red"),
    ]));

  test("a config can replace and extend the deny-list", async () => {
    await cases(
      [
        ["/x?color=red&token=abc", "/x?color=[redacted]&token=abc"],
        ["/x?UTM_Source=news&sid=1", "/x?UTM_Source=[redacted]&sid=1"],
      ],
      { denyParams: ["color"], extraDenyParams: ["utm_source"] },
    );
    await cases([["/x?utm_source=news&token=abc", "/x?utm_source=[redacted]&token=[redacted]"]], {
      extraDenyParams: ["utm_source"],
    });
  });

  test("patterns can be switched off one by one", async () => {
    const text = "a@b.io +4915123456789 10.1.2.3 4111111111111111 Bearer abcdef1234567890 AKIAIOSFODNN7EXAMPLE ?token=x";
    const all = "[email] [phone] [ip] [card] Bearer [token] [secret] ?token=[redacted]";
    await cases([[text, all]]);
    const off = {
      redactEmails: "a@b.io [phone] [ip] [card] Bearer [token] [secret] ?token=[redacted]",
      redactPhones: "[email] +4915123456789 [ip] [card] Bearer [token] [secret] ?token=[redacted]",
      redactIPs: "[email] [phone] 10.1.2.3 [card] Bearer [token] [secret] ?token=[redacted]",
      redactCards: "[email] [phone] [ip] 4111111111111111 Bearer [token] [secret] ?token=[redacted]",
      redactTokens: "[email] [phone] [ip] [card] Bearer abcdef1234567890 [secret] ?token=[redacted]",
      redactSecrets: "[email] [phone] [ip] [card] Bearer [token] AKIAIOSFODNN7EXAMPLE ?token=[redacted]",
      redactParams: "[email] [phone] [ip] [card] Bearer [token] [secret] ?token=x",
    };
    for (const [option, want] of Object.entries(off)) await cases([[text, want]], { [option]: false });
  });
});

describe("config", () => {
  test("defaults, nulls and every option accepted", async () => {
    const p = await Plugin.load(wasm);
    assert.equal(p.init("{}"), 0);
    assert.equal(p.init({ redactEmails: null, denyParams: null }), 0);
    assert.equal(
      p.init({
        redactEmails: true, redactPhones: true, redactIPs: true, redactCards: true, redactTokens: true,
        redactSecrets: true, redactParams: true, denyParams: ["a"], extraDenyParams: [],
      }),
      0,
    );
  });

  test("bad configs are refused", async () => {
    const p = await Plugin.load(wasm);
    assert.equal(p.init({ redactEmail: true }), -100, "unknown option");
    assert.equal(p.init({ redactEmails: "yes" }), -101, "not a boolean");
    assert.equal(p.init({ denyParams: "token" }), -101, "not an array");
    assert.equal(p.init({ denyParams: [1] }), -101, "not a string");
    assert.equal(p.init({ denyParams: [""] }), -102, "empty name");
    assert.equal(p.init({ extraDenyParams: ["a=b"] }), -102, "bad character");
    assert.equal(p.init("{\"denyParams\":["), -2, "malformed JSON");
    assert.deepEqual(p.filter([event("custom", { name: "x", props: {} })]), { code: -3 });
  });
});

describe("fields", () => {
  const PII = "mail jane@example.com or +1 555 123 4567";
  const RED = "mail [email] or [phone]";
  let p;
  before(async () => {
    p = await plugin();
  });

  function one(ev) {
    const { results } = p.filter([ev]);
    assert.equal(results.length, 1);
    return results[0];
  }

  test("custom props: string values only", () => {
    const r = one(event("custom", { name: "checkout", props: { note: PII, n: 5551234567, ok: true, none: null, s: "plain" } }));
    assert.equal(r.op, 2);
    assert.deepEqual(JSON.parse(r.json).props, { note: RED, n: 5551234567, ok: true, none: null, s: "plain" });
    assert.equal(JSON.parse(r.json).name, "checkout");
  });

  test("session_start user.traits, not user.id or device", () => {
    const ev = event("session_start", {
      device: { engine: "webgl2", renderer: "ANGLE a@b.io" },
      user: { id: "u-42@example.com", traits: { email: "jane@example.com", plan: "pro", age: 33, ip: "10.0.0.7" } },
      connector: { name: "babylon" },
    }, { url: "https://shop.example.com/?session=abc123" });
    const r = one(ev);
    assert.equal(r.op, 2);
    const got = JSON.parse(r.json);
    assert.deepEqual(got.user, { id: "u-42@example.com", traits: { email: "[email]", plan: "pro", age: 33, ip: "[ip]" } });
    assert.equal(got.device.renderer, "ANGLE a@b.io");
    assert.equal(got.url, "https://shop.example.com/?session=[redacted]");
  });

  test("runtime_error message, stack and source", () => {
    const r = one(event("runtime_error", {
      kind: "error",
      message: "fetch failed for jane@example.com",
      source: "https://cdn.example.com/app.js?token=s3cr3t",
      lineno: 10,
      colno: 5,
      stack: "Error: Bearer abcdef1234567890\n    at https://x.example.com/app.js:10:5",
    }));
    assert.equal(r.op, 2);
    const got = JSON.parse(r.json);
    assert.equal(got.message, "fetch failed for [email]");
    assert.equal(got.source, "https://cdn.example.com/app.js?token=[redacted]");
    assert.equal(got.stack, "Error: Bearer [token]\n    at https://x.example.com/app.js:10:5");
  });

  test("asset_load name", () => {
    const r = one(event("asset_load", { name: "https://cdn.example.com/car.glb?api_key=k1&v=2", loadMs: 120 }));
    assert.equal(JSON.parse(r.json).name, "https://cdn.example.com/car.glb?api_key=[redacted]&v=2");
  });

  test("url and pageMeta title/referrer on any event type", () => {
    const r = one(event("pointer_click", { screen: [0.1, 0.2], button: 0 }, {
      url: "https://shop.example.com/account?email=jane@example.com",
      pageMeta: { title: "Orders of jane@example.com", referrer: "https://mail.example.com/?sid=99", language: "en-US", viewport: [1, 2] },
    }));
    assert.equal(r.op, 2);
    const got = JSON.parse(r.json);
    assert.equal(got.url, "https://shop.example.com/account?email=[redacted]");
    assert.deepEqual(got.pageMeta, { title: "Orders of [email]", referrer: "https://mail.example.com/?sid=[redacted]", language: "en-US", viewport: [1, 2] });
  });

  test("graphics_diagnostic message and context_lost reason", () => {
    const a = one(event("graphics_diagnostic", { severity: "error", category: "validation", message: "device 10.1.2.3 lost" }));
    assert.equal(JSON.parse(a.json).message, "device [ip] lost");
    const b = one(event("context_lost", { reason: "driver reset by admin@example.com" }));
    assert.equal(JSON.parse(b.json).reason, "driver reset by [email]");
  });

  test("fields outside the list are left alone", () => {
    for (const ev of [
      event("mesh_interaction", { mesh: "a@b.io", kind: "click" }),
      event("custom", { name: "jane@example.com", props: {} }),
      event("input_action", { action: "type", code: "4111111111111111" }),
      event("capability_change", { kind: "other", reason: "a@b.io" }),
      event("runtime_error", { kind: "error", message: "plain failure", lineno: 1 }),
    ]) {
      assert.equal(one(ev).op, 0, ev);
    }
  });

  test("an event without PII is kept (op 0), not replaced", () => {
    const r = one(event("custom", { name: "tour_step", props: { color: "red", step: 3, price: 21827.692 } }, {
      url: "https://shop.example.com/configurator/model-x?color=red",
      pageMeta: { title: "Configure your car", referrer: "https://www.example.com/" },
    }));
    assert.equal(r.op, 0);
  });

  test("immutable fields stay byte-identical, even when they look like PII", () => {
    const ev = event(
      "custom",
      { name: "n", props: { a: PII } },
      { env: { sessionId: "jane@example.com", visitorId: "4111111111111111" }, url: "https://x.example.com/?token=1" },
    );
    const r = one(ev);
    assert.equal(r.op, 2);
    const prefix = ev.slice(0, ev.indexOf(',"sdkVersion"'));
    assert.ok(r.json.startsWith(prefix), r.json);
    const got = JSON.parse(r.json);
    for (const k of ["type", "projectId", "sessionId", "visitorId", "ts"]) assert.equal(got[k], JSON.parse(ev)[k]);
    assert.equal(got.props.a, RED);
  });

  test("escaped text is redacted and re-escaped", () => {
    const text = "line1\n\"quoted\" jane@example.com\t\\ end \u00e9";
    const r = one(event("custom", { name: "n", props: { t: text } }));
    assert.equal(JSON.parse(r.json).props.t, text.replace("jane@example.com", "[email]"));
    assert.ok(r.json.includes(JSON.stringify(text.replace("jane@example.com", "[email]"))));
  });

  test("a marker never pushes a field past its length limit", () => {
    // 1-character values of deny-listed params grow to [redacted]
    let url = "https://x.example.com/?";
    while (url.length < 2030) url += "token=1&";
    url = url.slice(0, 2048);
    const r = one(event("custom", { name: "n", props: {} }, { url }));
    const got = JSON.parse(r.json).url;
    assert.ok(got.length <= 2048, `length ${got.length}`);
    assert.ok(got.startsWith("https://x.example.com/?token=[redacted]&token=[redacted]"));
    assert.ok(!/token=1/.test(got));
    // limits count UTF-16 code units; a surrogate pair is never split
    const emoji = "\u{1F600}".repeat(509);
    const t = JSON.parse(one(event("custom", { name: "n", props: { t: "x@y.io" + emoji } })).json).props.t;
    assert.equal(t, "[email]" + "\u{1F600}".repeat(508));
    const t2 = JSON.parse(one(event("custom", { name: "n", props: { t: emoji + "?key=1" } })).json).props.t;
    assert.equal(t2, emoji + "?key=[");
  });
});

describe("fixtures", () => {
  let batches;
  before(async () => {
    const files = (await readdir(fixtures)).filter((f) => f.endsWith(".json")).sort();
    batches = await Promise.all(files.map(async (f) => ({
      name: f,
      events: JSON.parse(await readFile(path.join(fixtures, f), "utf8")).events,
    })));
  });

  test("realistic batches without PII are kept whole", async () => {
    const p = await plugin();
    for (const b of batches) {
      const events = b.events.map((e) => canonicalEvent(e));
      const { results } = p.filter(events);
      assert.equal(results.length, events.length, b.name);
      assert.ok(results.every((r) => r.op === 0), b.name);
    }
  });

  test("PII planted in realistic batches is redacted, nothing else changes", async () => {
    const p = await plugin();
    for (const b of batches) {
      const planted = new Set();
      const events = b.events.map((e, i) => {
        const ev = structuredClone(e);
        if (ev.type === "custom") {
          ev.props.contact = "jane@example.com";
          planted.add(i);
        } else if (ev.type === "session_start") {
          ev.url += "?access_token=abc123";
          ev.user = { id: "u1", traits: { phone: "+49 30 1234567" } };
          planted.add(i);
        }
        return canonicalEvent(ev);
      });
      const { results } = p.filter(events);
      assert.equal(results.length, events.length);
      for (let i = 0; i < events.length; i++) {
        if (!planted.has(i)) {
          assert.equal(results[i].op, 0, `${b.name}[${i}]`);
          continue;
        }
        assert.equal(results[i].op, 2, `${b.name}[${i}]`);
        const before = JSON.parse(events[i]);
        const after = JSON.parse(results[i].json);
        const prefix = events[i].slice(0, events[i].indexOf(',"sdkVersion"'));
        assert.ok(results[i].json.startsWith(prefix));
        if (before.type === "custom") {
          assert.deepEqual(after, { ...before, props: { ...before.props, contact: "[email]" } });
        } else {
          assert.deepEqual(after, {
            ...before,
            url: before.url.replace("abc123", "[redacted]"),
            user: { id: "u1", traits: { phone: "[phone]" } },
          });
        }
      }
    }
  });

  test("memory stays flat over many batches", async () => {
    const p = await plugin();
    const events = batches.flatMap((b) => b.events).slice(0, 1000).map((e) => {
      const ev = structuredClone(e);
      if (ev.type === "custom") ev.props.note = "call +1 555 123 4567 or jane@example.com";
      return canonicalEvent(ev);
    });
    const batch = encodeBatch(events);
    let size = 0;
    for (let round = 0; round < 500; round++) {
      assert.ok(p.filterBytes(batch).out);
      if (round === 5) size = p.memory.buffer.byteLength;
    }
    assert.equal(p.memory.buffer.byteLength, size);
  });
});

test("large batches: 1000 events", async () => {
  const p = await plugin();
  const events = [];
  for (let i = 0; i < 1000; i++) {
    events.push(i % 3 === 0
      ? event("custom", { name: "n", props: { i: String(i), who: `user${i}@example.com` } })
      : event("camera_sample", { position: [i, 0, 0], direction: [0, 0, -1], fov: 0.8 }));
  }
  const { results } = p.filter(events);
  assert.equal(results.length, 1000);
  for (let i = 0; i < 1000; i++) {
    assert.equal(results[i].op, i % 3 === 0 ? 2 : 0);
    if (i % 3 === 0) assert.deepEqual(JSON.parse(results[i].json).props, { i: String(i), who: "[email]" });
  }
});

test("random text never traps and only ever gains markers", async () => {
  const p = await plugin();
  let seed = 99;
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pieces = ["1", "4", "9", "0", "55", " ", "-", ".", ":", "::", "+", "(", ")", "@", "a", "Z", "x", "e", "f",
    "?", "&", "=", "#", ";", "%40", "_", "/", "\u00e9", "\u{1F600}", "Bearer ", "eyJ", "sk_live_", "AKIA", "token=", ".com"];
  const markers = /\[(email|phone|ip|card|token|secret|redacted)\]/g;
  let changed = 0;
  for (let round = 0; round < 6; round++) {
    const texts = [];
    for (let i = 0; i < 500; i++) {
      let t = "";
      const len = Math.floor(rand() * 60);
      for (let k = 0; k < len; k++) t += pieces[Math.floor(rand() * pieces.length)];
      texts.push(t);
    }
    const got = redactAll(p, texts);
    for (let i = 0; i < texts.length; i++) {
      if (got[i] === texts[i]) continue;
      changed++;
      assert.match(got[i], /\[(email|phone|ip|card|token|secret|redacted)\]/, texts[i]);
      // everything between markers is copied from the input, in order
      let at = 0;
      for (const part of got[i].split(markers).filter((_, k) => k % 2 === 0)) {
        const found = texts[i].indexOf(part, at);
        assert.ok(found >= 0, `${JSON.stringify(part)} of ${JSON.stringify(got[i])} in ${JSON.stringify(texts[i])}`);
        at = found + part.length;
      }
    }
  }
  assert.ok(changed > 300, `only ${changed} texts changed`);
});

test("malformed input answers -2", async () => {
  const p = await plugin();
  const b = encodeBatch([event("custom", { name: "n", props: { a: "a@b.io" } })]);
  b[0] = 9;
  assert.deepEqual(p.filterBytes(b), { code: -2 });
  assert.deepEqual(p.filter(['{"type":"custom","props":{"a":"x@y.io"']), { code: -2 });
  assert.deepEqual(p.filter(["not json"]), { code: -2 });
});

test("pii-redact.wasm is built from these sources", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "pii-redact-"));
  try {
    const out = path.join(dir, "pii-redact.wasm");
    const { error } = await asc.main(
      ["assembly/index.ts", "--baseDir", root, "--config", "asconfig.json", "--target", "release", "-o", out],
      { stdout: { write() {} }, stderr: { write() {} } },
    );
    assert.ifError(error);
    assert.ok((await readFile(out)).equals(wasm), "rebuild with `npm run build` and commit pii-redact.wasm");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
