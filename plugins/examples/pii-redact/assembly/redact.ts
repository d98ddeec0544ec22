// The redaction scanner: one left-to-right pass over UTF-8 text that copies
// it to an output buffer, replacing each match with a marker. Matches are
// pure ASCII, so multi-byte characters are always copied whole.
//
// The exact rules are listed in README.md ("What is redacted"); the comments
// on each matcher below say the same in code terms.

import { ByteBuffer } from "@uptimizr/plugin-sdk/assembly";

// --- options (set from the config in index.ts) ------------------------------

export let redactEmails = true;
export let redactPhones = true;
export let redactIPs = true;
export let redactCards = true;
export let redactTokens = true;
export let redactSecrets = true;
export let redactParams = true;

export function setOptions(emails: bool, phones: bool, ips: bool, cards: bool, tokens: bool, secrets: bool, params: bool): void {
  redactEmails = emails;
  redactPhones = phones;
  redactIPs = ips;
  redactCards = cards;
  redactTokens = tokens;
  redactSecrets = secrets;
  redactParams = params;
}

/** Deny-listed query parameter names: entries of [u8 length][lower-case bytes]. */
export const denyList = new ByteBuffer(256);

/** Adds the ASCII name `name` (lower-cased here) to the deny-list. */
export function denyParam(name: string): void {
  let n = name.length;
  denyList.pushByte(<u32>n);
  for (let i = 0; i < n; i++) denyList.pushByte(lower(<u32>name.charCodeAt(i)));
}

/**
 * Adds the name in `len` bytes at `ptr` to the deny-list; false when it is
 * not 1-64 characters of [A-Za-z0-9_.\-\[\]%].
 */
export function denyParamBytes(ptr: usize, len: i32): bool {
  if (len < 1 || len > 64) return false;
  for (let i = 0; i < len; i++) {
    if (!has(<u32>load<u8>(ptr + <usize>i), PARAM)) return false;
  }
  denyList.pushByte(<u32>len);
  for (let i = 0; i < len; i++) denyList.pushByte(lower(<u32>load<u8>(ptr + <usize>i)));
  return true;
}

export const DEFAULT_DENY_PARAMS: StaticArray<string> = [
  "token", "access_token", "api_key", "apikey", "key", "password", "secret", "email", "session", "sid", "auth",
];

// --- character classes ------------------------------------------------------

const DIGIT: u8 = 1;
const UPPER: u8 = 2;
const LOWER: u8 = 4;
const HEX: u8 = 8;
const LOCAL: u8 = 16; // e-mail local part: A-Z a-z 0-9 . _ % + -
const WORD: u8 = 32; // A-Z a-z 0-9 _ -
const BEARER: u8 = 64; // bearer token: A-Z a-z 0-9 - . _ ~ + / =
const PARAM: u8 = 128; // query parameter name: A-Z a-z 0-9 _ . - [ ] %

const ALPHA: u8 = UPPER | LOWER;
const ALNUM: u8 = DIGIT | UPPER | LOWER;

const classes = memory.data(256);

function initClasses(): void {
  for (let c: u32 = 0; c < 128; c++) {
    let f: u8 = 0;
    if (c - 0x30 < 10) f |= DIGIT | HEX | LOCAL | WORD | BEARER | PARAM;
    if (c - 0x41 < 26) f |= UPPER | LOCAL | WORD | BEARER | PARAM;
    if (c - 0x61 < 26) f |= LOWER | LOCAL | WORD | BEARER | PARAM;
    if (c - 0x41 < 6 || c - 0x61 < 6) f |= HEX;
    if (c == 0x5f || c == 0x2d) f |= LOCAL | WORD | BEARER | PARAM; // _ -
    if (c == 0x2e) f |= LOCAL | BEARER | PARAM; // .
    if (c == 0x25) f |= LOCAL | PARAM; // %
    if (c == 0x2b) f |= LOCAL | BEARER; // +
    if (c == 0x7e || c == 0x2f || c == 0x3d) f |= BEARER; // ~ / =
    if (c == 0x5b || c == 0x5d) f |= PARAM; // [ ]
    store<u8>(classes + c, f);
  }
}
initClasses();

