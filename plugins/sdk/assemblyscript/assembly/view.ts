// Views over JSON documents in linear memory: the event a filter receives,
// and the plugin's config.

import { ByteBuffer } from "./buffer";
import {
  Span, NONE, Kind, makeSpan, spanStart, spanEnd, kindOf, skipWs, skipString, skipValue,
  stringEquals, unescapeInto, isPlainString, parseNumber, escapeStringInto, escapeUtf8Into,
} from "./json";

/**
 * UTF-8 text in linear memory: `len` bytes at `ptr`. Reading a string value
 * into a `Bytes` points it at the event's own bytes when the value holds no
 * escape sequence, and otherwise decodes into storage the `Bytes` owns and
 * reuses. Keep one per use and reuse it; its contents are valid until it is
 * read into again or the current call returns.
 */
@final
export class Bytes {
  ptr: usize = 0;
  len: i32 = 0;
  storage: ByteBuffer = new ByteBuffer();

  /** Byte `i` (0 ≤ i < len). */
  @inline at(i: i32): u32 {
    return <u32>load<u8>(this.ptr + <usize>i);
  }

  /** The text as an AssemblyScript string (allocates). */
  toString(): string {
    return String.UTF8.decodeUnsafe(this.ptr, <usize>this.len);
  }
}

/**
 * Iterates over the members of an object value without allocating.
 *
 *     let it = new Members();           // once, reuse it
 *     if (it.over(ev.get("props"))) {
 *       while (it.next()) { if (ev.isString(it.value)) ... }
 *     }
 */
@final
export class Members {
  /** The current member's key, a string span (quotes included). */
  key: Span = NONE;
  /** The current member's value. */
  value: Span = NONE;
  private p: usize = 0;
  private e: usize = 0;
  private first: bool = false;

  /** Starts iterating the object `obj`; false (and no members) when it is not an object. */
  over(obj: Span): bool {
    this.key = NONE;
    this.value = NONE;
    if (kindOf(obj) != Kind.Object) {
      this.p = this.e = 0;
      return false;
    }
    this.p = spanStart(obj) + 1;
    this.e = spanEnd(obj) - 1;
    this.first = true;
    return true;
  }

  /** Moves to the next member; false at the end (or on malformed input). */
  next(): bool {
    let p = skipWs(this.p, this.e);
    let e = this.e;
    if (p >= e) return this.stop();
    if (!this.first) {
      if (load<u8>(p) != 0x2c) return this.stop();
      p = skipWs(p + 1, e);
      if (p >= e) return this.stop();
    }
    this.first = false;
    if (load<u8>(p) != 0x22) return this.stop();
    let k = skipString(p, e);
    if (k == 0) return this.stop();
    let q = skipWs(k, e);
    if (q >= e || load<u8>(q) != 0x3a) return this.stop();
    q = skipWs(q + 1, e);
    let v = skipValue(q, e);
    if (v == 0) return this.stop();
    this.key = makeSpan(p, k);
    this.value = makeSpan(q, v);
    this.p = v;
    return true;
  }

  /** True when the current key is `name`. */
  @inline keyIs(name: string): bool {
    return stringEquals(this.key, name);
  }

  private stop(): bool {
    this.p = this.e;
    this.key = NONE;
    this.value = NONE;
    return false;
  }
}

/** Iterates over the elements of an array value without allocating. */
@final
export class Elements {
  /** The current element. */
  value: Span = NONE;
  /** Index of the current element. */
  index: i32 = -1;
  private p: usize = 0;
  private e: usize = 0;

  /** Starts iterating the array `arr`; false (and no elements) when it is not an array. */
  over(arr: Span): bool {
    this.value = NONE;
    this.index = -1;
    if (kindOf(arr) != Kind.Array) {
      this.p = this.e = 0;
      return false;
    }
    this.p = spanStart(arr) + 1;
    this.e = spanEnd(arr) - 1;
    return true;
  }

