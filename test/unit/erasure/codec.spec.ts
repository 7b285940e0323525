import assert from 'node:assert/strict'
import { createCipheriv } from 'node:crypto'
import fc from 'fast-check'
import { InvalidArgumentError, NotEnoughSharesError } from '../../../src/errors.js'
import { decodeShards, encodeShards, MAX_K, MAX_M, rebuildShards, shardSize, type ErasureParams } from '../../../src/erasure/index.js'

const FC = { seed: 20240611, numRuns: 120 }

const arbParams: fc.Arbitrary<ErasureParams> = fc.record({ k: fc.integer({ min: 1, max: MAX_K }), m: fc.integer({ min: 0, max: MAX_M }) })

/** Params, data, and a random set of exactly k share indexes out of n (shuffled). */
const arbCase = arbParams.chain((p) => fc.record({
  p: fc.constant(p),
  data: fc.uint8Array({ minLength: 0, maxLength: 3000 }),
  pick: fc.shuffledSubarray(Array.from({ length: p.k + p.m }, (_, i) => i), { minLength: p.k, maxLength: p.k })
}))

const pickMap = (shards: readonly Uint8Array[], indexes: readonly number[]): Map<number, Uint8Array> =>
  new Map(indexes.map((i) => [i, shards[i] as Uint8Array]))

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(b)

function pseudoRandom (length: number, seed: number): Uint8Array {
  return new Uint8Array(createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16)).update(Buffer.alloc(length)))
}

