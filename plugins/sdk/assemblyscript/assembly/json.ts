// Byte-level JSON scanning over UTF-8 in linear memory.
//
// Nothing here builds a document tree: functions take the address of a value
// and the end of the readable range and return the address just past that
// value. Every read is bounds-checked against `end`; malformed input makes a
// function return 0 (no valid value ever starts at address 0), never trap.
//
// Values are described by spans: a `Span` packs the address of the first
// byte of a value and the address just past its last byte into a u64, so
// passing and returning spans never allocates. For strings the span includes
// the quotes.

import { ByteBuffer } from "./buffer";

/** A value's location in memory: `start | end << 32`. `NONE` (0) when absent. */
export type Span = u64;

/** The absent span. */
export const NONE: Span = 0;

/** How deeply objects and arrays may nest; deeper input counts as malformed. */
export const MAX_DEPTH: i32 = 64;

// @ts-ignore: decorator
@inline export function makeSpan(start: usize, end: usize): Span {
  return (<u64>end << 32) | <u64>start;
}

/** Address of the first byte of `s`. */
// @ts-ignore: decorator
@inline export function spanStart(s: Span): usize {
  return <usize>(s & 0xffffffff);
}

/** Address just past the last byte of `s`. */
// @ts-ignore: decorator
@inline export function spanEnd(s: Span): usize {
  return <usize>(s >>> 32);
}

/** Length of `s` in bytes (for strings, including the quotes). */
// @ts-ignore: decorator
@inline export function spanLength(s: Span): i32 {
  return <i32>(spanEnd(s) - spanStart(s));
}

/** The kind of JSON value a span holds. */
export enum Kind {
  None = 0,
  String = 1,
  Number = 2,
  Object = 3,
  Array = 4,
  True = 5,
  False = 6,
  Null = 7,
}

/** The kind of value `s` holds, from its first byte. */
export function kindOf(s: Span): Kind {
  if (s == NONE) return Kind.None;
  let c = <u32>load<u8>(spanStart(s));
  if (c == 0x22) return Kind.String;
  if (c == 0x7b) return Kind.Object;
  if (c == 0x5b) return Kind.Array;
  if (c == 0x74) return Kind.True;
  if (c == 0x66) return Kind.False;
  if (c == 0x6e) return Kind.Null;
  return Kind.Number;
}

// @ts-ignore: decorator
@inline export function isWhitespace(c: u32): bool {
  return c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09;
}

/** Skips insignificant whitespace (canonical events have none; configs may). */
// @ts-ignore: decorator
@inline export function skipWs(p: usize, end: usize): usize {
  while (p < end && isWhitespace(<u32>load<u8>(p))) p++;
  return p;
}

const ONES: u64 = 0x0101010101010101;
const HIGHS: u64 = 0x8080808080808080;

/**
 * For the 8 bytes of `w`: a non-zero result whose lowest set bit lies in the
 * first byte that is `"`, `\` or a control character (bytes after it may be
 * flagged falsely; bytes before it never are).
 */
// @ts-ignore: decorator
@inline function stringStops(w: u64): u64 {
  let q = w ^ (ONES * 0x22);
  let b = w ^ (ONES * 0x5c);
  return ((q - ONES) & ~q | (b - ONES) & ~b | (w - ONES * 0x20) & ~w) & HIGHS;
}

/** `p` at an opening quote: returns the address past the closing quote, or 0. */
export function skipString(p: usize, end: usize): usize {
  p++;
  while (true) {
    // eight bytes at a time up to the next byte that needs a look
    while (p + 8 <= end) {
      let t = stringStops(load<u64>(p));
      if (t != 0) {
        p += <usize>(ctz(t) >> 3);
        break;
      }
      p += 8;
    }
    if (p >= end) return 0;
    let c = <u32>load<u8>(p);
    if (c == 0x22) return p + 1;
    if (c == 0x5c) {
      p += 2;
      continue;
    }
    if (c < 0x20) return 0;
    p++;
  }
  return 0;
}

