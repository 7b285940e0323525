/**
 * How many bytes of new chunks an insertion costs, over many trials (not part of `npm test`).
 * Each trial: 18 MiB of random data, a gear table from another seed, 1 MiB + 12,345 random bytes
 * inserted at another offset; counts the bytes of chunks whose content was not there before.
 * Run: npx tsx test/unit/chunking/resync.bench.ts [trials] ['{"minSize":…,"avgSize":…,"maxSize":…,"normalization":…}']
 */
import { createHash } from 'node:crypto'
import { chunkLengths, DEFAULT_CHUNKER_PARAMS, FastCdc, type ChunkerParams } from '../../../src/chunking/index.js'
import { prngBytes, testGearTable } from './fixtures.js'

const MiB = 1 << 20
const trials = Number(process.argv[2] ?? 200)
const params = process.argv[3] !== undefined ? JSON.parse(process.argv[3]) as ChunkerParams : DEFAULT_CHUNKER_PARAMS
const original = prngBytes(42, 18 * MiB)
const inserted = prngBytes(43, MiB + 12_345)
const hash = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

const results: number[] = []
let chunks = 0
for (let t = 1; t <= trials; t++) {
  const cdc = new FastCdc(testGearTable(t * 7919), params)
  const at = 4 * MiB + t * 5003
  const modified = Buffer.concat([original.subarray(0, at), inserted, original.subarray(at)])
  const known = new Set<string>()
  let pos = 0
  const oldLengths = chunkLengths(cdc, original)
  chunks += oldLengths.length
  for (const l of oldLengths) { known.add(hash(original.subarray(pos, pos + l))); pos += l }
  let fresh = 0
  pos = 0
  const newLengths = chunkLengths(cdc, modified)
  newLengths.forEach((l, i) => { // the file's last chunk is left out: it is new only because the data ends
    if (i < newLengths.length - 1 && !known.has(hash(modified.subarray(pos, pos + l)))) fresh += l
    pos += l
  })
  results.push(fresh)
}
results.sort((a, b) => a - b)
const mib = (v: number): string => (v / MiB).toFixed(2)
const at = (q: number): number => results[Math.min(results.length - 1, Math.floor(q * results.length))]!
process.stdout.write(`${JSON.stringify(params)} ${trials} trials, mean chunk ${mib(original.length * trials / chunks)} MiB; new MiB: ` +
  `mean ${mib(results.reduce((a, b) => a + b, 0) / trials)} p50 ${mib(at(0.5))} p90 ${mib(at(0.9))} p99 ${mib(at(0.99))} max ${mib(at(1))}; ` +
  `> 5 MiB in ${results.filter((v) => v > 5 * MiB).length} trials\n`)