  /** Moves to the next element; false at the end (or on malformed input). */
  next(): bool {
    let p = skipWs(this.p, this.e);
    let e = this.e;
    if (p >= e) return this.stop();
    if (this.index >= 0) {
      if (load<u8>(p) != 0x2c) return this.stop();
      p = skipWs(p + 1, e);
    }
    let v = skipValue(p, e);
    if (v == 0) return this.stop();
    this.value = makeSpan(p, v);
    this.index++;
    this.p = v;
    return true;
  }

  private stop(): bool {
    this.p = this.e;
    this.value = NONE;
    return false;
  }
}

/**
 * A read-only view of one JSON object in linear memory. Top-level members
 * are indexed lazily: `get` scans only as far as it needs to, and remembers
 * what it has seen.
 */
export class JsonView {
  /** Address of the document's first byte. */
  ptr: usize = 0;
  /** Address just past its last byte. */
  end: usize = 0;
  /** Set when scanning found the document malformed. */
  malformed: bool = false;

  // top-level index: u32 quads (keyStart, keyEnd, valueStart, valueEnd)
  private index: ByteBuffer = new ByteBuffer(64 * 16);
  private count: i32 = 0;
  private scan: usize = 0;
  private done: bool = false;
  private scratch: ByteBuffer = new ByteBuffer();

  /** Points the view at `len` bytes at `ptr`; false when they do not start an object. */
  load(ptr: usize, len: i32): bool {
    this.ptr = ptr;
    this.end = ptr + <usize>len;
    this.index.reset();
    this.count = 0;
    this.malformed = false;
    this.done = false;
    let p = skipWs(ptr, this.end);
    let e = this.end;
    // trailing whitespace is allowed; the last byte must close the object
    while (e > p && (load<u8>(e - 1) == 0x20 || load<u8>(e - 1) == 0x0a || load<u8>(e - 1) == 0x0d || load<u8>(e - 1) == 0x09)) e--;
    if (p >= e || load<u8>(p) != 0x7b || load<u8>(e - 1) != 0x7d) {
      this.malformed = true;
      this.done = true;
      return false;
    }
    this.scan = p + 1;
    return true;
  }

  /** The whole document as a span. */
  @inline get span(): Span {
    return makeSpan(this.ptr, this.end);
  }

  /** Indexes the next top-level member; false at the end or on malformed input. */
  private indexNext(): bool {
    if (this.done) return false;
    let e = this.end;
    let p = skipWs(this.scan, e);
    if (p >= e) return this.fail();
    let c = <u32>load<u8>(p);
    if (c == 0x7d) {
      // the object ends here: only whitespace may follow
      if (skipWs(p + 1, e) != e) return this.fail();
      this.done = true;
      return false;
    }
    if (this.count > 0) {
      if (c != 0x2c) return this.fail();
      p = skipWs(p + 1, e);
      if (p >= e) return this.fail();
    }
    if (load<u8>(p) != 0x22) return this.fail();
    let k = skipString(p, e);
    if (k == 0) return this.fail();
    let q = skipWs(k, e);
    if (q >= e || load<u8>(q) != 0x3a) return this.fail();
    q = skipWs(q + 1, e);
    let v = skipValue(q, e);
    if (v == 0) return this.fail();
    let idx = this.index;
    idx.ensure(16);
    let d = idx.end;
    store<u32>(d, <u32>p);
    store<u32>(d + 4, <u32>k);
    store<u32>(d + 8, <u32>q);
    store<u32>(d + 12, <u32>v);
    idx.len += 16;
    this.count++;
    this.scan = v;
    return true;
  }

  private fail(): bool {
    this.malformed = true;
    this.done = true;
    return false;
  }

  /** Indexes every top-level member; false when the document is malformed. */
  scanAll(): bool {
    while (this.indexNext()) {}
    return !this.malformed;
  }

  /** Number of top-level members (scans the whole document). */
  memberCount(): i32 {
    this.scanAll();
    return this.count;
  }