// The scanned text: src[0..n), copied into `padded` between a zero byte and
// PAD zero bytes, so that at(-1) and reads a little past the end see 0, which
// is in no class and stops every run. Matchers never look further than PAD
// bytes past a byte of a run.
let src: usize = 0;
let n: i32 = 0;
const PAD = 16;
const padded = new ByteBuffer(4096);

// @ts-ignore: decorator
@inline function at(i: i32): u32 {
  return <u32>load<u8>(src + <usize>i);
}

// @ts-ignore: decorator
@inline function cls(c: u32): u8 {
  return c < 128 ? load<u8>(classes + c) : 0;
}

// @ts-ignore: decorator
@inline function has(c: u32, f: u8): bool {
  return (cls(c) & f) != 0;
}

// @ts-ignore: decorator
@inline function lower(c: u32): u32 {
  return c - 0x41 < 26 ? c | 0x20 : c;
}

/** True when src[i..] starts with the ASCII `s` (case-insensitive when `ci`). */
function startsWith(i: i32, s: string, ci: bool): bool {
  let m = s.length;
  if (i + m > n) return false;
  for (let k = 0; k < m; k++) {
    let c = at(i + k);
    let e = <u32>s.charCodeAt(k);
    if (ci ? lower(c) != e : c != e) return false;
  }
  return true;
}

/** End of the run of characters in class `f` starting at `i`. */
function runEnd(i: i32, f: u8): i32 {
  while (has(at(i), f)) i++;
  return i;
}

// --- matchers: each returns the end of its match at `i`, or -1 -----------------

// E-mail: local part [A-Za-z0-9._%+-]+ (not starting with a dot), then "@" (or
// its URL encoding "%40"), then a domain of dot-separated [A-Za-z0-9-] labels
// whose last label is at least two letters.
function matchEmail(i: i32): i32 {
  if (at(i) == 0x2e) return -1;
  let j = i;
  let atSign = -1;
  let domain = -1;
  while (j < n) {
    let c = at(j);
    if (c == 0x40) {
      atSign = j;
      domain = j + 1;
      break;
    }
    if (c == 0x25 && at(j + 1) == 0x34 && at(j + 2) == 0x30) {
      atSign = j;
      domain = j + 3;
      break;
    }
    if (!has(c, LOCAL)) break;
    j++;
  }
  if (atSign <= i) return -1;
  // labels
  let p = domain;
  let end = -1;
  let labels = 0;
  while (true) {
    let s = p;
    while (p < n && (has(at(p), ALNUM) || at(p) == 0x2d)) p++;
    if (p == s) break;
    labels++;
    // a top-level domain: two letters or more
    let alpha = p - s >= 2;
    for (let k = s; alpha && k < p; k++) alpha = has(at(k), ALPHA);
    if (labels >= 2 && alpha) end = p;
    if (at(p) != 0x2e) break;
    p++;
  }
  return end;
}

// Bearer token: "bearer" (any case, not preceded by a letter), spaces, then a
// token of [A-Za-z0-9-._~+/=] at least 8 long that has a digit or one of
// -._~+/= or is at least 20 long. Only the token is replaced.
function matchBearer(i: i32): i32 {
  if (!startsWith(i, "bearer", true)) return -1;
  let j = i + 6;
  if (at(j) != 0x20) return -1;
  while (at(j) == 0x20) j++;
  let e = runEnd(j, BEARER);
  let len = e - j;
  if (len < 8) return -1;
  if (len < 20) {
    let mixed = false;
    for (let k = j; k < e && !mixed; k++) mixed = !has(at(k), ALPHA);
    if (!mixed) return -1;
  }
  tokenStart = j;
  return e;
}
let tokenStart = 0;

