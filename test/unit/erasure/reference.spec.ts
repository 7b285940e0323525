/**
 * docs/placement-and-repair.md §2 is enough to write a compatible encoder: the reference written from
 * it (reference-codec.ts, which reads Appendix A out of the document) gives the addon's bytes.
 */
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { encodeShards, MAX_K, MAX_M } from '../../../src/erasure/index.js'
import { paramsFromDoc, referenceParity } from './reference-codec.js'

const table = paramsFromDoc()
const paramsOf = (k: number, m: number): ReturnType<typeof table.get> & object => {
  const p = table.get(`${k}+${m}`)
  assert.ok(p !== undefined, `Appendix A has no row for ${k}+${m}`)
  return p
}

async function check (k: number, m: number, data: Uint8Array): Promise<void> {
  const shards = await encodeShards(data, { k, m })
  const parity = referenceParity(shards.slice(0, k), m, paramsOf(k, m))
  parity.forEach((s, r) => assert.ok(Buffer.from(s).equals(shards[k + r]!), `${k}+${m}, ${data.byteLength} bytes: parity ${r} differs`))
}

describe('erasure: the spec in docs/placement-and-repair.md §2', () => {
  it('Appendix A lists every (k, m) with w in {2, 4, 8} and k + m <= 2^w', () => {
    assert.equal(table.size, MAX_K * MAX_M)
    for (const [km, p] of table) {
      const [k, m] = km.split('+').map(Number) as [number, number]
      assert.ok([2, 4, 8].includes(p.w) && k + m <= 1 << p.w, km)
      assert.equal(p.x === -1, m <= 2, km)
    }
  })

  it('every (k, m) on small shards', async () => {
    for (let k = 1; k <= MAX_K; k++) {
      for (let m = 1; m <= MAX_M; m++) {
        const data = Uint8Array.from({ length: 8 * 8 * k - 3 }, (_, i) => (Math.imul(i + k * 31 + m, 2654435761) >>> 24))
        await check(k, m, data)
      }
    }
  })

  it('random data, random (k, m), random sizes', async () => {
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 1, max: MAX_K }), fc.integer({ min: 1, max: MAX_M }), fc.uint8Array({ maxLength: 4096 }),
      async (k, m, data) => { await check(k, m, data) }
    ), { seed: 7071, numRuns: 60 })
  })

  it('large shards, where the packet size is halved (and where an odd packet size stops it)', async () => {
    // 24+6 (w = 8): S = 49152, s = 6144 -> 3072 (193 · 6144 > 1 MiB); 8+4 (w = 4): S = 262144, s = 65536 -> 16384;
    // 16+4 (w = 8): S = 125000, s = 15625 is odd, so it stays.
    const cases: Array<[number, number, number]> = [[24, 6, 24 * 49152], [8, 4, 8 * 262144 - 40], [16, 4, 2_000_000]]
    for (const [k, m, len] of cases) {
      await check(k, m, Uint8Array.from({ length: len }, (_, i) => Math.imul(i, 2654435761) >>> 24))
    }
  })
})
