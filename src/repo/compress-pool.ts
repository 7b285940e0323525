/**
 * A small pool of worker threads that compress blobs, so zstd (the costliest stage of the backup
 * pipeline) runs beside chunking and hashing on the main thread. Workers start on first use and are
 * stopped by close().
 *
 * The buffers a blob travels in (a copy of the plaintext, and the output zstd writes) go to the
 * worker and come back with the answer; the caller releases them once it has copied the result
 * (Compressed.release), and the next blobs reuse them. Fresh buffers per blob were garbage that each
 * isolate let pile up until its external memory forced a collection (docs/benchmarks.md, "Where a
 * publisher's memory goes").
 */
import { Worker } from 'node:worker_threads'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { Compression } from '../format/pack.js'
import { reapplyV8Flags } from '../util/v8-flags.js'
import { compressedBound, type Compressed } from './compress.js'

/**
 * One message to a worker: the plaintexts of one or more blobs in `src` (item i at its offset), and
 * `dst` with room for compressedBound of each, in order. Small blobs travel many to a message (a
 * batch): a message costs far more than compressing a small blob.
 */
export interface CompressRequest { seq: number, src: ArrayBuffer, dst: ArrayBuffer, items: Array<{ offset: number, length: number }>, level: number }
/**
 * Both buffers come back; item i's result is `length` bytes at `offset` of `dst` (zstd) or of `src`
 * (none: its plaintext, as it was sent).
 */
export type CompressReply =
  | { seq: number, src: ArrayBuffer, dst: ArrayBuffer, results: Array<{ compression: Compression, offset: number, length: number }>, error?: undefined }
  | { seq: number, error: string, src: ArrayBuffer, dst: ArrayBuffer }

interface Job { resolve: Array<(c: Compressed) => void>, reject: Array<(e: Error) => void>, worker: Slot }

/** Small blobs gathered for one message: a plaintext buffer filled in order, and the callers waiting. */
interface Batch { src: ArrayBuffer, items: Array<{ offset: number, length: number }>, used: number, resolve: Array<(c: Compressed) => void>, reject: Array<(e: Error) => void> }

const KiB = 1024
/** Pooled buffers are rounded up to this, so that blobs of nearby sizes share them. */
const BUFFER_STEP = 256 * KiB
/**
 * Spare buffers kept at most, in bytes: about the working set of two jobs of chunks up to 4 MiB
 * (24 MiB measured 8–15 MiB more peak RSS in a scale-1 backup, as fast: docs/benchmarks.md).
 */
export const MAX_SPARE_BYTES = 16 * 1024 * KiB
/** A batch of small blobs is sent once it holds this many plaintext bytes... */
export const BATCH_BYTES = 256 * KiB
/** ...or this many blobs. */
export const BATCH_BLOBS = 64

/** Spare ArrayBuffers, taken by size (the smallest that fits) and given back after use. */
export class BufferShelf {
  private readonly spare: ArrayBuffer[] = []
  private spareBytes = 0
  constructor (readonly maxSpareBytes = MAX_SPARE_BYTES) {}

  take (bytes: number): ArrayBuffer {
    let best = -1
    for (let i = 0; i < this.spare.length; i++) {
      const b = this.spare[i] as ArrayBuffer
      if (b.byteLength >= bytes && (best < 0 || b.byteLength < (this.spare[best] as ArrayBuffer).byteLength)) best = i
    }
    if (best < 0) return new ArrayBuffer(Math.ceil(bytes / BUFFER_STEP) * BUFFER_STEP)
    const buffer = this.spare.splice(best, 1)[0] as ArrayBuffer
    this.spareBytes -= buffer.byteLength
    return buffer
  }

  give (buffer: ArrayBuffer): void {
    // a detached buffer (transferred away) has no bytes; one over the cap is left to the GC
    if (buffer.byteLength === 0 || this.spareBytes + buffer.byteLength > this.maxSpareBytes) return
    this.spare.push(buffer)
    this.spareBytes += buffer.byteLength
  }

  /** bytes held spare now */
  get bytes (): number { return this.spareBytes }

  clear (): void {
    this.spare.length = 0
    this.spareBytes = 0
  }
}
interface Slot { worker: Worker, busy: number }

// Under tsx (tests) this module is TypeScript and the worker needs tsx too; compiled, it is JavaScript.
const SELF = import.meta.url
const FROM_SOURCE = SELF.endsWith('.ts')
const WORKER_URL = new URL(FROM_SOURCE ? './compress-worker.ts' : './compress-worker.js', SELF)

function startWorker (): Worker {
  const worker = FROM_SOURCE ? startFromSource() : new Worker(WORKER_URL)
  // a worker's start puts V8's flags back as they were at start-up (util/v8-flags.ts)
  worker.once('online', reapplyV8Flags)
  return worker
}

