/**
 * The persister's unfinished `putPart` uploads (docs/protocols/shard.md §5.3): a share that arrives
 * in parts is assembled in memory, part after part, and handed to the store only when complete, so a
 * store never holds a partial share. Bounded: at most `maxBytes` staged (least recently touched
 * uploads are dropped first) and an upload untouched for `idleMs` is dropped; a client whose upload
 * was dropped is told how much the server has (0) and starts over. A retried part of a share already
 * stored is answered by the server from the store itself (it holds the share whole), never from a
 * memory of past uploads: a share the disk lost since (a wiped folder) must be stored again.
 */
import { DEFAULT_MAX_STAGED_BYTES, STAGED_IDLE_MS } from './constants.js'

/**
 * The parts received so far, kept as they came (no copy into one share-sized buffer: the store
 * writes them with one gathered write); `have` bytes in all.
 */
interface Upload { total: number, parts: Uint8Array[], have: number, touched: number }

/** What a part did: the bytes received so far, or the offset the server expected instead. */
export type PartOutcome =
  | { kind: 'partial', have: number }
  | { kind: 'complete', parts: Uint8Array[] }
  | { kind: 'mismatch', have: number }

export class Staging {
  private readonly uploads = new Map<string, Upload>()
  private bytes = 0

  constructor (private readonly now: () => number, private readonly maxBytes = DEFAULT_MAX_STAGED_BYTES, private readonly idleMs = STAGED_IDLE_MS) {}

  /**
   * Takes the part [offset, offset + data.length) of the share `key` of `total` bytes. Keeps a
   * reference to `data` (its bytes must not change) until the upload completes or is dropped.
   */
  accept (key: string, total: number, offset: number, data: Uint8Array): PartOutcome {
    const now = this.now()
    this.expire(now)
    let up = this.uploads.get(key)
    if (up !== undefined && up.total !== total) { this.drop(key); up = undefined }
    if (up === undefined) {
      if (offset !== 0) return { kind: 'mismatch', have: 0 }
      this.makeRoom(total)
      up = { total, parts: [], have: 0, touched: now }
      this.uploads.set(key, up)
      this.bytes += total
    }
    // a part may repeat what arrived (a retry whose answer was lost: only its new bytes are
    // taken), never leave a gap
    if (offset > up.have) return { kind: 'mismatch', have: up.have }
    const end = offset + data.byteLength
    if (end > up.have) {
      up.parts.push(offset === up.have ? data : data.subarray(up.have - offset))
      up.have = end
    }
    up.touched = now
    // most recently touched last: the map's order is the eviction order
    this.uploads.delete(key)
    this.uploads.set(key, up)
    if (up.have < total) return { kind: 'partial', have: up.have }
    this.drop(key)
    return { kind: 'complete', parts: up.parts }
  }

  /** Forgets the unfinished upload of `key` (its share was deleted). */
  forget (key: string): void {
    this.drop(key)
  }

  /** Forgets an upload (its share failed to store, or it was evicted). */
  drop (key: string): void {
    const up = this.uploads.get(key)
    if (up === undefined) return
    this.uploads.delete(key)
    this.bytes -= up.total
  }

  get stagedBytes (): number { return this.bytes }

  private makeRoom (add: number): void {
    for (const key of this.uploads.keys()) {
      if (this.bytes + add <= this.maxBytes) return
      this.drop(key)
    }
  }

  private expire (now: number): void {
    for (const [key, up] of this.uploads) if (now - up.touched > this.idleMs) this.drop(key)
  }
}
