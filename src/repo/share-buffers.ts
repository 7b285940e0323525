/**
 * Spare share buffers, reused from one pack to the next. Every pack put to a group needs k + m fresh
 * buffers of about a shard each (16 MiB with k = 1); new ones cost page faults on first touch, and the
 * old ones stay in RSS until V8 collects them (measured on the publisher daemon: a few hundred MiB of
 * such garbage at the peak). A buffer goes back to the pool only when every put of its pack has
 * settled: a ShareStore keeps no reference to `data` after that (ShareStore contract).
 */

const MiB = 1024 * 1024

export class ShareBufferPool {
  private readonly spare: ArrayBuffer[] = []
  /** buffers this pool handed out and not yet given back (only those may come back) */
  private readonly lent = new Set<ArrayBuffer>()
  private spareBytes = 0

  /**
   * @param maxSpareBytes spare bytes kept at most (the rest is left to the GC)
   * @param minBytes smaller requests get a plain allocation, not pooled
   */
  constructor (readonly maxSpareBytes = 96 * MiB, readonly minBytes = MiB) {}

  /** A zero-offset view of exactly `bytes` bytes (contents undefined: the caller overwrites all of it). */
  take (bytes: number): Uint8Array {
    if (bytes < this.minBytes) return new Uint8Array(bytes)
    let best = -1
    for (let i = 0; i < this.spare.length; i++) {
      const b = this.spare[i] as ArrayBuffer
      if (b.byteLength >= bytes && (best < 0 || b.byteLength < (this.spare[best] as ArrayBuffer).byteLength)) best = i
    }
    let buffer: ArrayBuffer
    if (best >= 0) {
      buffer = this.spare.splice(best, 1)[0] as ArrayBuffer
      this.spareBytes -= buffer.byteLength
    } else {
      // round up so that packs of nearby sizes (they grow in 1 MiB steps) share buffers
      buffer = new ArrayBuffer(Math.ceil(bytes / MiB) * MiB)
    }
    this.lent.add(buffer)
    return new Uint8Array(buffer, 0, bytes)
  }

  /** Returns the buffers under `views` that came from take(); any other view is ignored. */
  give (views: Iterable<Uint8Array>): void {
    for (const v of views) {
      const buffer = v.buffer
      if (!(buffer instanceof ArrayBuffer) || !this.lent.delete(buffer)) continue
      if (this.spareBytes + buffer.byteLength > this.maxSpareBytes) continue
      this.spare.push(buffer)
      this.spareBytes += buffer.byteLength
    }
  }

  /** Drops every spare buffer. */
  clear (): void {
    this.spare.length = 0
    this.spareBytes = 0
  }
}
