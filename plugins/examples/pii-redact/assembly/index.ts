// pii-redact: an Uptimizr Edge filter plugin that redacts e-mail addresses,
// phone numbers, IP addresses, payment cards, bearer tokens, API keys and
// deny-listed URL query parameters from the free-text fields of events.
// See README.md for the rules and the config.

import {
  Event, JsonView, Verdict, Members, Elements, Bytes, ByteBuffer, Span, NONE, Kind, spanStart,
  registerFilter, onConfig,
} from "@uptimizr/plugin-sdk/assembly";
import {
  redact, truncateUtf16, setOptions, denyList, denyParam, denyParamBytes, DEFAULT_DENY_PARAMS,
} from "./redact";

export * from "@uptimizr/plugin-sdk/assembly/exports";

// --- config -----------------------------------------------------------------

/** Config error codes (plugin-defined, ≤ -100). */
const UNKNOWN_OPTION = -100;
const WRONG_TYPE = -101;
const BAD_PARAM_NAME = -102;

const BOOL_OPTIONS: StaticArray<string> = [
  "redactEmails", "redactPhones", "redactIPs", "redactCards", "redactTokens", "redactSecrets", "redactParams",
];

const cfgMembers = new Members();
const text = new Bytes();
const cfgElements = new Elements();

function optionIndex(cfg: JsonView, key: Span): i32 {
  for (let i = 0; i < BOOL_OPTIONS.length; i++) {
    if (cfg.equals(key, unchecked(BOOL_OPTIONS[i]))) return i;
  }
  return -1;
}

// Adds the names in the array `list` to the deny-list; returns 0 or an error code.
function addParams(cfg: JsonView, list: Span): i32 {
  if (!cfg.isArray(list)) return WRONG_TYPE;
  let it = cfgElements;
  it.over(list);
  while (it.next()) {
    if (!cfg.isString(it.value)) return WRONG_TYPE;
    if (!cfg.readUtf8(it.value, text) || !denyParamBytes(text.ptr, text.len)) return BAD_PARAM_NAME;
  }
  return 0;
}

onConfig((cfg: JsonView): i32 => {
  let flags = new StaticArray<bool>(BOOL_OPTIONS.length);
  for (let i = 0; i < flags.length; i++) flags[i] = true;
  let deny = NONE;
  let extra = NONE;
  let it = cfgMembers;
  it.over(cfg.span);
  while (it.next()) {
    let k = optionIndex(cfg, it.key);
    if (k >= 0) {
      let v = cfg.kind(it.value);
      if (v == Kind.Null) continue;
      if (v != Kind.True && v != Kind.False) return WRONG_TYPE;
      flags[k] = cfg.bool(it.value);
    } else if (cfg.equals(it.key, "denyParams")) {
      deny = it.value;
    } else if (cfg.equals(it.key, "extraDenyParams")) {
      extra = it.value;
    } else {
      return UNKNOWN_OPTION;
    }
  }
  denyList.reset();
  if (deny == NONE || cfg.isNull(deny)) {
    for (let i = 0; i < DEFAULT_DENY_PARAMS.length; i++) denyParam(unchecked(DEFAULT_DENY_PARAMS[i]));
  } else {
    let code = addParams(cfg, deny);
    if (code != 0) return code;
  }
  if (extra != NONE && !cfg.isNull(extra)) {
    let code = addParams(cfg, extra);
    if (code != 0) return code;
  }
  setOptions(flags[0], flags[1], flags[2], flags[3], flags[4], flags[5], flags[6]);
  return 0;
});

// --- filtering --------------------------------------------------------------

const redacted = new ByteBuffer(4096);
const members = new Members();

// Redacts the string value `s` (if it is one) in place; `max` is the field's
// length limit in UTF-16 code units, which a marker must not push it past.
function redactString(ev: Event, s: Span, max: i32): void {
  if (!ev.isString(s) || !ev.readUtf8(s, text)) return;
  if (!redact(text.ptr, text.len, redacted)) return;
  truncateUtf16(redacted, max);
  ev.replaceUtf8(s, redacted.ptr, redacted.len);
}

// Redacts every string value of the object `obj`.
function redactValues(ev: Event, obj: Span, max: i32): void {
  let it = members;
  if (!it.over(obj)) return;
  while (it.next()) {
    if (ev.isString(it.value)) redactString(ev, it.value, max);
  }
}

// Event types with free text in their payload.
const T_OTHER = 0;
const T_CUSTOM = 1;
const T_SESSION_START = 2;
const T_RUNTIME_ERROR = 3;
const T_ASSET_LOAD = 4;
const T_GRAPHICS_DIAGNOSTIC = 5;
const T_CONTEXT_LOST = 6;

function typeOf(ev: Event): i32 {
  let t = ev.get("type");
  if (!ev.isString(t)) return T_OTHER;
  // dispatch on the first letter before comparing whole names
  let c = load<u8>(spanStart(t) + 1);
  if (c == 0x63) {
    if (ev.equals(t, "custom")) return T_CUSTOM;
    if (ev.equals(t, "context_lost")) return T_CONTEXT_LOST;
  } else if (c == 0x73) {
    if (ev.equals(t, "session_start")) return T_SESSION_START;
  } else if (c == 0x72) {
    if (ev.equals(t, "runtime_error")) return T_RUNTIME_ERROR;
  } else if (c == 0x61) {
    if (ev.equals(t, "asset_load")) return T_ASSET_LOAD;
  } else if (c == 0x67) {
    if (ev.equals(t, "graphics_diagnostic")) return T_GRAPHICS_DIAGNOSTIC;
  }
  return T_OTHER;
}

registerFilter((ev: Event): Verdict => {
  let type = typeOf(ev);
  // One pass over the top-level members.
  let count = ev.memberCount();
  for (let i = 0; i < count; i++) {
    let k = ev.keyAt(i);
    let c = load<u8>(spanStart(k) + 1);
    let v = ev.valueAt(i);
    if (c == 0x75) { // u
      if (ev.equals(k, "url")) redactString(ev, v, 2048);
      else if (type == T_SESSION_START && ev.equals(k, "user")) redactValues(ev, ev.find(v, "traits"), 1024);
    } else if (c == 0x70) { // p
      if (ev.equals(k, "pageMeta")) {
        redactString(ev, ev.find(v, "title"), 512);
        redactString(ev, ev.find(v, "referrer"), 2048);
      } else if (type == T_CUSTOM && ev.equals(k, "props")) {
        redactValues(ev, v, 1024);
      }
    } else if (c == 0x6d) { // m
      if ((type == T_RUNTIME_ERROR || type == T_GRAPHICS_DIAGNOSTIC) && ev.equals(k, "message")) redactString(ev, v, 1024);
    } else if (c == 0x73) { // s
      if (type == T_RUNTIME_ERROR) {
        if (ev.equals(k, "stack")) redactString(ev, v, 4096);
        else if (ev.equals(k, "source")) redactString(ev, v, 1024);
      }
    } else if (c == 0x6e) { // n
      if (type == T_ASSET_LOAD && ev.equals(k, "name")) redactString(ev, v, 1024);
    } else if (c == 0x72) { // r
      if (type == T_CONTEXT_LOST && ev.equals(k, "reason")) redactString(ev, v, 512);
    }
  }
  return Verdict.Keep;
});
