/**
 * An in-memory {@link ShareStore} for tests and simulations. It copies bytes on the way in and out,
 * so callers can never alias stored data, and offers fault-injection helpers ({@link corrupt},
 * {@link remove}) that bypass the contract the way a failing disk or a misbehaving peer would.
 */
import { NotFoundError, FormatError } from '../errors.js'
import { asPackId, shortId } from '../ids.js'
import { fromHex, toHex } from '../util/bytes.js'
import {
  checkRange, checkRecordId, checkShareRef, shareRefName, throwIfAborted
} from './share-store.js'
import type { AbortOptions, ShareRef, ShareStore, StoreUsage } from './share-store.js'

function parseKey (key: string): ShareRef {
  const dot = key.indexOf('.')
  return { pack: asPackId(fromHex(key.slice(0, dot))), index: Number(key.slice(dot + 1)) }
}

export class MemoryShareStore implements ShareStore {
  readonly id: string
  private readonly shares = new Map<string, Uint8Array>()
  private readonly records = new Map<string, Uint8Array>()
  private closed = false

  /** @param id defaults to `memory:<random>`, distinct per instance */
  constructor (id?: string) {
    this.id = id ?? `memory:${Math.floor(Math.random() * 0x1_0000_0000).toString(16).padStart(8, '0')}`
  }

  private check (options?: AbortOptions): void {
    if (this.closed) throw new Error(`share store ${this.id} is closed`)
    throwIfAborted(options)
  }

  private notFound (ref: ShareRef): NotFoundError {
    return new NotFoundError(`share ${shortId(ref.pack)}.${ref.index} is not in ${this.id}`)
  }

  private stored (ref: ShareRef): Uint8Array {
    const data = this.shares.get(shareRefName(ref))
    if (data === undefined) throw this.notFound(ref)
    return data
  }

  async put (ref: ShareRef, data: Uint8Array, options?: AbortOptions): Promise<void> {
    checkShareRef(ref)
    this.check(options)
    this.shares.set(shareRefName(ref), new Uint8Array(data)) // copies; Buffer#slice would not
  }

  async get (ref: ShareRef, options?: AbortOptions): Promise<Uint8Array> {
    checkShareRef(ref)
    this.check(options)
    return this.stored(ref).slice()
  }

  async getRange (ref: ShareRef, offset: number, length: number, options?: AbortOptions): Promise<Uint8Array> {
    checkShareRef(ref)
    this.check(options)
    const data = this.stored(ref)
    checkRange(offset, length, data.byteLength)
    return data.slice(offset, offset + length)
  }

  async has (ref: ShareRef, options?: AbortOptions): Promise<boolean> {
    checkShareRef(ref)
    this.check(options)
    return this.shares.has(shareRefName(ref))
  }

  async size (ref: ShareRef, options?: AbortOptions): Promise<number> {
    checkShareRef(ref)
    this.check(options)
    return this.stored(ref).byteLength
  }

  async delete (ref: ShareRef, options?: AbortOptions): Promise<void> {
    checkShareRef(ref)
    this.check(options)
    this.shares.delete(shareRefName(ref))
  }

  async * list (options?: AbortOptions): AsyncGenerator<ShareRef> {
    this.check(options)
    for (const key of [...this.shares.keys()]) {
      this.check(options)
      if (this.shares.has(key)) yield parseKey(key)
    }
  }

  async putRecord (id: Uint8Array, data: Uint8Array, options?: AbortOptions): Promise<void> {
    checkRecordId(id)
    this.check(options)
    this.records.set(toHex(id), new Uint8Array(data))
  }

  async getRecord (id: Uint8Array, options?: AbortOptions): Promise<Uint8Array> {
    checkRecordId(id)
    this.check(options)
    const data = this.records.get(toHex(id))
    if (data === undefined) throw new NotFoundError(`record ${shortId(id)} is not in ${this.id}`)
    return data.slice()
  }

  async hasRecord (id: Uint8Array, options?: AbortOptions): Promise<boolean> {
    checkRecordId(id)
    this.check(options)
    return this.records.has(toHex(id))
  }

  async deleteRecord (id: Uint8Array, options?: AbortOptions): Promise<void> {
    checkRecordId(id)
    this.check(options)
    this.records.delete(toHex(id))
  }

  async * listRecords (options?: AbortOptions): AsyncGenerator<Uint8Array> {
    this.check(options)
    for (const key of [...this.records.keys()]) {
      this.check(options)
      if (this.records.has(key)) yield fromHex(key)
    }
  }

  async usage (options?: AbortOptions): Promise<StoreUsage> {
    this.check(options)
    let bytes = 0
    for (const data of this.shares.values()) bytes += data.byteLength
    return { shares: this.shares.size, bytes }
  }

  async close (): Promise<void> {
    this.closed = true
  }

  /**
   * Test helper: flips every bit of one stored byte, as silent disk corruption would.
   * NotFoundError if the share is absent; FormatError if `byteOffset` is outside it.
   */
  corrupt (ref: ShareRef, byteOffset: number): void {
    checkShareRef(ref)
    const data = this.stored(ref)
    if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset >= data.byteLength) {
      throw new FormatError(`byte offset ${byteOffset} is outside the share's ${data.byteLength} bytes`)
    }
    data[byteOffset] = (data[byteOffset] as number) ^ 0xff
  }

  /** Test helper: loses a share without going through {@link delete} (absent is fine). */
  remove (ref: ShareRef): void {
    checkShareRef(ref)
    this.shares.delete(shareRefName(ref))
  }
}
