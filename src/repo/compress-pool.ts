/**
 * A small pool of worker threads that compress blobs, so zstd (the costliest stage of the backup
 * pipeline) runs beside chunking and hashing on the main thread. Workers start on first use and are
 * stopped by close().
 */
import { Worker } from 'node:worker_threads'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import type { Compression } from '../format/pack.js'
import type { Compressed } from './compress.js'

export interface CompressRequest { seq: number, buffer: ArrayBuffer, length: number, level: number }
export type CompressReply =
  | { seq: number, compression: Compression, buffer: ArrayBuffer, length: number, error?: undefined }
  | { seq: number, error: string }

interface Job { resolve: (c: Compressed) => void, reject: (e: Error) => void, worker: Slot }
interface Slot { worker: Worker, busy: number }

// Under tsx (tests) this module is TypeScript and the worker needs tsx too; compiled, it is JavaScript.
const SELF = import.meta.url
const FROM_SOURCE = SELF.endsWith('.ts')
const WORKER_URL = new URL(FROM_SOURCE ? './compress-worker.ts' : './compress-worker.js', SELF)

function startWorker (): Worker {
  if (!FROM_SOURCE) return new Worker(WORKER_URL)
  // Node 20 workers do not inherit tsx's loader: register it inside the worker, then load the module
  const api = JSON.stringify(pathToFileURL(createRequire(SELF).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href)
  return new Worker(`import(${api}).then(a => { a.register(); return import(${JSON.stringify(WORKER_URL.href)}) })`, { eval: true })
}

export class CompressPool {
  private readonly slots: Slot[] = []
  private readonly jobs = new Map<number, Job>()
  private seq = 0
  private closed = false

  constructor (private readonly size: number, private readonly level: number) {}

  /** Compresses `data`, whose ArrayBuffer is transferred to a worker: the caller must not use it again. */
  async compress (data: Uint8Array): Promise<Compressed> {
    if (this.closed) throw new Error('compress pool is closed')
    const slot = this.pick()
    const seq = this.seq++
    // transfer the caller's buffer only when it is exactly this data (never a Buffer pool slab);
    // otherwise copy: note Buffer#slice would be a view, so copy with the Uint8Array constructor
    const whole = !Buffer.isBuffer(data) && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer
    const buffer = whole ? data.buffer as ArrayBuffer : new Uint8Array(data).buffer
    return await new Promise<Compressed>((resolve, reject) => {
      this.jobs.set(seq, { resolve, reject, worker: slot })
      slot.busy++
      const req: CompressRequest = { seq, buffer, length: data.byteLength, level: this.level }
      slot.worker.postMessage(req, [buffer])
    })
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
    if (reply.error !== undefined) job.reject(new Error(`compression failed: ${reply.error}`))
    else job.resolve({ compression: reply.compression, data: new Uint8Array(reply.buffer, 0, reply.length) })
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
  }
}
