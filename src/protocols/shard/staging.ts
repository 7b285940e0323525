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

interface Upload { buf: Uint8Array, have: number, touched: number }

/** What a part did: the bytes received so far, or the offset the server expected instead. */
export type PartOutcome =
  | { kind: 'partial', have: number }
  | { kind: 'complete', data: Uint8Array }
  | { kind: 'mismatch', have: number }

export class Staging {
  private readonly uploads = new Map<string, Upload>()
  private bytes = 0

  constructor (private readonly now: () => number, private readonly maxBytes = DEFAULT_MAX_STAGED_BYTES, private readonly idleMs = STAGED_IDLE_MS) {}

  /** Takes the part [offset, offset + data.length) of the share `key` of `total` bytes. */
  accept (key: string, total: number, offset: number, data: Uint8Array): PartOutcome {
    const now = this.now()
    this.expire(now)
    let up = this.uploads.get(key)
    if (up !== undefined && up.buf.byteLength !== total) { this.drop(key); up = undefined }
    if (up === undefined) {
      if (offset !== 0) return { kind: 'mismatch', have: 0 }
      this.makeRoom(total)
      up = { buf: new Uint8Array(total), have: 0, touched: now }
      this.uploads.set(key, up)
      this.bytes += total
    }
    // a part may repeat what arrived (a retry whose answer was lost), never leave a gap
    if (offset > up.have) return { kind: 'mismatch', have: up.have }
    up.buf.set(data, offset)
    up.have = Math.max(up.have, offset + data.byteLength)
    up.touched = now
    // most recently touched last: the map's order is the eviction order
    this.uploads.delete(key)
    this.uploads.set(key, up)
    if (up.have < total) return { kind: 'partial', have: up.have }
    this.drop(key)
    return { kind: 'complete', data: up.buf }
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
    this.bytes -= up.buf.byteLength
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