// JSON Web Token: "eyJ", then three base64url segments separated by dots,
// the first two at least 10 long.
function matchJwt(i: i32): i32 {
  if (!startsWith(i, "eyJ", false)) return -1;
  let a = runEnd(i, WORD);
  if (a - i < 10 || at(a) != 0x2e) return -1;
  let b = runEnd(a + 1, WORD);
  if (b - a - 1 < 10 || at(b) != 0x2e) return -1;
  return runEnd(b + 1, WORD);
}

// Keys with a known shape, as whole [A-Za-z0-9_-] runs:
//   sk_live_ sk_test_ rk_live_ rk_test_ + 8 or more   (Stripe secret/restricted keys)
//   AKIA / ASIA + exactly 16 of [A-Z0-9]               (AWS access key ids)
//   ghp_ gho_ ghu_ ghs_ ghr_ + 30 or more, github_pat_ + 20 or more (GitHub tokens)
//   xoxb- xoxp- xoxa- xoxr- xoxs- + 10 or more         (Slack tokens)
//   AIza + 35                                          (Google API keys)
function matchKnownKey(i: i32): i32 {
  let e = runEnd(i, WORD);
  let len = e - i;
  if (len < 12) return -1;
  let c = at(i);
  if (c == 0x73 || c == 0x72) { // s r
    if (at(i + 1) == 0x6b && at(i + 2) == 0x5f && (startsWith(i + 3, "live_", false) || startsWith(i + 3, "test_", false))) {
      return len >= 16 ? e : -1;
    }
  }
  if (c == 0x41) { // A
    if ((startsWith(i, "AKIA", false) || startsWith(i, "ASIA", false)) && len == 20) {
      for (let k = i + 4; k < e; k++) if (!has(at(k), UPPER | DIGIT)) return -1;
      return e;
    }
    if (startsWith(i, "AIza", false) && len == 39) return e;
  }
  if (c == 0x67) { // g
    if (at(i + 1) == 0x68 && at(i + 3) == 0x5f) {
      let k = at(i + 2);
      if ((k == 0x70 || k == 0x6f || k == 0x75 || k == 0x73 || k == 0x72) && len >= 34) return e;
    }
    if (startsWith(i, "github_pat_", false) && len >= 31) return e;
  }
  if (c == 0x78 && startsWith(i, "xox", false) && at(i + 4) == 0x2d) { // x
    let k = at(i + 3);
    if ((k == 0x62 || k == 0x70 || k == 0x61 || k == 0x72 || k == 0x73) && len >= 15) return e;
  }
  return -1;
}

// Long high-entropy run: 32 or more of [A-Za-z0-9_-], bounded by other
// characters, with at least one digit, one upper-case and one lower-case
// letter, where at least 40% of the pairs of adjacent letters/digits change
// class (lower, upper, digit). Hex digests, UUIDs, words and identifiers
// ("Body_Paint_Metallic_LOD0_Variant2") do not qualify; random keys almost
// always do.
function matchHighEntropy(i: i32): i32 {
  let e = runEnd(i, WORD);
  let len = e - i;
  if (len < 32) return -1;
  let seen: u8 = 0;
  let pairs = 0;
  let changes = 0;
  let prev: u8 = 0;
  for (let k = i; k < e; k++) {
    let f = cls(at(k)) & ALNUM;
    seen |= f;
    if (f != 0 && prev != 0) {
      pairs++;
      if (f != prev) changes++;
    }
    prev = f;
  }
  if (seen != ALNUM) return -1;
  if (changes * 10 < pairs * 4) return -1;
  return e;
}

