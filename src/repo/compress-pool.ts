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

/** `src` holds the plaintext in its first `length` bytes; `dst` has room for compressedBound(length). */
export interface CompressRequest { seq: number, src: ArrayBuffer, dst: ArrayBuffer, length: number, level: number }
/** Both buffers come back; the result is the first `length` bytes of `dst` (zstd) or of `src` (none). */
export type CompressReply =
  | { seq: number, compression: Compression, src: ArrayBuffer, dst: ArrayBuffer, length: number, error?: undefined }
  | { seq: number, error: string, src: ArrayBuffer, dst: ArrayBuffer }

interface Job { resolve: (c: Compressed) => void, reject: (e: Error) => void, worker: Slot }

const KiB = 1024
/** Pooled buffers are rounded up to this, so that blobs of nearby sizes share them. */
const BUFFER_STEP = 256 * KiB
/**
 * Spare buffers kept at most, in bytes: about the working set of two jobs of chunks up to 4 MiB
 * (24 MiB measured 8–15 MiB more peak RSS in a scale-1 backup, as fast: docs/benchmarks.md).
 */
export const MAX_SPARE_BYTES = 16 * 1024 * KiB

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

  constructor (private readonly size: number, private readonly level: number) {}

  /**
   * Compresses a copy of `data` (the caller may reuse `data` at once). The result lives in pooled
   * buffers: call its `release()` once its bytes are copied, and do not touch them after.
   */
  async compress (data: Uint8Array): Promise<Compressed> {
    if (this.closed) throw new Error('compress pool is closed')
    const slot = this.pick()
    const seq = this.seq++
    const src = this.shelf.take(data.byteLength)
    new Uint8Array(src, 0, data.byteLength).set(data)
    const dst = this.shelf.take(compressedBound(data.byteLength))
    return await new Promise<Compressed>((resolve, reject) => {
      this.jobs.set(seq, { resolve, reject, worker: slot })
      slot.busy++
      const req: CompressRequest = { seq, src, dst, length: data.byteLength, level: this.level }
      slot.worker.postMessage(req, [src, dst])
    })
  }

  /** bytes of spare buffers the pool holds now */
  get spareBytes (): number { return this.shelf.bytes }

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
      job.reject(new Error(`compression failed: ${reply.error}`))
      return
    }
    let released = false
    const release = (): void => {
      if (released) return
      released = true
      this.shelf.give(src)
      this.shelf.give(dst)
    }
    const data = new Uint8Array(reply.compression === Compression.None ? src : dst, 0, reply.length)
    job.resolve({ compression: reply.compression, data, release })
  }

  private failAll (slot: Slot, err: Error): void {
    for (const [seq, job] of this.jobs) {
      if (job.worker !== slot) continue
      this.jobs.delete(seq)
      job.reject(err)
    }
  }

  async close (): Promise<void> {
    this.closed = true
    await Promise.all(this.slots.map(async s => await s.worker.terminate()))
    this.slots.length = 0
    this.shelf.clear()
  }
}