// @ts-ignore: decorator
@inline function isNumberByte(c: u32): bool {
  // 0-9 . + - e E
  return (c - 0x30 < 10) || c == 0x2e || c == 0x2d || c == 0x2b || c == 0x65 || c == 0x45;
}

function skipLiteral(p: usize, end: usize): usize {
  let c = <u32>load<u8>(p);
  if (c == 0x74) { // true
    if (p + 4 <= end && load<u32>(p) == 0x65757274) return p + 4;
    return 0;
  }
  if (c == 0x66) { // false
    if (p + 5 <= end && load<u32>(p) == 0x736c6166 && load<u8>(p + 4) == 0x65) return p + 5;
    return 0;
  }
  if (c == 0x6e) { // null
    if (p + 4 <= end && load<u32>(p) == 0x6c6c756e) return p + 4;
    return 0;
  }
  if (c == 0x2d || c - 0x30 < 10) {
    p++;
    while (p < end && isNumberByte(<u32>load<u8>(p))) p++;
    return p;
  }
  return 0;
}

/**
 * `p` at the first byte of a value: returns the address just past it, or 0
 * when the value is malformed or truncated. Objects and arrays are checked
 * for structure (brackets, commas, colons, string keys) without recursion.
 */
export function skipValue(p: usize, end: usize): usize {
  if (p >= end) return 0;
  let c = <u32>load<u8>(p);
  if (c == 0x22) return skipString(p, end);
  if (c != 0x7b && c != 0x5b) return skipLiteral(p, end);

  // Containers: `stack` holds one bit per open level, 1 = object.
  let stack: u64 = 0;
  let depth = 0;
  while (true) {
    // p is at the start of a value
    c = <u32>load<u8>(p);
    if (c == 0x7b || c == 0x5b) {
      if (depth == MAX_DEPTH) return 0;
      let isObj = c == 0x7b;
      stack = (stack << 1) | <u64>isObj;
      depth++;
      p = skipWs(p + 1, end);
      if (p >= end) return 0;
      c = <u32>load<u8>(p);
      if (c == (isObj ? 0x7d : 0x5d)) {
        // empty container
        stack >>>= 1;
        depth--;
        p++;
      } else {
        if (isObj) {
          if (c != 0x22) return 0;
          p = skipString(p, end);
          if (p == 0) return 0;
          p = skipWs(p, end);
          if (p >= end || load<u8>(p) != 0x3a) return 0;
          p = skipWs(p + 1, end);
          if (p >= end) return 0;
        }
        continue;
      }
    } else if (c == 0x22) {
      p = skipString(p, end);
      if (p == 0) return 0;
    } else if (c - 0x30 < 10 || c == 0x2d) {
      // numbers, the most common scalars in events, inline
      p++;
      while (p < end && isNumberByte(<u32>load<u8>(p))) p++;
    } else {
      p = skipLiteral(p, end);
      if (p == 0) return 0;
    }
    // after a value
    while (true) {
      if (depth == 0) return p;
      p = skipWs(p, end);
      if (p >= end) return 0;
      c = <u32>load<u8>(p);
      let inObj = (stack & 1) != 0;
      if (c == 0x2c) {
        p = skipWs(p + 1, end);
        if (p >= end) return 0;
        if (inObj) {
          if (load<u8>(p) != 0x22) return 0;
          p = skipString(p, end);
          if (p == 0) return 0;
          p = skipWs(p, end);
          if (p >= end || load<u8>(p) != 0x3a) return 0;
          p = skipWs(p + 1, end);
          if (p >= end) return 0;
        }
        break; // parse the next value
      }
      if (c == (inObj ? 0x7d : 0x5d)) {
        stack >>>= 1;
        depth--;
        p++;
        continue;
      }
      return 0;
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------
// Strings

// @ts-ignore: decorator
@inline function hexValue(c: u32): i32 {
  if (c - 0x30 < 10) return <i32>(c - 0x30);
  c |= 0x20;
  if (c - 0x61 < 6) return <i32>(c - 0x61 + 10);
  return -1;
}

function read4Hex(p: usize): i32 {
  let a = hexValue(<u32>load<u8>(p));
  let b = hexValue(<u32>load<u8>(p + 1));
  let c = hexValue(<u32>load<u8>(p + 2));
  let d = hexValue(<u32>load<u8>(p + 3));
  if ((a | b | c | d) < 0) return -1;
  return (a << 12) | (b << 8) | (c << 4) | d;
}

/** True when the string span holds no escape sequence (its bytes are its text). */
export function isPlainString(s: Span): bool {
  let p = spanStart(s) + 1;
  let e = spanEnd(s) - 1;
  while (p < e) {
    if (load<u8>(p) == 0x5c) return false;
    p++;
  }
  return true;
}

function pushCodePoint(out: ByteBuffer, cp: u32): void {
  if (cp < 0x80) {
    out.pushByte(cp);
  } else if (cp < 0x800) {
    out.ensure(2);
    let d = out.end;
    store<u8>(d, <u8>(0xc0 | (cp >> 6)));
    store<u8>(d + 1, <u8>(0x80 | (cp & 0x3f)));
    out.len += 2;
  } else if (cp < 0x10000) {
    out.ensure(3);
    let d = out.end;
    store<u8>(d, <u8>(0xe0 | (cp >> 12)));
    store<u8>(d + 1, <u8>(0x80 | ((cp >> 6) & 0x3f)));
    store<u8>(d + 2, <u8>(0x80 | (cp & 0x3f)));
    out.len += 3;
  } else {
    out.ensure(4);
    let d = out.end;
    store<u8>(d, <u8>(0xf0 | (cp >> 18)));
    store<u8>(d + 1, <u8>(0x80 | ((cp >> 12) & 0x3f)));
    store<u8>(d + 2, <u8>(0x80 | ((cp >> 6) & 0x3f)));
    store<u8>(d + 3, <u8>(0x80 | (cp & 0x3f)));
    out.len += 4;
  }
}

/**
 * Appends the text of the string span `s` to `out` as UTF-8, resolving
 * escapes. A `\u` escape of a lone surrogate becomes U+FFFD. Returns false
 * when an escape is malformed.
 */
export function unescapeInto(s: Span, out: ByteBuffer): bool {
  let p = spanStart(s) + 1;
  let e = spanEnd(s) - 1;
  let run = p;
  while (p < e) {
    let c = <u32>load<u8>(p);
    if (c != 0x5c) {
      p++;
      continue;
    }
    out.pushBytes(run, <i32>(p - run));
    if (p + 1 >= e) return false;
    let x = <u32>load<u8>(p + 1);
    p += 2;
    if (x == 0x22 || x == 0x5c || x == 0x2f) out.pushByte(x);
    else if (x == 0x6e) out.pushByte(0x0a);
    else if (x == 0x74) out.pushByte(0x09);
    else if (x == 0x72) out.pushByte(0x0d);
    else if (x == 0x62) out.pushByte(0x08);
    else if (x == 0x66) out.pushByte(0x0c);
    else if (x == 0x75) {
      if (p + 4 > e) return false;
      let u = read4Hex(p);
      if (u < 0) return false;
      p += 4;
      let cp = <u32>u;
      if (cp - 0xd800 < 0x400) {
        // high surrogate: a low one must follow to make a pair
        if (p + 6 <= e && load<u8>(p) == 0x5c && load<u8>(p + 1) == 0x75) {
          let lo = read4Hex(p + 2);
          if (lo >= 0 && <u32>lo - 0xdc00 < 0x400) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (<u32>lo - 0xdc00);
            p += 6;
          } else {
            cp = 0xfffd;
          }
        } else {
          cp = 0xfffd;
        }
      } else if (cp - 0xdc00 < 0x400) {
        cp = 0xfffd;
      }
      pushCodePoint(out, cp);
    } else {
      return false;
    }
    run = p;
  }
  out.pushBytes(run, <i32>(p - run));
  return true;
}

/**
 * Appends `n` bytes of UTF-8 text at `src` to `out` as the body of a JSON
 * string (without quotes), escaping minimally: `"`, `\` and control
 * characters. Bytes are copied as they are otherwise.
 */
export function escapeUtf8Into(src: usize, n: i32, out: ByteBuffer): void {
  let p = src;
  let e = src + <usize>n;
  let run = p;
  while (p < e) {
    let c = <u32>load<u8>(p);
    if (c >= 0x20 && c != 0x22 && c != 0x5c) {
      p++;
      continue;
    }
    out.pushBytes(run, <i32>(p - run));
    out.pushByte(0x5c);
    if (c == 0x22 || c == 0x5c) out.pushByte(c);
    else if (c == 0x0a) out.pushByte(0x6e);
    else if (c == 0x09) out.pushByte(0x74);
    else if (c == 0x0d) out.pushByte(0x72);
    else if (c == 0x08) out.pushByte(0x62);
    else if (c == 0x0c) out.pushByte(0x66);
    else {
      out.pushByte(0x75);
      out.pushByte(0x30);
      out.pushByte(0x30);
      out.pushByte(0x30 + (c >> 4));
      let lo = c & 0xf;
      out.pushByte(lo < 10 ? 0x30 + lo : 0x61 + lo - 10);
    }
    p++;
    run = p;
  }
  out.pushBytes(run, <i32>(p - run));
}

/**
 * Appends the AssemblyScript (UTF-16) string `s` to `out` as the body of a
 * JSON string, encoding UTF-8 and escaping minimally. Lone surrogates become
 * U+FFFD so the result is always valid UTF-8.
 */
export function escapeStringInto(s: string, out: ByteBuffer): void {
  let p = changetype<usize>(s);
  let n = s.length;
  for (let i = 0; i < n; i++) {
    let c = <u32>load<u16>(p + (<usize>i << 1));
    if (c < 0x80) {
      if (c >= 0x20 && c != 0x22 && c != 0x5c) {
        out.pushByte(c);
      } else {
        store<u8>(changetype<usize>(scratchByte), <u8>c);
        escapeUtf8Into(changetype<usize>(scratchByte), 1, out);
      }
      continue;
    }
    if (c - 0xd800 < 0x400 && i + 1 < n) {
      let lo = <u32>load<u16>(p + (<usize>(i + 1) << 1));
      if (lo - 0xdc00 < 0x400) {
        pushCodePoint(out, 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00));
        i++;
        continue;
      }
    }
    if (c - 0xd800 < 0x800) c = 0xfffd;
    pushCodePoint(out, c);
  }
}

// one byte of static scratch memory for escaping a single code unit
const scratchByte = memory.data(1);

/**
 * Compares the text of the string span `s` with `str` (code point by code
 * point, escapes resolved) without allocating.
 */
export function stringEquals(s: Span, str: string): bool {
  if (s == NONE || load<u8>(spanStart(s)) != 0x22) return false;
  let p = spanStart(s) + 1;
  let e = spanEnd(s) - 1;
  let sp = changetype<usize>(str);
  let n = str.length;
  // Fast path: plain ASCII on both sides.
  let i = 0;
  while (p < e && i < n) {
    let c = <u32>load<u8>(p);
    let u = <u32>load<u16>(sp + (<usize>i << 1));
    if (c == 0x5c || c >= 0x80 || u >= 0x80) break;
    if (c != u) return false;
    p++;
    i++;
  }
  if (p == e && i == n) return true;
  if (p == e || i == n) {
    // one side has more left: equal only when the rest is empty on both
    return false;
  }
  // Slow path: decode the rest and compare UTF-8 with UTF-8.
  let a = equalsScratchA;
  let b = equalsScratchB;
  a.reset();
  b.reset();
  if (!unescapeInto(makeSpan(p - 1, e + 1), a)) return false;
  escapeFreeUtf8(sp + (<usize>i << 1), n - i, b);
  if (a.len != b.len) return false;
  return memory.compare(a.ptr, b.ptr, <usize>a.len) == 0;
}

const equalsScratchA = new ByteBuffer();
const equalsScratchB = new ByteBuffer();

/** Appends UTF-16 code units at `p` (n units) to `out` as UTF-8, no escaping. */
function escapeFreeUtf8(p: usize, n: i32, out: ByteBuffer): void {
  for (let i = 0; i < n; i++) {
    let c = <u32>load<u16>(p + (<usize>i << 1));
    if (c - 0xd800 < 0x400 && i + 1 < n) {
      let lo = <u32>load<u16>(p + (<usize>(i + 1) << 1));
      if (lo - 0xdc00 < 0x400) {
        pushCodePoint(out, 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00));
        i++;
        continue;
      }
    }
    if (c - 0xd800 < 0x800) c = 0xfffd;
    pushCodePoint(out, c);
  }
}

