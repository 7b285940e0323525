/**
 * Worker thread body: compresses blobs off the main thread. Receives the plaintext's buffer and an
 * output buffer (both transferred), compresses into the output and hands both back, so that the
 * pool reuses them for the next blobs.
 */
import { parentPort } from 'node:worker_threads'
import { Compression } from '../format/pack.js'
import { compressInto } from './compress.js'
import type { CompressReply, CompressRequest } from './compress-pool.js'

const port = parentPort
if (port === null) throw new Error('compress-worker must run in a worker thread')

port.on('message', (req: CompressRequest) => {
  let reply: CompressReply
  try {
    const n = compressInto(new Uint8Array(req.src, 0, req.length), new Uint8Array(req.dst), req.level)
    reply = n < 0
      ? { seq: req.seq, compression: Compression.None, src: req.src, dst: req.dst, length: req.length }
      : { seq: req.seq, compression: Compression.Zstd, src: req.src, dst: req.dst, length: n }
  } catch (err: unknown) {
    reply = { seq: req.seq, error: err instanceof Error ? err.message : String(err), src: req.src, dst: req.dst }
  }
  port.postMessage(reply, [req.src, req.dst])
})
