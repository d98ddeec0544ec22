// A growable byte buffer in raw linear memory.
//
// The SDK keeps a handful of these (input, output, edit scratch, index
// tables) and reuses them for every call, so filtering a batch does not
// allocate once the buffers have reached their working size.

/** A growable run of bytes in linear memory, reused across calls. */
@final
export class ByteBuffer {
  /** Address of the first byte. Changes when the buffer grows. */
  ptr: usize = 0;
  /** Bytes in use. */
  len: i32 = 0;
  /** Bytes available at `ptr`. */
  cap: i32 = 0;

  constructor(initial: i32 = 0) {
    if (initial > 0) this.reserve(initial);
  }

  /** Forgets the contents, keeps the storage. */
  @inline reset(): void {
    this.len = 0;
  }

  /** Makes room for at least `total` bytes; returns false when `total` is not representable. */
  reserve(total: i32): bool {
    if (total <= this.cap) return true;
    if (total < 0) return false;
    let cap = this.cap < 256 ? 256 : this.cap;
    while (cap < total) {
      if (cap > 0x3fffffff) { cap = total; break; }
      cap <<= 1;
    }
    let p = this.ptr == 0 ? heap.alloc(<usize>cap) : heap.realloc(this.ptr, <usize>cap);
    this.ptr = p;
    this.cap = cap;
    return true;
  }

  /** Makes room for `n` more bytes after `len`. */
  ensure(n: i32): void {
    let need = this.len + n;
    if (need > this.cap) this.reserve(need);
  }

  pushByte(b: u32): void {
    if (this.len >= this.cap) this.reserve(this.len + 1);
    store<u8>(this.ptr + <usize>this.len, <u8>b);
    this.len += 1;
  }

  pushU32(v: u32): void {
    this.ensure(4);
    store<u32>(this.ptr + <usize>this.len, v);
    this.len += 4;
  }

  /** Appends `n` bytes copied from `src`. */
  pushBytes(src: usize, n: i32): void {
    if (n <= 0) return;
    this.ensure(n);
    memory.copy(this.ptr + <usize>this.len, src, <usize>n);
    this.len += n;
  }

  /** Appends the ASCII string `s` (code units above 0x7f are not expected). */
  pushAscii(s: string): void {
    let n = s.length;
    this.ensure(n);
    let d = this.ptr + <usize>this.len;
    let p = changetype<usize>(s);
    for (let i = 0; i < n; i++) store<u8>(d + <usize>i, <u8>load<u16>(p + (<usize>i << 1)));
    this.len += n;
  }

  /** Address just past the last byte in use. */
  @inline get end(): usize {
    return this.ptr + <usize>this.len;
  }
}
