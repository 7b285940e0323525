/**
 * Chunker throughput on 256 MiB of random data (not part of `npm test`).
 * Run: npx tsx test/unit/chunking/throughput.bench.ts
 * Prints MB per CPU-second (median of 5) for chunkLengths and for StreamChunker fed 1 MiB pieces.
 */
import { createCipheriv } from 'node:crypto'
import { chunkLengths, DEFAULT_CHUNKER_PARAMS, FastCdc, StreamChunker, type ChunkerParams } from '../../../src/chunking/index.js'
import { testGearTable } from './fixtures.js'

const SIZE = 256 * 1024 * 1024
const data = new Uint8Array(createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16)).update(Buffer.alloc(SIZE)))

function mbPerCpuSecond (run: () => void): string {
  const rates: number[] = []
  for (let i = 0; i < 5; i++) {
    const t0 = process.cpuUsage()
    run()
    const t = process.cpuUsage(t0)
    rates.push(SIZE / 1e6 / ((t.user + t.system) / 1e6))
  }
  rates.sort((a, b) => a - b)
  return `${rates[2]!.toFixed(0)} MB/CPU-s (${rates[0]!.toFixed(0)}–${rates[4]!.toFixed(0)})`
}

const settings: Array<[string, ChunkerParams]> = [
  ['default', DEFAULT_CHUNKER_PARAMS],
  ['every byte hashed (min 64)', { minSize: 64, avgSize: 512 * 1024, maxSize: 4 << 20, normalization: 0 }],
  ['DEPENDENCIES §6.3 (16K/64K/256K, NC2)', { minSize: 16 << 10, avgSize: 64 << 10, maxSize: 256 << 10, normalization: 2 }]
]
for (const [name, params] of settings) {
  const cdc = new FastCdc(testGearTable(1), params)
  let n = 0
  const whole = mbPerCpuSecond(() => { n = chunkLengths(cdc, data).length })
  const stream = mbPerCpuSecond(() => {
    const sc = new StreamChunker(cdc)
    for (let off = 0; off < SIZE; off += 1 << 20) sc.push(data.subarray(off, off + (1 << 20)))
    sc.finish()
  })
  process.stdout.write(`${name}: ${n} chunks, mean ${(SIZE / n / 1024).toFixed(0)} KiB; chunkLengths ${whole}; StreamChunker(1 MiB pieces) ${stream}\n`)
}
