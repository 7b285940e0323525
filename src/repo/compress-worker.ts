/**
 * Worker thread body: compresses blobs off the main thread. Receives a buffer of one or more
 * plaintexts and an output buffer (both transferred), compresses each into its place in the output
 * and hands both back, so that the pool reuses them for the next blobs.
 */
import { parentPort } from 'node:worker_threads'
import { Compression } from '../format/pack.js'
import { compressedBound, compressInto } from './compress.js'
import type { CompressReply, CompressRequest } from './compress-pool.js'

const port = parentPort
if (port === null) throw new Error('compress-worker must run in a worker thread')

port.on('message', (req: CompressRequest) => {
  let reply: CompressReply
  try {
    const results: Array<{ compression: Compression, offset: number, length: number }> = []
    let at = 0
    for (const item of req.items) {
      const bound = compressedBound(item.length)
      const n = compressInto(new Uint8Array(req.src, item.offset, item.length), new Uint8Array(req.dst, at, bound), req.level)
      results.push(n < 0 ? { compression: Compression.None, offset: item.offset, length: item.length } : { compression: Compression.Zstd, offset: at, length: n })
      at += bound
    }
    reply = { seq: req.seq, src: req.src, dst: req.dst, results }
  } catch (err: unknown) {
    reply = { seq: req.seq, error: err instanceof Error ? err.message : String(err), src: req.src, dst: req.dst }
  }
  port.postMessage(reply, [req.src, req.dst])
})
