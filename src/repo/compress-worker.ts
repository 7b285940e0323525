/**
 * Worker thread body: compresses blobs off the main thread. Receives the plaintext's ArrayBuffer
 * (transferred), answers with the compressed bytes, or hands the plaintext back when compression
 * does not pay.
 */
import { parentPort } from 'node:worker_threads'
import { compressBlob } from './compress.js'
import type { CompressReply, CompressRequest } from './compress-pool.js'

const port = parentPort
if (port === null) throw new Error('compress-worker must run in a worker thread')

port.on('message', (req: CompressRequest) => {
  try {
    const plain = new Uint8Array(req.buffer, 0, req.length)
    const { compression, data } = compressBlob(plain, req.level)
    if (data === plain) {
      const reply: CompressReply = { seq: req.seq, compression, buffer: req.buffer, length: req.length }
      port.postMessage(reply, [req.buffer])
    } else {
      // copy into a fresh V8-owned ArrayBuffer: the binding's output is native-backed memory whose
      // transfer does not carry its contents (measured: same length, different bytes)
      const out = new Uint8Array(data).buffer
      const reply: CompressReply = { seq: req.seq, compression, buffer: out, length: data.byteLength }
      port.postMessage(reply, [out])
    }
  } catch (err: unknown) {
    port.postMessage({ seq: req.seq, error: err instanceof Error ? err.message : String(err) })
  }
})