// IPv4: four dot-separated decimal octets 0-255, not part of a longer dotted
// number.
function matchIPv4(i: i32): i32 {
  let j = i;
  for (let part = 0; part < 4; part++) {
    let s = j;
    let v = 0;
    while (has(at(j), DIGIT) && j - s < 3) {
      v = v * 10 + <i32>(at(j) - 0x30);
      j++;
    }
    if (j == s || v > 255 || has(at(j), DIGIT)) return -1;
    if (part < 3) {
      if (at(j) != 0x2e) return -1;
      j++;
    }
  }
  if (has(at(j), ALNUM) || (at(j) == 0x2e && has(at(j + 1), DIGIT))) return -1;
  return j;
}

// IPv6: colon-separated groups of 1-4 hex digits, eight of them, or fewer
// with one "::"; an IPv4 address may stand for the last two groups.
function matchIPv6(i: i32): i32 {
  let j = i;
  let groups = 0;
  let compressed = false;
  let colons = 0;
  if (at(j) == 0x3a) {
    if (at(j + 1) != 0x3a) return -1;
    compressed = true;
    colons = 2;
    j += 2;
  }
  while (true) {
    let s = j;
    while (has(at(j), HEX) && j - s < 5) j++;
    let h = j - s;
    if (h == 0) break;
    if (h > 4) return -1;
    if (at(j) == 0x2e && groups <= 6 && colons > 0) {
      // trailing dotted quad
      let e4 = matchIPv4(s);
      if (e4 < 0) return -1;
      groups += 2;
      j = e4;
      break;
    }
    groups++;
    if (at(j) == 0x3a) {
      if (at(j + 1) == 0x3a) {
        if (compressed) return -1;
        compressed = true;
        colons += 2;
        j += 2;
        continue;
      }
      if (has(at(j + 1), HEX)) {
        colons++;
        j++;
        continue;
      }
    }
    break;
  }
  if (colons < 2 || groups == 0) return -1;
  if (compressed ? groups > 7 : groups != 8) return -1;
  if (has(at(j), ALNUM) || at(j) == 0x3a) return -1;
  return j;
}

const cardDigits = memory.data(20);

// Payment card: 13-19 digits, single spaces or dashes allowed between digits,
// first digit 2-6 (the IIN ranges of the card networks), passing the Luhn
// check.
function matchCard(i: i32): i32 {
  let j = i;
  let d = 0;
  while (true) {
    let c = at(j);
    if (has(c, DIGIT)) {
      if (d == 19) return -1;
      store<u8>(cardDigits + <usize>d, <u8>(c - 0x30));
      d++;
      j++;
    } else if ((c == 0x20 || c == 0x2d) && has(at(j + 1), DIGIT)) {
      j++;
    } else {
      break;
    }
  }
  if (d < 13 || has(at(j), ALNUM)) return -1;
  let first = load<u8>(cardDigits);
  if (first < 2 || first > 6) return -1;
  let sum = 0;
  for (let k = 0; k < d; k++) {
    let v = <i32>load<u8>(cardDigits + <usize>(d - 1 - k));
    if (k & 1) {
      v *= 2;
      if (v > 9) v -= 9;
    }
    sum += v;
  }
  return sum % 10 == 0 ? j : -1;
}

