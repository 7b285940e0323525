/**
 * Byte helpers shared by every binary format: a growable writer and a bounds-checked reader.
 * Integers are little-endian; `uvarint` is the unsigned LEB128 encoding (at most 10 bytes, < 2^64).
 */
import { FormatError } from '../errors.js'

export function toHex (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

export function fromHex (hex: string): Uint8Array {
  if (!/^([0-9a-f]{2})*$/i.test(hex)) throw new FormatError(`not a hex string: ${hex.slice(0, 20)}`)
  return new Uint8Array(Buffer.from(hex, 'hex'))
}

export function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b)
}

export function compareBytes (a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b)
}

export function concatBytes (parts: readonly Uint8Array[]): Uint8Array {
  let total = 0
  for (const p of parts) total += p.byteLength
  const out = new Uint8Array(total)
  let off = 0
  for (const p of parts) { out.set(p, off); off += p.byteLength }
  return out
}

export function isAllZero (bytes: Uint8Array): boolean {
  const n = bytes.byteLength
  let i = 0
  if (bytes.byteOffset % 8 === 0) {
    const words = new BigUint64Array(bytes.buffer, bytes.byteOffset, n >>> 3)
    for (const w of words) if (w !== 0n) return false
    i = words.length * 8
  }
  for (; i < n; i++) if (bytes[i] !== 0) return false
  return true
}

const utf8 = new TextEncoder()
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
export function utf8Encode (s: string): Uint8Array { return utf8.encode(s) }
export function utf8Decode (b: Uint8Array): string {
  try { return utf8Strict.decode(b) } catch { throw new FormatError('invalid UTF-8 in a text field') }
}

/** Bytes of `v` (a non-negative safe integer) as a uvarint. */
export function uvarintLength (v: number): number {
  let n = 1
  while (v >= 0x80) { v = Math.floor(v / 0x80); n++ }
  return n
}

/** Growable little-endian byte writer. */
export class ByteWriter {
  private buf: Uint8Array
  private view: DataView
  private pos = 0

  constructor (initial = 256) {
    this.buf = new Uint8Array(initial)
    this.view = new DataView(this.buf.buffer)
  }

  get length (): number { return this.pos }

  private ensure (n: number): void {
    if (this.pos + n <= this.buf.byteLength) return
    let size = this.buf.byteLength * 2
    while (size < this.pos + n) size *= 2
    const next = new Uint8Array(size)
    next.set(this.buf.subarray(0, this.pos))
    this.buf = next
    this.view = new DataView(next.buffer)
  }

  u8 (v: number): this { this.ensure(1); this.buf[this.pos++] = v & 0xff; return this }
  u16 (v: number): this { this.ensure(2); this.view.setUint16(this.pos, v, true); this.pos += 2; return this }
  u32 (v: number): this { this.ensure(4); this.view.setUint32(this.pos, v, true); this.pos += 4; return this }
  u64 (v: bigint | number): this { this.ensure(8); this.view.setBigUint64(this.pos, BigInt(v), true); this.pos += 8; return this }
  i64 (v: bigint): this { this.ensure(8); this.view.setBigInt64(this.pos, v, true); this.pos += 8; return this }

  uvarint (v: number | bigint): this {
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) {
      // fast path without BigInt: safe integers need at most 8 bytes
      this.ensure(8)
      while (v >= 0x80) {
        this.buf[this.pos++] = (v % 0x80) | 0x80
        v = Math.floor(v / 0x80)
      }
      this.buf[this.pos++] = v
      return this
    }
    let x = BigInt(v)
    if (x < 0n || x >= 1n << 64n) throw new RangeError(`uvarint out of range: ${x}`)
    while (x >= 0x80n) { this.u8(Number(x & 0x7fn) | 0x80); x >>= 7n }
    return this.u8(Number(x))
  }

  /** Signed varint by zig-zag. */
  svarint (v: bigint): this { return this.uvarint(v >= 0n ? v << 1n : ((-v) << 1n) - 1n) }

  raw (bytes: Uint8Array): this { this.ensure(bytes.byteLength); this.buf.set(bytes, this.pos); this.pos += bytes.byteLength; return this }
  /** uvarint length followed by the bytes. */
  bytes (bytes: Uint8Array): this { return this.uvarint(bytes.byteLength).raw(bytes) }
  string (s: string): this { return this.bytes(utf8Encode(s)) }

  finish (): Uint8Array { return this.buf.slice(0, this.pos) }
}