  /** Key span of top-level member `i` (in document order). */
  keyAt(i: i32): Span {
    while (i >= this.count && this.indexNext()) {}
    if (i < 0 || i >= this.count) return NONE;
    let q = this.index.ptr + (<usize>i << 4);
    return makeSpan(<usize>load<u32>(q), <usize>load<u32>(q + 4));
  }

  /** Value span of top-level member `i` (in document order). */
  valueAt(i: i32): Span {
    while (i >= this.count && this.indexNext()) {}
    if (i < 0 || i >= this.count) return NONE;
    let q = this.index.ptr + (<usize>i << 4);
    return makeSpan(<usize>load<u32>(q + 8), <usize>load<u32>(q + 12));
  }

  /** Position of the top-level member named `key`, or -1. */
  indexOf(key: string): i32 {
    let n = this.count;
    let q = this.index.ptr;
    for (let i = 0; i < n; i++) {
      if (stringEquals(makeSpan(<usize>load<u32>(q), <usize>load<u32>(q + 4)), key)) return i;
      q += 16;
    }
    while (this.indexNext()) {
      q = this.index.ptr + (<usize>(this.count - 1) << 4);
      if (stringEquals(makeSpan(<usize>load<u32>(q), <usize>load<u32>(q + 4)), key)) return this.count - 1;
    }
    return -1;
  }

  /** The value of the top-level member `key`, or NONE when it is absent. */
  get(key: string): Span {
    let i = this.indexOf(key);
    if (i < 0) return NONE;
    let q = this.index.ptr + (<usize>i << 4);
    return makeSpan(<usize>load<u32>(q + 8), <usize>load<u32>(q + 12));
  }

  /** True when the top-level member `key` is present. */
  @inline has(key: string): bool {
    return this.indexOf(key) >= 0;
  }

  /** The value of member `key` of the object `obj`, or NONE. */
  find(obj: Span, key: string): Span {
    let it = findIter;
    if (!it.over(obj)) return NONE;
    while (it.next()) {
      if (stringEquals(it.key, key)) return it.value;
    }
    return NONE;
  }

  /** Shorthand for `find(get(outer), inner)`. */
  @inline getIn(outer: string, inner: string): Span {
    return this.find(this.get(outer), inner);
  }

  /** Element `i` of the array `arr`, or NONE. */
  at(arr: Span, i: i32): Span {
    let it = atIter;
    if (!it.over(arr)) return NONE;
    while (it.next()) {
      if (it.index == i) return it.value;
    }
    return NONE;
  }

  // -- reading values -------------------------------------------------------

  @inline kind(s: Span): Kind {
    return kindOf(s);
  }

  @inline isString(s: Span): bool {
    return s != NONE && load<u8>(spanStart(s)) == 0x22;
  }

  @inline isNumber(s: Span): bool {
    return kindOf(s) == Kind.Number;
  }

  @inline isObject(s: Span): bool {
    return s != NONE && load<u8>(spanStart(s)) == 0x7b;
  }

  @inline isArray(s: Span): bool {
    return s != NONE && load<u8>(spanStart(s)) == 0x5b;
  }

  @inline isNull(s: Span): bool {
    return s != NONE && load<u8>(spanStart(s)) == 0x6e;
  }

  /** True for `true`; false for anything else. */
  @inline bool(s: Span): bool {
    return s != NONE && load<u8>(spanStart(s)) == 0x74;
  }

  /** The number `s` holds, or NaN when it is not a number. */
  number(s: Span): f64 {
    if (kindOf(s) != Kind.Number) return NaN;
    return parseNumber(s);
  }

  /** True when the string `s` holds exactly `text` (escapes resolved). */
  @inline equals(s: Span, text: string): bool {
    return stringEquals(s, text);
  }

  /**
   * Points `into` at the UTF-8 text of the string `s` (escapes resolved,
   * no copy when there are none). False when `s` is not a well-formed string.
   */
  readUtf8(s: Span, into: Bytes): bool {
    into.ptr = 0;
    into.len = 0;
    if (!this.isString(s) || spanEnd(s) - spanStart(s) < 2) return false;
    if (isPlainString(s)) {
      into.ptr = spanStart(s) + 1;
      into.len = <i32>(spanEnd(s) - spanStart(s)) - 2;
      return true;
    }
    let b = into.storage;
    b.reset();
    if (!unescapeInto(s, b)) {
      this.malformed = true;
      return false;
    }
    into.ptr = b.ptr;
    into.len = b.len;
    return true;
  }