/** Compares the raw bytes of a plain (escape-free) key span with an ASCII string. */
// @ts-ignore: decorator
@inline export function rawKeyEquals(keyStart: usize, keyEnd: usize, str: string): bool {
  let n = str.length;
  if (<i32>(keyEnd - keyStart) != n) return false;
  let sp = changetype<usize>(str);
  for (let i = 0; i < n; i++) {
    if (<u32>load<u8>(keyStart + <usize>i) != <u32>load<u16>(sp + (<usize>i << 1))) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Numbers

// exact powers of ten representable in f64
const POW10: StaticArray<f64> = [
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/**
 * The value of the number span `s`, or NaN when `s` is not a JSON number.
 * Numbers of at most 15 significant digits with a decimal exponent within
 * ±22 take an exact fast path; others go through the standard library's
 * `parseFloat` (which allocates a temporary string).
 */
export function parseNumber(s: Span): f64 {
  let p = spanStart(s);
  let e = spanEnd(s);
  if (p >= e) return NaN;
  let neg = false;
  if (load<u8>(p) == 0x2d) {
    neg = true;
    p++;
  }
  let mant: u64 = 0;
  let digits = 0;
  let exp10 = 0;
  let any = false;
  while (p < e) {
    let d = <u32>load<u8>(p) - 0x30;
    if (d >= 10) break;
    any = true;
    if (digits < 19) {
      if (mant != 0 || d != 0) digits++;
      mant = mant * 10 + d;
    } else {
      exp10++;
    }
    p++;
  }
  if (!any) return NaN;
  if (p < e && load<u8>(p) == 0x2e) {
    p++;
    let frac = false;
    while (p < e) {
      let d = <u32>load<u8>(p) - 0x30;
      if (d >= 10) break;
      frac = true;
      if (digits < 19) {
        if (mant != 0 || d != 0) digits++;
        mant = mant * 10 + d;
        exp10--;
      }
      p++;
    }
    if (!frac) return NaN;
  }
  if (p < e && (load<u8>(p) | 0x20) == 0x65) {
    p++;
    let eneg = false;
    if (p < e && (load<u8>(p) == 0x2d || load<u8>(p) == 0x2b)) {
      eneg = load<u8>(p) == 0x2d;
      p++;
    }
    let ev = 0;
    let anyE = false;
    while (p < e) {
      let d = <u32>load<u8>(p) - 0x30;
      if (d >= 10) break;
      anyE = true;
      if (ev < 100000) ev = ev * 10 + <i32>d;
      p++;
    }
    if (!anyE) return NaN;
    exp10 += eneg ? -ev : ev;
  }
  if (p != e) return NaN;
  let v: f64;
  if (mant == 0) {
    v = 0;
  } else if (digits <= 15 && exp10 >= -22 && exp10 <= 22) {
    v = <f64>mant;
    if (exp10 >= 0) v *= unchecked(POW10[exp10]);
    else v /= unchecked(POW10[-exp10]);
  } else {
    v = parseFloat(String.UTF8.decodeUnsafe(spanStart(s), <usize>(e - spanStart(s))));
    return v;
  }
  return neg ? -v : v;
}