/** Bounds-checked little-endian reader; every overrun is a FormatError naming `what`. */
export class ByteReader {
  private readonly view: DataView
  pos = 0

  constructor (readonly buf: Uint8Array, readonly what = 'data') {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  }

  get remaining (): number { return this.buf.byteLength - this.pos }
  get done (): boolean { return this.pos === this.buf.byteLength }

  private need (n: number): void {
    if (n < 0 || this.pos + n > this.buf.byteLength) throw new FormatError(`${this.what} is truncated (needs ${n} more bytes at offset ${this.pos}, has ${this.remaining})`)
  }

  u8 (): number { this.need(1); return this.buf[this.pos++] as number }
  u16 (): number { this.need(2); const v = this.view.getUint16(this.pos, true); this.pos += 2; return v }
  u32 (): number { this.need(4); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v }
  u64 (): bigint { this.need(8); const v = this.view.getBigUint64(this.pos, true); this.pos += 8; return v }
  i64 (): bigint { this.need(8); const v = this.view.getBigInt64(this.pos, true); this.pos += 8; return v }

  uvarintBig (): bigint {
    let result = 0n
    let shift = 0n
    for (let i = 0; i < 10; i++) {
      const b = this.u8()
      result |= BigInt(b & 0x7f) << shift
      if ((b & 0x80) === 0) {
        if (result >= 1n << 64n) break
        if (i > 0 && b === 0) throw new FormatError(`${this.what}: non-minimal varint`)
        return result
      }
      shift += 7n
    }
    throw new FormatError(`${this.what}: varint too long`)
  }

  /** A uvarint that must fit a safe integer (lengths, counts). */
  uvarint (max = Number.MAX_SAFE_INTEGER): number {
    // fast path: up to 7 bytes (49 bits) without BigInt
    let result = 0
    let mul = 1
    for (let i = 0; i < 7 && this.pos < this.buf.byteLength; i++) {
      const b = this.buf[this.pos] as number
      if ((b & 0x80) === 0) {
        if (i > 0 && b === 0) break // non-minimal: let the slow path report it
        this.pos++
        result += b * mul
        if (result > max) throw new FormatError(`${this.what}: value ${result} exceeds limit ${max}`)
        return result
      }
      this.pos++
      result += (b & 0x7f) * mul
      mul *= 0x80
    }
    // rewind and take the general path
    let back = 0
    for (let m = mul; m > 1; m /= 0x80) back++
    this.pos -= back
    const v = this.uvarintBig()
    if (v > BigInt(max)) throw new FormatError(`${this.what}: value ${v} exceeds limit ${max}`)
    return Number(v)
  }

  svarint (): bigint {
    const z = this.uvarintBig()
    return (z & 1n) === 0n ? z >> 1n : -((z + 1n) >> 1n)
  }

  raw (n: number): Uint8Array { this.need(n); const out = this.buf.subarray(this.pos, this.pos + n); this.pos += n; return out }
  bytes (max = this.remaining): Uint8Array { return this.raw(this.uvarint(max)) }
  string (max?: number): string { return utf8Decode(this.bytes(max)) }

  end (): void {
    if (!this.done) throw new FormatError(`${this.what} has ${this.remaining} unexpected trailing bytes`)
  }
}

/**
 * The minimal uvarint (< 2^64) at `pos` of `b` as its low 28 bits, the rest, and the position after
 * it; undefined for anything else (a caller's strict decoder then raises the FormatError). For hot
 * decoding paths that would rather not build a BigInt per number.
 */
export function scanUvarint (b: Uint8Array, pos: number): [lo: number, hi: number, next: number] | undefined {
  const end = Math.min(pos + 10, b.byteLength)
  let lo = 0
  let hi = 0
  let scale = 1
  for (let p = pos; p < end; p++) {
    const x = b[p] as number
    const i = p - pos
    if (i < 4) lo |= (x & 0x7f) << (7 * i)
    else { hi += (x & 0x7f) * scale; scale *= 0x80 }
    if (x < 0x80) {
      if ((i > 0 && x === 0) || (i === 9 && x > 1)) return undefined
      return [lo, hi, p + 1]
    }
  }
  return undefined
}
