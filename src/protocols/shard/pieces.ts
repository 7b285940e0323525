/** A share handed to the shard client as consecutive pieces (client.ts putParts). */
import { contentHasher } from '../../crypto/hash.js'

/** A share given as consecutive pieces: ranges of it, without joining more than a range needs. */
export class Pieces {
  readonly byteLength: number
  constructor (private readonly pieces: readonly Uint8Array[]) {
    this.byteLength = pieces.reduce((n, p) => n + p.byteLength, 0)
  }

  /** Bytes [start, end): a view when they lie in one piece, else a copy. */
  slice (start: number, end: number): Uint8Array {
    let base = 0
    for (const p of this.pieces) {
      if (start >= base && end <= base + p.byteLength) return p.subarray(start - base, end - base)
      base += p.byteLength
    }
    const out = new Uint8Array(end - start)
    base = 0
    for (const p of this.pieces) {
      const from = Math.max(start, base)
      const to = Math.min(end, base + p.byteLength)
      if (from < to) out.set(p.subarray(from - base, to - base), from - start)
      base += p.byteLength
    }
    return out
  }

  hash (): Uint8Array {
    const h = contentHasher()
    for (const p of this.pieces) h.update(p)
    return h.digest()
  }
}