// Phone number, 7-15 digits in all:
//  - international: "+" and either the whole number as one run of digits
//    ("+4915123456789") or a country code of 1-3 digits followed by groups
//    ("+44 20 7946 0958", "+1 (555) 123-4567", "+49-30-1234567");
//  - national: two or more groups of at least 2 digits ("(555) 123-4567",
//    "030 1234567", "555.123.4567", "06 12 34 56 78"). Not counted: two
//    dot-separated groups (a decimal), dot-separated thousands
//    ("12.345.678") and dates (4-2-2 or 2-2-4 digits).
// Groups are separated by one kind of single separator (space, dash or
// dot) throughout — after an international country code any one may come
// first — and a group in parentheses may be followed by a space. The number
// ends where another kind of separator starts; a run of more than 15 digits
// is not a phone number, and neither is its tail: a national number does not
// start right after a digit and the separator it uses itself
// ("4111 1111 1111 1112" holds no "1111 1111 1112").
function matchPhone(i: i32): i32 {
  let j = i;
  let intl = false;
  if (at(j) == 0x2b) {
    intl = true;
    j++;
  }
  let digits = 0;
  let groups = 0;
  let shortGroup = false;
  let dots = 0;
  let sep: u32 = 0;
  let thousands = true;
  let g0 = 0;
  let g1 = 0;
  let g2 = 0;
  while (true) {
    let paren = at(j) == 0x28;
    if (paren) j++;
    let s = j;
    while (has(at(j), DIGIT)) j++;
    let g = j - s;
    if (g == 0) return -1;
    if (paren) {
      if (at(j) != 0x29) return -1;
      j++;
    }
    if (groups > 0 && g != 3) thousands = false;
    if (groups == 0) g0 = g;
    else if (groups == 1) g1 = g;
    else if (groups == 2) g2 = g;
    groups++;
    digits += g;
    if (digits > 15) return -1;
    if (g < 2 && !(intl && groups == 1)) shortGroup = true;
    // an unformatted international number is a single run
    if (intl && groups == 1 && g > 3) break;
    let c = at(j);
    let after = at(j + 1);
    if (paren && c == 0x20 && has(after, DIGIT)) {
      j++;
      continue;
    }
    if ((c == 0x20 || c == 0x2d || c == 0x2e) && (has(after, DIGIT) || after == 0x28)) {
      if (!(intl && groups == 1)) {
        if (sep != 0 && c != sep) break;
        sep = c;
      }
      if (c == 0x2e) dots++;
      j++;
      continue;
    }
    if (paren && has(c, DIGIT)) continue;
    break;
  }
  if (digits < 7 || has(at(j), ALNUM)) return -1;
  if (intl) return j;
  let p = at(i - 1);
  if ((p == 0x20 || p == 0x2d) && has(at(i - 2), DIGIT) && (sep == 0 || sep == p)) return -1;
  if (groups < 2 || shortGroup) return -1;
  if (groups == 2 && dots == 1) return -1;
  if (dots > 0 && thousands) return -1;
  if (groups == 3 && digits == 8 && ((g0 == 4 && g1 == 2 && g2 == 2) || (g0 == 2 && g1 == 2 && g2 == 4))) return -1;
  return j;
}

// Deny-listed query parameter: at "?", "&", "#" or ";", a name of
// [A-Za-z0-9_.\-\[\]%] followed by "="; when the name (any case) is on the
// deny-list, its value — up to the next & # ; whitespace quote < > or the end
// — is replaced. Returns the end of the value; `paramValue` is its start.
function matchParam(i: i32): i32 {
  let s = i + 1;
  let e = runEnd(s, PARAM);
  if (e == s || at(e) != 0x3d) return -1;
  let v = e + 1;
  let ve = v;
  while (ve < n) {
    let c = at(ve);
    if (c == 0x26 || c == 0x23 || c == 0x3b || c <= 0x20 || c == 0x22 || c == 0x27 || c == 0x3c || c == 0x3e) break;
    ve++;
  }
  if (ve == v) return -1;
  // look the name up
  let len = e - s;
  let p = denyList.ptr;
  let end = denyList.end;
  while (p < end) {
    let m = <i32>load<u8>(p);
    if (m == len) {
      let k = 0;
      while (k < m && lower(at(s + k)) == <u32>load<u8>(p + 1 + <usize>k)) k++;
      if (k == m) {
        paramValue = v;
        return ve;
      }
    }
    p += 1 + <usize>m;
  }
  return -1;
}
let paramValue = 0;

// --- the scan ---------------------------------------------------------------

// @ts-ignore: decorator
@inline function isParamStart(c: u32): bool {
  return c == 0x3f || c == 0x26 || c == 0x23 || c == 0x3b;
}

