// The Uptimizr Edge plugin ABI, version 1 (docs/PLUGIN_ABI.md), implemented
// once so that plugins only see events.
//
// Memory: one input buffer (returned by uptimizr_alloc, grown when a larger
// batch or config arrives) and one output buffer, both reused for every call.
// The output of a call stays untouched until the next call into the instance.

import { ByteBuffer } from "./buffer";
import { JsonView, Event } from "./view";

/** What to do with an event. */
export enum Verdict {
  /** Keep the event: unchanged (op 0), or with the edits made to it (op 2). */
  Keep = 0,
  /** Drop the event (op 1). */
  Drop = 1,
}

/** Error codes of the ABI (returned by uptimizr_filter and uptimizr_init). */
export namespace ErrorCode {
  export const Failure: i32 = -1;
  export const BadInput: i32 = -2;
  export const NotConfigured: i32 = -3;
  export const Rejected: i32 = -4;
}

/** A filter: called once per event, in batch order. */
export type FilterFn = (ev: Event) => Verdict;
/** A config handler: gets the plugin's config object, returns 0 when ready or an error code. */
export type ConfigFn = (config: JsonView) => i32;
/** Called once before each batch with the number of events in it. */
export type BatchFn = (count: i32) => void;

let filterFn: FilterFn | null = null;
let configFn: ConfigFn | null = null;
let batchFn: BatchFn | null = null;
let configured = false;
let rejectCode: i32 = 0;

const input = new ByteBuffer(64 * 1024);
const output = new ByteBuffer(64 * 1024);
const event = new Event();
const config = new JsonView();

/** Registers the plugin's filter. Call it at the top level of your entry file. */
export function registerFilter(fn: FilterFn): void {
  filterFn = fn;
}

/**
 * Registers the config handler. It runs in uptimizr_init with a view of the
 * config JSON (valid only during the call: copy what you keep). Return 0
 * when the config is usable, an error code (e.g. -100) to refuse it. Without
 * a handler, any JSON object is accepted.
 */
export function onConfig(fn: ConfigFn): void {
  configFn = fn;
}

/** Registers a function called before each batch with its event count. */
export function onBatch(fn: BatchFn): void {
  batchFn = fn;
}

/**
 * Fails the whole batch with `code` (default -4, "rejected by policy") once
 * the current event's filter returns. Plugin-defined codes are ≤ -100.
 */
export function rejectBatch(code: i32 = ErrorCode.Rejected): void {
  rejectCode = code < 0 ? code : ErrorCode.Rejected;
}

/** Exported as uptimizr_abi_version: the ABI this module implements. */
export function uptimizr_abi_version(): i32 {
  return 1;
}

/** Exported as uptimizr_alloc: the input buffer, grown to at least `size` bytes; 0 on failure. */
export function uptimizr_alloc(size: i32): usize {
  if (size < 0 || size > 0x3ff00000) return 0;
  if (!input.reserve(size)) return 0;
  return input.ptr;
}

// True when [ptr, ptr+len) lies inside linear memory.
function inMemory(ptr: usize, len: i32): bool {
  if (len < 0) return false;
  let top = <u64>memory.size() << 16;
  return ptr != 0 && <u64>ptr + <u64>len <= top;
}

/** Exported as uptimizr_init: reads the plugin's config. */
export function uptimizr_init(ptr: usize, len: i32): i32 {
  configured = false;
  if (!inMemory(ptr, len)) return ErrorCode.BadInput;
  if (len == 0) {
    // no config at all: treat as {}
    store<u16>(input.ptr, 0x7d7b);
    ptr = input.ptr;
    len = 2;
  }
  if (!config.load(ptr, len) || !config.scanAll()) return ErrorCode.BadInput;
  let code = 0;
  let fn = configFn;
  if (fn) code = fn(config);
  if (code > 0) code = ErrorCode.Failure;
  configured = code == 0;
  return code;
}

// @ts-ignore: decorator
@inline function fail(code: i32): i64 {
  return <i64>code;
}

/** Exported as uptimizr_filter: filters one batch. */
export function uptimizr_filter(ptr: usize, len: i32): i64 {
  // Objects allocated while filtering the previous batch are garbage now.
  if (ASC_RUNTIME == 1) __collect();
  if (!configured) return fail(ErrorCode.NotConfigured);
  let fn = filterFn;
  if (!fn) return fail(ErrorCode.Failure);
  if (!inMemory(ptr, len) || len < 8) return fail(ErrorCode.BadInput);
  let end = ptr + <usize>len;
  if (load<u32>(ptr) != 1) return fail(ErrorCode.BadInput);
  let count = load<u32>(ptr, 4);
  // every event needs at least its 4-byte length
  if (<u64>count * 4 > <u64>(len - 8)) return fail(ErrorCode.BadInput);

  // Check the framing before any event is filtered.
  let p = ptr + 8;
  for (let i: u32 = 0; i < count; i++) {
    if (end - p < 4) return fail(ErrorCode.BadInput);
    let n = load<u32>(p);
    p += 4;
    if (<u64>n > <u64>(end - p)) return fail(ErrorCode.BadInput);
    p += <usize>n;
  }
  if (p != end) return fail(ErrorCode.BadInput);

  let b = batchFn;
  if (b) b(<i32>count);

  let out = output;
  out.reset();
  out.pushU32(count);
  rejectCode = 0;
  let ev = event;
  p = ptr + 8;
  for (let i: u32 = 0; i < count; i++) {
    let n = <i32>load<u32>(p);
    p += 4;
    if (!ev.begin(<i32>i, p, n)) return fail(ErrorCode.BadInput);
    let verdict = fn(ev);
    if (rejectCode != 0) return fail(rejectCode);
    if (ev.malformed) return fail(ErrorCode.BadInput);
    if (verdict == Verdict.Drop) {
      out.pushByte(1);
    } else if (ev.editsRecorded == 0) {
      out.pushByte(0);
    } else {
      // an edited event is checked completely before it is written out
      if (!ev.scanAll()) return fail(ErrorCode.BadInput);
      out.pushByte(2);
      let at = out.len;
      out.pushU32(0);
      ev.writeEdited(out);
      store<u32>(out.ptr + <usize>at, <u32>(out.len - at - 4));
    }
    p += <usize>n;
  }
  return (<i64>out.ptr << 32) | <i64>out.len;
}
