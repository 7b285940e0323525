/**
 * Writes test/vectors/chunking.json: cut lengths for fixed gear tables and fixed data.
 * Run once with `npx tsx test/vectors/generate-chunking.ts`; test/unit/chunking/vectors.spec.ts checks it.
 * Inputs are described, not stored: gear tables and data come from xorshift32 (docs/format/chunking.md
 * §Test vectors), and their SHA-256 is recorded so another implementation can check its generator first.
 */
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { chunkLengths, DEFAULT_CHUNKER_PARAMS, FastCdc, type ChunkerParams } from '../../src/chunking/index.js'
import { buildVectorData, testGearTable, type DataPart } from '../unit/chunking/fixtures.js'

export interface ChunkingVectorCase {
  name: string
  params: ChunkerParams
  gearSeed: number
  data: DataPart[]
  dataLength: number
  dataSha256: string
  lengths: number[]
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const gearSha256 = (seed: number): string => {
  const bytes = new Uint8Array(1024)
  const view = new DataView(bytes.buffer)
  testGearTable(seed).forEach((v, i) => { view.setUint32(4 * i, v, true) })
  return sha256(bytes)
}

const KiB = 1024
const MiB = 1024 * KiB
const small = (normalization: number): ChunkerParams => ({ minSize: 256, avgSize: 1024, maxSize: 4096, normalization })
const smallData: DataPart[] = [{ prng: 4, length: 64 * KiB }, { fill: 0, length: 10_000 }, { prng: 5, length: 20_001 }]

const specs: Array<Omit<ChunkingVectorCase, 'dataLength' | 'dataSha256' | 'lengths'>> = [
  {
    name: 'default parameters; random, a 6 MiB zero run (max-size cuts), random tail',
    params: { ...DEFAULT_CHUNKER_PARAMS },
    gearSeed: 1,
    data: [{ prng: 2, length: 10 * MiB }, { fill: 0, length: 6 * MiB }, { prng: 3, length: 2 * MiB + 12_345 }]
  },
  ...[0, 1, 2, 3].map((nc) => ({ name: `small parameters, normalization ${nc}`, params: small(nc), gearSeed: 6, data: smallData })),
  {
    name: 'sizes that are not powers of two, another gear table',
    params: { minSize: 1000, avgSize: 4096, maxSize: 10_000, normalization: 1 },
    gearSeed: 7,
    data: [{ prng: 8, length: 200 * KiB + 3 }, { fill: 0xa5, length: 25_000 }, { prng: 9, length: 999 }]
  }
]

const cases: ChunkingVectorCase[] = specs.map((c) => {
  const data = buildVectorData(c.data)
  return { ...c, dataLength: data.length, dataSha256: sha256(data), lengths: chunkLengths(new FastCdc(testGearTable(c.gearSeed), c.params), data) }
})
const gearSeeds = [...new Set(cases.map((c) => c.gearSeed))]

const out = {
  description: 'FastCDC cut lengths (docs/format/chunking.md). Gear table for seed s: 256 successive xorshift32 outputs from state s. ' +
    'Data: concatenated parts; {prng: s, length: n} is n bytes of successive xorshift32 outputs from state s, each written little-endian ' +
    '(a final partial word keeps its low bytes); {fill: b, length: n} is n copies of byte b.',
  gearTables: Object.fromEntries(gearSeeds.map((s) => [String(s), {
    first4: Array.from(testGearTable(s).subarray(0, 4)),
    sha256OfLittleEndianBytes: gearSha256(s)
  }])),
  cases
}
const path = new URL('./chunking.json', import.meta.url)
writeFileSync(path, JSON.stringify(out, null, 2) + '\n')