/**
 * Copies `len` bytes of UTF-8 text at `ptr` to `out` (which it resets),
 * replacing what the options ask for. Returns true when anything was
 * replaced.
 */
export function redact(ptr: usize, len: i32, out: ByteBuffer): bool {
  padded.reset();
  padded.ensure(len + 1 + PAD);
  let p = padded.ptr;
  store<u8>(p, 0);
  memory.copy(p + 1, ptr, <usize>len);
  memory.fill(p + 1 + <usize>len, 0, PAD);
  src = p + 1;
  n = len;
  out.reset();
  let copied = 0;
  let changed = false;
  let prevWord = false; // the previous byte is in [A-Za-z0-9_-]
  let i = 0;
  while (i < n) {
    let c = at(i);
    let f = cls(c);
    if (prevWord && !isParamStart(c)) {
      prevWord = (f & WORD) != 0;
      i++;
      continue;
    }
    let end = -1;
    let from = i;
    let marker = "";
    if (isParamStart(c)) {
      if (redactParams) {
        end = matchParam(i);
        if (end >= 0) {
          from = paramValue;
          marker = "[redacted]";
        }
      }
    } else if (f != 0 || c == 0x2b || c == 0x28 || c == 0x3a) {
      // starts of matches: letters, digits, _ - . % + ( :
      if (redactEmails && (f & LOCAL) != 0 && !has(at(i - 1), LOCAL)) {
        end = matchEmail(i);
        marker = "[email]";
      }
      if (end < 0 && redactTokens && (c | 0x20) == 0x62) {
        end = matchBearer(i);
        if (end >= 0) {
          from = tokenStart;
          marker = "[token]";
        }
      }
      if (end < 0 && redactTokens && c == 0x65) {
        end = matchJwt(i);
        marker = "[token]";
      }
      if (end < 0 && redactSecrets && (f & ALPHA) != 0) {
        end = matchKnownKey(i);
        marker = "[secret]";
      }
      if (end < 0 && ((f & (DIGIT | HEX)) != 0 || c == 0x3a)) {
        let p = at(i - 1);
        // numbers and addresses do not continue a dotted or colon-separated run
        if (p != 0x2e && p != 0x3a && p != 0x2b) {
          if (redactIPs && (f & DIGIT) != 0) {
            end = matchIPv4(i);
            marker = "[ip]";
          }
          if (end < 0 && redactIPs) {
            end = matchIPv6(i);
            marker = "[ip]";
          }
          if (end < 0 && redactCards && (f & DIGIT) != 0) {
            end = matchCard(i);
            marker = "[card]";
          }
        }
      }
      if (end < 0 && redactPhones && ((f & DIGIT) != 0 || c == 0x2b || c == 0x28)) {
        let p = at(i - 1);
        if (p != 0x2e && p != 0x2b) {
          end = matchPhone(i);
          marker = "[phone]";
        }
      }
      if (end < 0 && redactSecrets && (f & WORD) != 0) {
        end = matchHighEntropy(i);
        marker = "[secret]";
      }
    }
    if (end > i) {
      out.pushBytes(src + <usize>copied, from - copied);
      out.pushAscii(marker);
      copied = end;
      i = end;
      changed = true;
      prevWord = has(at(i - 1), WORD);
      continue;
    }
    prevWord = (f & WORD) != 0;
    i++;
  }
  if (changed) out.pushBytes(src + <usize>copied, n - copied);
  return changed;
}

/**
 * Cuts `b` so that its text is at most `max` UTF-16 code units long (the
 * collector's measure), at a character boundary.
 */
export function truncateUtf16(b: ByteBuffer, max: i32): void {
  let units = 0;
  let p = b.ptr;
  let e = b.end;
  while (p < e) {
    let c = <u32>load<u8>(p);
    let size: i32 = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    let u = size == 4 ? 2 : 1;
    if (units + u > max) break;
    units += u;
    p += <usize>size;
  }
  if (p < e) b.len = <i32>(p - b.ptr);
}
