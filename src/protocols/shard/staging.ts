/**
 * The persister's unfinished `putPart` uploads (docs/protocols/shard.md §5.3): a share that arrives
 * in parts is assembled part after part and handed to the store only when complete, so a store never
 * holds a partial share. Where the store can take the parts as they come ({@link ShareStore.beginShare}:
 * a temporary file beside the share's final name), they go to disk at once and memory holds one part
 * per upload; otherwise they are kept in memory until the last one. Bounded: at most `maxBytes` staged
 * (least recently touched uploads are dropped first) and an upload untouched for `idleMs` is dropped; a
 * client whose upload was dropped is told how much the server has (0) and starts over. A retried part
 * of a share already stored is answered by the server from the store itself (it holds the share
 * whole), never from a memory of past uploads: a share the disk lost since (a wiped folder) must be
 * stored again.
 */
import type { ShareWriter } from '../../store/index.js'
import { errorMessage } from '../../errors.js'
import { DEFAULT_MAX_STAGED_BYTES, STAGED_IDLE_MS, TRANSFER_PART_BYTES } from './constants.js'
import { dropFront, partBytesOf, type PartBytes } from './wire.js'

/**
 * Uploads on disk at once, all members together: each holds a file descriptor until it completes or
 * is dropped, so tiny uploads by the thousand must not exhaust the daemon's descriptors. Uploads
 * beyond it, and uploads of shares smaller than a part, are staged in memory.
 */
export const MAX_DISK_UPLOADS = 64
/** What an upload counts against the bound at least, however small its share (bounds their number). */
export const MIN_STAGED_CHARGE = 64 * 1024

/** What a complete upload hands over: the parts as they came, or the store's writer that holds them. */
export type Staged = { parts: Uint8Array[] } | { writer: ShareWriter }

/**
 * One unfinished upload, `have` bytes of `total` so far. In memory: the parts as they came (no copy
 * into one share-sized buffer). On disk: the store's writer, and the chain of its writes (opening it,
 * then each part in order), which every part's answer waits for.
 */
interface Upload {
  total: number
  /** what it counts against the bound: its total, at least MIN_STAGED_CHARGE */
  charge: number
  have: number
  touched: number
  parts?: Uint8Array[]
  writer?: ShareWriter
  writes?: Promise<void>
}

/** What a part did: the bytes received so far, or the offset the server expected instead. */
export type PartOutcome =
  | { kind: 'partial', have: number }
  | { kind: 'complete', staged: Staged }
  | { kind: 'mismatch', have: number }

export class Staging {
  private readonly uploads = new Map<string, Upload>()
  private bytes = 0
  private onDisk = 0
  /** set by clear(): the server stopped, and nothing more goes to disk */
  private closed = false

  /**
   * `log` is told of an abandoned upload whose temporary file could not be removed (a later open of
   * the store removes it).
   */
  constructor (
    private readonly now: () => number,
    private readonly maxBytes = DEFAULT_MAX_STAGED_BYTES,
    private readonly idleMs = STAGED_IDLE_MS,
    private readonly log: (message: string) => void = () => {}
  ) {}

  /**
   * Takes the part [offset, offset + data.length) of the share `key` of `total` bytes. `begin`, when
   * given, opens the store's writer for a new upload, which then goes to disk; without it the upload
   * keeps a reference to `data` (its bytes must not change) until it completes or is dropped. Rejects
   * when the upload's disk write failed (the upload is then dropped: the client starts over).
   */
  async accept (key: string, total: number, offset: number, part: Uint8Array | PartBytes, begin?: () => Promise<ShareWriter>): Promise<PartOutcome> {
    const data = part instanceof Uint8Array ? partBytesOf(part) : part
    const now = this.now()
    this.expire(now)
    let up = this.uploads.get(key)
    if (up !== undefined && up.total !== total) { this.drop(key); up = undefined }
    if (up === undefined) {
      if (offset !== 0) return { kind: 'mismatch', have: 0 }
      const charge = Math.max(total, MIN_STAGED_CHARGE)
      this.makeRoom(charge)
      up = { total, charge, have: 0, touched: now }
      if (begin === undefined || this.closed || total < TRANSFER_PART_BYTES || this.onDisk >= MAX_DISK_UPLOADS) up.parts = []
      else {
        const u = up
        u.writes = begin().then((w) => { u.writer = w })
        this.onDisk++
      }
      this.uploads.set(key, up)
      this.bytes += charge
    }
    // a part may repeat what arrived (a retry whose answer was lost: only its new bytes are
    // taken), never leave a gap
    if (offset > up.have) return { kind: 'mismatch', have: up.have }
    const end = offset + data.byteLength
    if (end > up.have) {
      const fresh = dropFront(data, up.have - offset).chunks
      if (up.parts !== undefined) for (const c of fresh) up.parts.push(c)
      else {
        const u = up
        // written in order, after the opening and every earlier part; `have` counts it already, so a
        // part that arrives meanwhile is judged against it (and waits for it below)
        u.writes = (u.writes ?? Promise.resolve()).then(async () => { await (u.writer as ShareWriter).append(fresh) })
      }
      up.have = end
    }
    up.touched = now
    // most recently touched last: the map's order is the eviction order
    this.uploads.delete(key)
    this.uploads.set(key, up)
    const have = up.have
    const done = have >= total
    if (done) this.forgetUpload(key, up)
    try {
      await up.writes
    } catch (err: unknown) {
      if (this.uploads.get(key) === up) this.forgetUpload(key, up)
      this.discard(up)
      throw err
    }
    if (!done) return { kind: 'partial', have }
    if (up.parts !== undefined) return { kind: 'complete', staged: { parts: up.parts } }
    return { kind: 'complete', staged: { writer: up.writer as ShareWriter } }
  }

  /** Forgets the unfinished upload of `key` (its share was deleted). */
  forget (key: string): void {
    this.drop(key)
  }

  /** Forgets an upload (its share failed to store, or it was evicted), and its temporary file. */
  drop (key: string): void {
    const up = this.uploads.get(key)
    if (up === undefined) return
    this.forgetUpload(key, up)
    this.discard(up)
  }

  /** Drops every unfinished upload (the server stops); later uploads stay in memory. */
  clear (): void {
    this.closed = true
    for (const key of [...this.uploads.keys()]) this.drop(key)
  }

  /** Drops the uploads untouched for longer than the idle limit (also run on a timer by the server). */
  sweep (): void {
    this.expire(this.now())
  }

  get stagedBytes (): number { return this.bytes }

  private forgetUpload (key: string, up: Upload): void {
    this.uploads.delete(key)
    this.bytes -= up.charge
    if (up.writes !== undefined) this.onDisk--
  }

  /** Removes an upload's temporary file once its writes are done (or failed). */
  private discard (up: Upload): void {
    if (up.writes === undefined) return
    const abort = async (): Promise<void> => { await up.writer?.abort() }
    up.writes.then(abort, abort).catch((err: unknown) => {
      this.log(`an abandoned upload's temporary file was not removed (the store removes it when next opened): ${errorMessage(err)}`)
    })
  }

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
