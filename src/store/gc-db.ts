/**
 * This device's notes of the garbage collection (docs/gc.md §4): per condemned pack, when this
 * device first saw it condemned (its own clock: the grace period is measured here, never on another
 * device's clock), what it knows of the pack's state, and the ids of the blobs the pack held when
 * it was condemned (what the sweep and a queued delete re-check against the live set). A table of
 * the index (HOME/index); losing it only restarts the grace periods.
 */
import type { Database } from 'lmdb'
import { FormatError } from '../errors.js'
import { ByteReader, ByteWriter } from '../util/bytes.js'

/** 1 condemned, 2 deleted (as in the records); 3 revived: a snapshot uses it again, records must drop it. */
export type GcNoteState = 1 | 2 | 3
/** A note's state once this device revived the pack (1 and 2 are the record states, format/gc-record.ts). */
export const GC_NOTE_REVIVED = 3

export interface GcNote {
  /** ms on this device's clock when it first saw the pack condemned */
  seenMs: number
  state: GcNoteState
  /** concatenated 32-byte ids of the pack's blobs (empty: not known, read the pack's header) */
  blobs: Uint8Array
}

type Bin = Database<Buffer, Buffer>

export class GcDb {
  constructor (private readonly db: Bin) {}

  get (pack: Uint8Array): GcNote | undefined {
    const v = this.db.getBinary(key(pack))
    if (v === undefined) return undefined
    try { return decode(v) } catch { return undefined }
  }

  async put (pack: Uint8Array, note: GcNote): Promise<void> { await this.db.put(key(pack), encode(note)) }

  async delete (pack: Uint8Array): Promise<void> { await this.db.remove(key(pack)) }

  * entries (): Iterable<{ pack: Uint8Array, note: GcNote }> {
    for (const { key: k, value } of this.db.getRange({})) {
      let note: GcNote
      try { note = decode(value) } catch { continue }
      yield { pack: Uint8Array.from(k), note }
    }
  }

  async clear (): Promise<void> { await this.db.clearAsync() }
}

function key (id: Uint8Array): Buffer { return Buffer.from(id.buffer, id.byteOffset, id.byteLength) }

function encode (n: GcNote): Buffer {
  return Buffer.from(new ByteWriter(16 + n.blobs.byteLength).u8(1).uvarint(n.seenMs).u8(n.state).bytes(n.blobs).finish())
}

function decode (b: Uint8Array): GcNote {
  const r = new ByteReader(b, 'gc note')
  if (r.u8() !== 1) throw new FormatError('gc note: unknown version')
  const seenMs = r.uvarint()
  const state = r.u8()
  if (state < 1 || state > 3) throw new FormatError('gc note: unknown state')
  const blobs = r.bytes().slice()
  r.end()
  if (blobs.byteLength % 32 !== 0) throw new FormatError('gc note: blob ids are not whole')
  return { seenMs, state: state as GcNoteState, blobs }
}