  /** The text of the string `s` as an AssemblyScript string ("" when not a string; allocates). */
  string(s: Span): string {
    if (!this.isString(s)) return "";
    let b = this.scratch;
    b.reset();
    if (!unescapeInto(s, b)) {
      this.malformed = true;
      return "";
    }
    return String.UTF8.decodeUnsafe(b.ptr, <usize>b.len);
  }

  /** The raw JSON text of `s` (allocates). */
  raw(s: Span): string {
    if (s == NONE) return "";
    return String.UTF8.decodeUnsafe(spanStart(s), spanEnd(s) - spanStart(s));
  }

  /** The whole document's JSON text (allocates). */
  text(): string {
    return String.UTF8.decodeUnsafe(this.ptr, this.end - this.ptr);
  }
}

const findIter = new Members();
const atIter = new Elements();

/** The members no plugin may change; the SDK refuses edits that touch them. */
export const IMMUTABLE_FIELDS: StaticArray<string> = ["type", "projectId", "sessionId", "visitorId", "ts"];

/**
 * One event of the batch being filtered. The SDK reuses a single instance:
 * do not keep it (or spans into it) past the call of your filter.
 *
 * Edits are recorded, not applied in place: when the filter returns, the SDK
 * builds the new JSON by copying the unchanged byte ranges and the new
 * values. An edit that leaves the bytes as they were is not recorded, so a
 * filter that "replaces" a value with itself still keeps the event (op 0).
 */
@final
export class Event extends JsonView {
  /** Position of the event in its batch. */
  position: i32 = 0;

  // edits: u32 quads (start, end, replacementOffset, replacementLength), unordered
  private edits: ByteBuffer = new ByteBuffer(16 * 16);
  private repl: ByteBuffer = new ByteBuffer(1024);
  private editCount: i32 = 0;

  /** Resets the event to the `len` bytes at `ptr`. Used by the SDK. */
  begin(position: i32, ptr: usize, len: i32): bool {
    this.position = position;
    this.edits.reset();
    this.repl.reset();
    this.editCount = 0;
    return this.load(ptr, len);
  }

  /** True when `type` is `name` (no allocation). */
  @inline typeIs(name: string): bool {
    return stringEquals(this.get("type"), name);
  }

  /** The event type (allocates; prefer `typeIs`). */
  get type(): string {
    return this.string(this.get("type"));
  }

  /** Number of edits recorded so far. */
  @inline get editsRecorded(): i32 {
    return this.editCount;
  }

  /** True when `s` lies inside one of the immutable members (key or value). */
  touchesImmutable(s: Span): bool {
    let a = spanStart(s);
    let b = spanEnd(s);
    for (let i = 0; i < IMMUTABLE_FIELDS.length; i++) {
      let j = this.indexOf(unchecked(IMMUTABLE_FIELDS[i]));
      if (j < 0) continue;
      let ks = spanStart(this.keyAt(j));
      let ve = spanEnd(this.valueAt(j));
      if (a < ve && b > ks) return true;
    }
    return false;
  }

  /**
   * Replaces the string value `s` with `value`. Returns false (and changes
   * nothing) when `s` is not a string of this event, overlaps another edit,
   * or belongs to an immutable field (type, projectId, sessionId, visitorId,
   * ts).
   */
  replaceString(s: Span, value: string): bool {
    if (!this.editable(s)) return false;
    let r = this.repl;
    let at = r.len;
    r.pushByte(0x22);
    escapeStringInto(value, r);
    r.pushByte(0x22);
    return this.record(s, at);
  }