const rejectsWith = async (p: Promise<unknown>, cls: new (...args: never[]) => Error, text?: RegExp): Promise<void> => {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`)
    if (text !== undefined) assert.match(err.message, text)
    return true
  })
}

describe('erasure/shardSize', () => {
  it('is ceil(len / k) rounded up to a multiple of 8, at least 8', () => {
    const table: Array<[number, number, number]> = [
      [0, 1, 8], [0, 24, 8], [1, 1, 8], [8, 1, 8], [9, 1, 16], [16, 2, 8], [17, 2, 16],
      [24, 3, 8], [25, 3, 16], [1000, 4, 256], [1001, 4, 256], [1025, 4, 264], [16 << 20, 8, 2 << 20]
    ]
    for (const [len, k, size] of table) assert.equal(shardSize(len, k), size, `shardSize(${len}, ${k})`)
  })

  it('k shards always hold the data, with less than 8·k bytes to spare', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1 << 30 }), fc.integer({ min: 1, max: MAX_K }), (len, k) => {
      const s = shardSize(len, k)
      assert.equal(s % 8, 0)
      assert.ok(s * k >= len && (s === 8 || s * k - len < 8 * k))
    }), FC)
  })

  it('refuses a negative or fractional length and k outside 1..24', () => {
    for (const [len, k] of [[-1, 1], [1.5, 1], [10, 0], [10, 25], [10, 2.5]] as const) {
      assert.throws(() => shardSize(len, k), InvalidArgumentError)
    }
  })
})

describe('erasure/encodeShards + decodeShards', () => {
  it('any k of the n shards give back exactly the original data', async () => {
    await fc.assert(fc.asyncProperty(arbCase, async ({ p, data, pick }) => {
      const shards = await encodeShards(data, p)
      assert.equal(shards.length, p.k + p.m)
      for (const s of shards) assert.equal(s.byteLength, shardSize(data.byteLength, p.k))
      const out = await decodeShards(pickMap(shards, pick), p, data.byteLength)
      assert.ok(same(out, data))
    }), FC)
  })

  it('shards 0..k-1 are the data, zero padded (systematic)', async () => {
    await fc.assert(fc.asyncProperty(arbParams, fc.uint8Array({ maxLength: 2000 }), async (p, data) => {
      const shards = await encodeShards(data, p)
      const size = shardSize(data.byteLength, p.k)
      const padded = new Uint8Array(size * p.k)
      padded.set(data)
      for (let i = 0; i < p.k; i++) assert.ok(same(shards[i]!, padded.subarray(i * size, (i + 1) * size)))
    }), FC)
  })

  it('every (k, m) decodes from the parity-heaviest choice of k shares and from all but the first data shards', async () => {
    for (let k = 1; k <= MAX_K; k++) {
      for (let m = 0; m <= MAX_M; m++) {
        const p = { k, m }
        const data = pseudoRandom(37 * k + 5 + m, k * 8 + m)
        const shards = await encodeShards(data, p)
        const n = k + m
        // all m parity shares and the last k - m data shares (only parity when k <= m)
        const parityHeavy = Array.from({ length: k }, (_, i) => n - 1 - i)
        assert.ok(same(await decodeShards(pickMap(shards, parityHeavy), p, data.byteLength), data), `${k}+${m} parity-heavy`)
        const lastK = Array.from({ length: k }, (_, i) => n - k + i)
        assert.ok(same(await decodeShards(pickMap(shards, lastK), p, data.byteLength), data), `${k}+${m} last k`)
      }
    }
  })

  it('handles empty and 1-byte data, and m = 0', async () => {
    for (const data of [new Uint8Array(0), Uint8Array.of(0xa5)]) {
      for (const p of [{ k: 1, m: 0 }, { k: 3, m: 0 }, { k: 3, m: 2 }, { k: 24, m: 6 }, { k: 1, m: 6 }]) {
        const shards = await encodeShards(data, p)
        assert.equal(shards.length, p.k + p.m)
        for (const s of shards) assert.equal(s.byteLength, 8)
        const out = await decodeShards(pickMap(shards, Array.from({ length: p.k }, (_, i) => p.m + i)), p, data.byteLength)
        assert.ok(same(out, data))
      }
    }
    const p = { k: 4, m: 0 }
    const data = pseudoRandom(100, 1)
    const shards = await encodeShards(data, p)
    assert.ok(same(await decodeShards(pickMap(shards, [3, 1, 0, 2]), p, 100), data))
    await rejectsWith(decodeShards(pickMap(shards, [0, 1, 2]), p, 100), NotEnoughSharesError, /only 3 of the 4/)
  })

  it('fewer than k shares -> NotEnoughSharesError naming how many were available', async () => {
    await fc.assert(fc.asyncProperty(arbCase, fc.nat(), async ({ p, data, pick }, drop) => {
      const shards = await encodeShards(data, p)
      const fewer = pick.slice(0, drop % p.k)
      await rejectsWith(decodeShards(pickMap(shards, fewer), p, data.byteLength), NotEnoughSharesError, new RegExp(`only ${fewer.length} of the ${p.k} `))
    }), { ...FC, numRuns: 40 })
  })

  it('a 16 MiB pack survives the loss of m data shards (8+4, 4+2)', async () => {
    const data = pseudoRandom(16 << 20, 3)
    for (const p of [{ k: 8, m: 4 }, { k: 4, m: 2 }]) {
      const shards = await encodeShards(data, p)
      const out = await decodeShards(pickMap(shards, Array.from({ length: p.k }, (_, i) => p.m + i)), p, data.byteLength)
      assert.ok(same(out, data))
    }
  })

  it('is deterministic, runs concurrently, and neither keeps nor changes the caller\'s buffers', async () => {
    const cases = Array.from({ length: 24 }, (_, i) => ({ p: { k: (i % MAX_K) + 1, m: i % (MAX_M + 1) }, data: pseudoRandom(5000 + i, i) }))
    const first = await Promise.all(cases.map(async (c) => await encodeShards(c.data, c.p)))
    const again = await Promise.all(cases.map(async (c) => await encodeShards(c.data, c.p)))
    first.forEach((shards, i) => shards.forEach((s, j) => assert.ok(same(s, again[i]![j]!))))
    const c = cases[11]! // 12+4
    const before = first[11]!.map((s) => Uint8Array.from(s))
    const input = pickMap(first[11]!, [15, 14, 13, 12, 0, 1, 2, 3, 4, 5, 6, 7])
    const out = await decodeShards(input, c.p, c.data.byteLength)
    assert.ok(same(out, c.data))
    first[11]!.forEach((s, j) => assert.ok(same(s, before[j]!), `share ${j} unchanged`))
    c.data.fill(0)
    assert.ok(same(first[11]![0]!, before[0]!), 'shards do not alias the input data')
  })
})

describe('erasure/rebuildShards', () => {
  it('reproduces exactly the missing shards from any k others', async () => {
    await fc.assert(fc.asyncProperty(arbCase, fc.nat(), async ({ p, data, pick }, seed) => {
      const shards = await encodeShards(data, p)
      const n = p.k + p.m
      const lost = Array.from({ length: n }, (_, i) => i).filter((i) => !pick.includes(i))
      const want = [...lost.filter((_, i) => (seed >> (i % 30)) & 1), pick[0]!] // some lost ones and one we have
      const rebuilt = await rebuildShards(pickMap(shards, pick), p, want)
      assert.deepEqual([...rebuilt.keys()].sort((a, b) => a - b), [...new Set(want)].sort((a, b) => a - b))
      for (const [i, s] of rebuilt) assert.ok(same(s, shards[i]!), `share ${i}`)
    }), FC)
  })

  it('rebuilds all n shards of every (k, m) from the k parity-heaviest', async () => {
    for (let k = 1; k <= MAX_K; k += 3) {
      for (let m = 1; m <= MAX_M; m++) {
        const p = { k, m }
        const shards = await encodeShards(pseudoRandom(64 * k + 8, k + 10 * m), p)
        const have = Array.from({ length: k }, (_, i) => k + m - 1 - i)
        const rebuilt = await rebuildShards(pickMap(shards, have), p, Array.from({ length: k + m }, (_, i) => i))
        for (let i = 0; i < k + m; i++) assert.ok(same(rebuilt.get(i)!, shards[i]!), `${k}+${m} share ${i}`)
      }
    }
  })

  it('refuses fewer than k shards, a wanted index out of range and shards of mixed sizes', async () => {
    const p = { k: 3, m: 2 }
    const shards = await encodeShards(pseudoRandom(300, 9), p)
    await rejectsWith(rebuildShards(pickMap(shards, [0, 4]), p, [1]), NotEnoughSharesError, /only 2 of the 3/)
    await rejectsWith(rebuildShards(new Map(), p, [1]), NotEnoughSharesError, /only 0 of the 3/)
    await rejectsWith(rebuildShards(pickMap(shards, [0, 1, 2]), p, [5]), InvalidArgumentError)
    const mixed = pickMap(shards, [0, 1, 2])
    mixed.set(3, new Uint8Array(shards[3]!.byteLength + 8))
    await rejectsWith(rebuildShards(mixed, p, [4]), InvalidArgumentError, /share 3 is/)
    await rejectsWith(rebuildShards(new Map([[0, new Uint8Array(12)], [1, new Uint8Array(12)], [2, new Uint8Array(12)]]), p, [4]), InvalidArgumentError)
  })
})

describe('erasure: argument errors', () => {
  it('refuses k, m outside the limits, wrong shard sizes and indexes', async () => {
    const data = pseudoRandom(100, 4)
    for (const p of [{ k: 0, m: 1 }, { k: 25, m: 1 }, { k: 4, m: 7 }, { k: 4, m: -1 }, { k: 2.5, m: 1 }]) {
      await rejectsWith(encodeShards(data, p), InvalidArgumentError)
    }
    const p = { k: 4, m: 2 }
    const shards = await encodeShards(data, p)
    const wrongSize = pickMap(shards, [0, 1, 2, 3])
    wrongSize.set(1, shards[1]!.subarray(0, 8))
    await rejectsWith(decodeShards(wrongSize, p, 100), InvalidArgumentError, /share 1 is 8 bytes, expected 32/)
    await rejectsWith(decodeShards(pickMap(shards, [0, 1, 2, 3]), p, 1000), InvalidArgumentError, /expected 256/)
    const badIndex = pickMap(shards, [0, 1, 2])
    badIndex.set(6, shards[5]!)
    await rejectsWith(decodeShards(badIndex, p, 100), InvalidArgumentError, /outside 0..5/)
  })
})
