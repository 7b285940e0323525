/**
 * Push-style chunking of a stream delivered in pieces of any size.
 *
 * Every byte is hashed once: the chunker asks FastCdc for a cut only when at least maxSize bytes are
 * available (a cut is then certain) or at the end of the stream, so it never rescans a partial chunk.
 * Whenever the internal buffer is empty, a piece of at least maxSize bytes is scanned in place; other
 * bytes go through the internal buffer (capacity 2 × maxSize, which is all the memory it keeps), since
 * the caller may reuse its piece as soon as push returns. Every returned chunk is copied out.
 */
import type { FastCdc } from './fastcdc.js'

export class StreamChunker {
  private readonly cdc: FastCdc
  private readonly max: number
  private readonly buf: Uint8Array
  /** Unchunked bytes are buf[head .. tail); always fewer than maxSize of them between calls. */
  private head = 0
  private tail = 0

  constructor (cdc: FastCdc) {
    this.cdc = cdc
    this.max = cdc.params.maxSize
    this.buf = new Uint8Array(2 * this.max)
  }

  /** Returns the chunks completed by this data; each returned chunk is a fresh Uint8Array (does not alias input or internal buffers). */
  push (data: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = []
    const { cdc, buf, max } = this
    const n = data.length
    let off = 0
    while (off < n) {
      if (this.head === this.tail) {
        this.head = this.tail = 0
        if (n - off >= max) {
          // In place: a cut is certain while maxSize bytes remain.
          do {
            const cut = cdc.nextCut(data, off, n, false)
            out.push(data.slice(off, off + cut))
            off += cut
          } while (n - off >= max)
          continue
        }
      }
      if (this.tail === buf.length) {
        // Full: move the (fewer than maxSize) unchunked bytes to the front. At most one move per maxSize consumed.
        buf.copyWithin(0, this.head, this.tail)
        this.tail -= this.head
        this.head = 0
      }
      const take = Math.min(n - off, buf.length - this.tail)
      buf.set(data.subarray(off, off + take), this.tail)
      this.tail += take
      off += take
      if (this.tail - this.head < max) continue // wait for more data (or make room next round)
      do {
        const cut = cdc.nextCut(buf, this.head, this.tail, false)
        out.push(buf.slice(this.head, this.head + cut))
        this.head += cut
      } while (this.tail - this.head >= max)
      const rest = this.tail - this.head
      if (rest <= take) {
        // The leftover came from `data` alone: forget the copy and read it in place again.
        off -= rest
        this.head = this.tail = 0
      }
    }
    return out
  }

  /**
   * Ends the stream: returns the remaining bytes as its final chunks (empty array if nothing is left).
   * Fewer than maxSize bytes are held, yet they may still hold a cut point, so this may return more than
   * one chunk; only the last may be shorter than minSize. The chunker is then empty and can start a new stream.
   */
  finish (): Uint8Array[] {
    const out: Uint8Array[] = []
    while (this.head < this.tail) {
      const cut = this.cdc.nextCut(this.buf, this.head, this.tail, true)
      out.push(this.buf.slice(this.head, this.head + cut))
      this.head += cut
    }
    this.head = this.tail = 0
    return out
  }
}
