// A test filter plugin for package meter, in AssemblyScript: the same
// exports as ../guest. Built by the command in README.md.

let buf: usize = 0;
let cap: i32 = 0;

// alloc returns a pointer to a buffer of at least n bytes, reused across calls.
export function alloc(n: i32): usize {
  if (n > cap) {
    buf = heap.alloc(<usize>n);
    cap = n;
  }
  return buf;
}

// scan counts '@' and ASCII digits as ../guest does.
export function scan(p: usize, n: i32): i32 {
  let at: i32 = 0;
  let digits: i32 = 0;
  let runs: i32 = 0;
  let inDigits = false;
  for (let i: i32 = 0; i < n; i++) {
    const c = load<u8>(p + <usize>i);
    if (c == 0x40) {
      at++;
      inDigits = false;
    } else if (c >= 0x30 && c <= 0x39) {
      digits++;
      if (!inDigits) runs++;
      inDigits = true;
    } else {
      inDigits = false;
    }
  }
  return (at << 20) ^ (digits << 8) ^ runs;
}

let sink: i64 = 0;

// spin never returns.
export function spin(): void {
  for (let i: i64 = 0; ; i++) {
    sink = i;
  }
}

// work loops n times and returns a value that depends on every iteration.
export function work(n: i64): i64 {
  let h: i64 = 1469598103934665603;
  for (let i: i64 = 0; i < n; i++) {
    h = (h ^ i) * 1099511628211;
  }
  return h;
}