  /** Replaces the string value `s` with `len` bytes of UTF-8 text at `ptr` (escaped as needed). */
  replaceUtf8(s: Span, ptr: usize, len: i32): bool {
    if (!this.editable(s)) return false;
    let r = this.repl;
    let at = r.len;
    r.pushByte(0x22);
    escapeUtf8Into(ptr, len, r);
    r.pushByte(0x22);
    return this.record(s, at);
  }

  /** Replaces the string value `s` with the text in `b`. */
  @inline replaceBytes(s: Span, b: Bytes): bool {
    return this.replaceUtf8(s, b.ptr, b.len);
  }

  /** Undoes every edit of this event. */
  discardEdits(): void {
    this.edits.reset();
    this.repl.reset();
    this.editCount = 0;
  }

  private editable(s: Span): bool {
    let a = spanStart(s);
    let b = spanEnd(s);
    if (s == NONE || a < this.ptr || b > this.end || b < a + 2) return false;
    if (load<u8>(a) != 0x22 || load<u8>(b - 1) != 0x22) return false;
    if (skipString(a, this.end) != b) return false;
    return !this.touchesImmutable(s);
  }

  // Records the replacement of `s` by repl[at..]; drops no-op edits.
  private record(s: Span, at: i32): bool {
    let a = spanStart(s);
    let b = spanEnd(s);
    let r = this.repl;
    let n = r.len - at;
    let same = n == <i32>(b - a) && memory.compare(r.ptr + <usize>at, a, <usize>n) == 0;
    // an earlier edit of the same span is superseded; overlapping others are refused
    let q = this.edits.ptr;
    for (let i = 0; i < this.editCount; i++) {
      let ea = <usize>load<u32>(q);
      let eb = <usize>load<u32>(q + 4);
      if (ea == a && eb == b) {
        if (same) {
          this.removeEdit(i);
        } else {
          store<u32>(q + 8, <u32>at);
          store<u32>(q + 12, <u32>n);
        }
        return true;
      }
      if (a < eb && b > ea) {
        r.len = at;
        return false;
      }
      q += 16;
    }
    if (same) {
      r.len = at;
      return true;
    }
    let e = this.edits;
    e.ensure(16);
    let d = e.end;
    store<u32>(d, <u32>a);
    store<u32>(d + 4, <u32>b);
    store<u32>(d + 8, <u32>at);
    store<u32>(d + 12, <u32>n);
    e.len += 16;
    this.editCount++;
    return true;
  }

  private removeEdit(i: i32): void {
    let q = this.edits.ptr + (<usize>i << 4);
    let last = this.edits.ptr + (<usize>(this.editCount - 1) << 4);
    if (q != last) memory.copy(q, last, 16);
    this.edits.len -= 16;
    this.editCount--;
  }

  /** Appends the edited event's JSON to `out`. Used by the SDK. */
  writeEdited(out: ByteBuffer): void {
    // order edits by position (insertion sort: an event has few edits)
    let base = this.edits.ptr;
    let n = this.editCount;
    for (let i = 1; i < n; i++) {
      let qi = base + (<usize>i << 4);
      let a = load<u32>(qi);
      let b = load<u32>(qi + 4);
      let c = load<u32>(qi + 8);
      let d = load<u32>(qi + 12);
      let j = i - 1;
      while (j >= 0 && load<u32>(base + (<usize>j << 4)) > a) {
        memory.copy(base + (<usize>(j + 1) << 4), base + (<usize>j << 4), 16);
        j--;
      }
      let qj = base + (<usize>(j + 1) << 4);
      store<u32>(qj, a);
      store<u32>(qj + 4, b);
      store<u32>(qj + 8, c);
      store<u32>(qj + 12, d);
    }
    let pos = this.ptr;
    let rp = this.repl.ptr;
    for (let i = 0; i < n; i++) {
      let q = base + (<usize>i << 4);
      let a = <usize>load<u32>(q);
      out.pushBytes(pos, <i32>(a - pos));
      out.pushBytes(rp + <usize>load<u32>(q + 8), <i32>load<u32>(q + 12));
      pos = <usize>load<u32>(q + 4);
    }
    out.pushBytes(pos, <i32>(this.end - pos));
  }
}