function startFromSource (): Worker {
  // Node 20 workers do not inherit tsx's loader: register it inside the worker, then load the module
  const api = JSON.stringify(pathToFileURL(createRequire(SELF).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href)
  return new Worker(`import(${api}).then(a => { a.register(); return import(${JSON.stringify(WORKER_URL.href)}) })`, { eval: true })
}

export class CompressPool {
  private readonly slots: Slot[] = []
  private readonly jobs = new Map<number, Job>()
  private seq = 0
  private closed = false
  private readonly shelf = new BufferShelf()
  private batch: Batch | undefined
  /** messages sent to the workers so far */
  messages = 0

  /** @param smallBytes blobs below this size travel in batches (compressSmall) */
  constructor (private readonly size: number, private readonly level: number, private readonly smallBytes = 64 * KiB) {}

  /**
   * Compresses a copy of `data` (the caller may reuse `data` at once). The result lives in pooled
   * buffers: call its `release()` once its bytes are copied, and do not touch them after.
   */
  async compress (data: Uint8Array): Promise<Compressed> {
    if (this.closed) throw new Error('compress pool is closed')
    const src = this.shelf.take(data.byteLength)
    new Uint8Array(src, 0, data.byteLength).set(data)
    return await new Promise<Compressed>((resolve, reject) => {
      this.post(src, [{ offset: 0, length: data.byteLength }], [resolve], [reject])
    })
  }

  /**
   * As {@link compress}, for a blob smaller than `smallBytes`: it waits in a batch with the next small
   * blobs, sent when the batch is full or at {@link flushBatch}. Whoever waits for the result must
   * call flushBatch first, or it may wait for ever.
   */
  async compressSmall (data: Uint8Array): Promise<Compressed> {
    if (this.closed) throw new Error('compress pool is closed')
    if (data.byteLength >= this.smallBytes) return await this.compress(data)
    let b = this.batch
    if (b !== undefined && b.used + data.byteLength > b.src.byteLength) { this.flushBatch(); b = undefined }
    if (b === undefined) {
      b = { src: this.shelf.take(BATCH_BYTES + this.smallBytes), items: [], used: 0, resolve: [], reject: [] }
      this.batch = b
    }
    const batch = b
    new Uint8Array(batch.src, batch.used, data.byteLength).set(data)
    batch.items.push({ offset: batch.used, length: data.byteLength })
    batch.used += data.byteLength
    const result = new Promise<Compressed>((resolve, reject) => { batch.resolve.push(resolve); batch.reject.push(reject) })
    if (batch.used >= BATCH_BYTES || batch.items.length >= BATCH_BLOBS) this.flushBatch()
    return await result
  }

  /** Sends the open batch of small blobs now (nothing when there is none). */
  flushBatch (): void {
    const b = this.batch
    this.batch = undefined
    if (b === undefined || b.items.length === 0) return
    this.post(b.src, b.items, b.resolve, b.reject)
  }

  /** Messages sent and not answered. */
  get posted (): number { return this.jobs.size }

  /** Messages sent and not answered, and the open batch if it holds a blob: what the caller bounds. */
  get inFlight (): number { return this.jobs.size + (this.batch !== undefined && this.batch.items.length > 0 ? 1 : 0) }

  /** bytes of spare buffers the pool holds now */
  get spareBytes (): number { return this.shelf.bytes }

  private post (src: ArrayBuffer, items: Array<{ offset: number, length: number }>, resolve: Job['resolve'], reject: Job['reject']): void {
    const slot = this.pick()
    const seq = this.seq++
    const dst = this.shelf.take(items.reduce((n, it) => n + compressedBound(it.length), 0))
    this.jobs.set(seq, { resolve, reject, worker: slot })
    this.messages++
    slot.busy++
    const req: CompressRequest = { seq, src, dst, items, level: this.level }
    slot.worker.postMessage(req, [src, dst])
  }

  private pick (): Slot {
    if (this.slots.length < this.size) {
      const worker = startWorker()
      worker.unref()
      const slot: Slot = { worker, busy: 0 }
      worker.on('message', (reply: CompressReply) => this.onReply(reply))
      worker.on('error', (err: Error) => this.failAll(slot, err))
      worker.on('exit', code => { if (!this.closed) this.failAll(slot, new Error(`compression worker exited with code ${code}`)) })
      this.slots.push(slot)
      return slot
    }
    return this.slots.reduce((a, b) => (b.busy < a.busy ? b : a))
  }

  private onReply (reply: CompressReply): void {
    const job = this.jobs.get(reply.seq)
    if (job === undefined) return
    this.jobs.delete(reply.seq)
    job.worker.busy--
    const { src, dst } = reply
    if (reply.error !== undefined) {
      this.shelf.give(src)
      this.shelf.give(dst)
      for (const reject of job.reject) reject(new Error(`compression failed: ${reply.error}`))
      return
    }
    // the buffers go back once every blob of the message is released
    let held = reply.results.length
    reply.results.forEach((r, i) => {
      let released = false
      const release = (): void => {
        if (released) return
        released = true
        if (--held > 0) return
        this.shelf.give(src)
        this.shelf.give(dst)
      }
      const data = new Uint8Array(r.compression === Compression.None ? src : dst, r.offset, r.length)
      job.resolve[i]?.({ compression: r.compression, data, release })
    })
  }

  private failAll (slot: Slot, err: Error): void {
    for (const [seq, job] of this.jobs) {
      if (job.worker !== slot) continue
      this.jobs.delete(seq)
      for (const reject of job.reject) reject(err)
    }
  }

  async close (): Promise<void> {
    this.closed = true
    const b = this.batch
    this.batch = undefined
    for (const reject of b?.reject ?? []) reject(new Error('compress pool is closed'))
    await Promise.all(this.slots.map(async s => await s.worker.terminate()))
    this.slots.length = 0
    this.shelf.clear()
  }
}
