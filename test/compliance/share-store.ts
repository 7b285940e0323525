/**
 * The ShareStore contract as a reusable mocha suite. Every implementation (local directory, memory,
 * remote peer) runs it: `shareStoreCompliance('local', async () => ({ store, teardown }))`.
 */
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { errnoCode } from '../../src/errors.js'
import { asPackId } from '../../src/ids.js'
import type { PackId } from '../../src/ids.js'
import { equalBytes, toHex } from '../../src/util/bytes.js'
import type { ShareRef, ShareStore } from '../../src/store/index.js'

export interface ShareStoreSetup { store: ShareStore, teardown: () => Promise<void> }

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
export function seededBytes (seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length)
  let x = (seed * 2654435761 + 0x9e3779b9) >>> 0 || 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    out[i] = x & 0xff
  }
  return out
}

export function testPack (n: number): PackId {
  return asPackId(seededBytes(0x5eed0000 + n, 32))
}

export function testRef (n: number, index = 0): ShareRef {
  return { pack: testPack(n), index }
}

export function refKey (ref: ShareRef): string {
  return `${toHex(ref.pack)}.${ref.index}`
}

export async function collect<T> (it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

export async function rejectsWithCode (promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.equal(errnoCode(err), code, `expected ${code}, got ${String(err)}`)
    return true
  })
}

function assertBytes (actual: Uint8Array, expected: Uint8Array, what = 'bytes'): void {
  assert.equal(actual.byteLength, expected.byteLength, `${what}: length`)
  assert.ok(equalBytes(actual, expected), `${what}: content differs`)
}

/** What one implementation does differently: a persister refuses empty shares and records (issue 11, finding 6). */
export interface ComplianceOptions { refusesEmpty?: boolean }

/** shares and bytes of a usage (stores that count records report them too: not compared here) */
async function shareUsage (store: ShareStore): Promise<{ shares: number, bytes: number }> {
  const u = await store.usage()
  return { shares: u.shares, bytes: u.bytes }
}

export function shareStoreCompliance (name: string, setup: () => Promise<ShareStoreSetup>, opts: ComplianceOptions = {}): void {
  describe(`ShareStore compliance: ${name}`, function () {
    this.timeout(30_000)
    let store: ShareStore
    let teardown: () => Promise<void>

    beforeEach(async () => { ({ store, teardown } = await setup()) })
    afterEach(async () => { await teardown() })

    describe('shares', () => {
      it('get returns exactly the bytes put, and has/size agree', async () => {
        const ref = testRef(1, 3)
        const data = seededBytes(1, 1000)
        assert.equal(await store.has(ref), false)
        await store.put(ref, data)
        assertBytes(await store.get(ref), data)
        assert.equal(await store.has(ref), true)
        assert.equal(await store.size(ref), 1000)
      })

      it('an absent share: get, size and getRange fail with ERR_NOT_FOUND, has is false', async () => {
        const ref = testRef(2)
        await store.put(testRef(2, 1), seededBytes(2, 10)) // a sibling must not count
        await rejectsWithCode(store.get(ref), 'ERR_NOT_FOUND')
        await rejectsWithCode(store.size(ref), 'ERR_NOT_FOUND')
        await rejectsWithCode(store.getRange(ref, 0, 0), 'ERR_NOT_FOUND')
        assert.equal(await store.has(ref), false)
      })

      it('shares of one pack with other indexes, and of other packs, are independent', async () => {
        const refs = [testRef(3, 0), testRef(3, 1), testRef(4, 0)]
        for (const [i, ref] of refs.entries()) await store.put(ref, seededBytes(30 + i, 100 + i))
        await store.delete(refs[0] as ShareRef)
        assert.equal(await store.has(refs[0] as ShareRef), false)
        for (const [i, ref] of refs.entries()) {
          if (i === 0) continue
          assertBytes(await store.get(ref), seededBytes(30 + i, 100 + i), `share ${i}`)
        }
      })

      it('indexes 0 and 255 are valid', async () => {
        await store.put(testRef(5, 0), seededBytes(50, 5))
        await store.put(testRef(5, 255), seededBytes(51, 5))
        assertBytes(await store.get(testRef(5, 255)), seededBytes(51, 5))
        assertBytes(await store.get(testRef(5, 0)), seededBytes(50, 5))
      })

      it('putting an existing share again with identical bytes succeeds and keeps one copy', async () => {
        const ref = testRef(6, 7)
        const data = seededBytes(6, 4096)
        await store.put(ref, data)
        await store.put(ref, data)
        assertBytes(await store.get(ref), data)
        assert.deepEqual((await collect(store.list())).map(refKey), [refKey(ref)])
        assert.deepEqual(await shareUsage(store), { shares: 1, bytes: 4096 })
      })

      it('concurrent puts of the same share leave one intact copy', async () => {
        const ref = testRef(7, 1)
        const data = seededBytes(7, 300_000)
        await Promise.all(Array.from({ length: 10 }, async () => { await store.put(ref, data) }))
        assertBytes(await store.get(ref), data)
        assert.equal((await collect(store.list())).length, 1)
      })

      it('parallel puts of 50 shares all land intact', async () => {
        const items = Array.from({ length: 50 }, (_, i) => ({ ref: testRef(100 + i, i % 7), data: seededBytes(100 + i, 1 + i * 1311) }))
        await Promise.all(items.map(async ({ ref, data }) => { await store.put(ref, data) }))
        const listed = (await collect(store.list())).map(refKey).sort()
        assert.deepEqual(listed, items.map(({ ref }) => refKey(ref)).sort())
        for (const { ref, data } of items) assertBytes(await store.get(ref), data, refKey(ref))
      })

      for (const tc of [
        { name: 'empty', offset: 0, length: 0 },
        { name: 'whole share', offset: 0, length: 5000 },
        { name: 'middle', offset: 1234, length: 100 },
        { name: 'last byte', offset: 4999, length: 1 },
        { name: 'empty at the end', offset: 5000, length: 0 }
      ]) {
        it(`getRange returns the requested slice: ${tc.name}`, async () => {
          const data = seededBytes(8, 5000)
          await store.put(testRef(8), data)
          assertBytes(await store.getRange(testRef(8), tc.offset, tc.length), data.subarray(tc.offset, tc.offset + tc.length))
        })
      }

      it('getRange outside the share, or with malformed numbers, fails with ERR_FORMAT', async () => {
        await store.put(testRef(9), seededBytes(9, 100))
        for (const [offset, length] of [[100, 1], [0, 101], [99, 2], [-1, 1], [0, -1], [1.5, 1], [0, Number.NaN]] as const) {
          await rejectsWithCode(store.getRange(testRef(9), offset, length), 'ERR_FORMAT')
        }
      })

      it('delete removes the share; deleting an absent share succeeds', async () => {
        const ref = testRef(10, 2)
        await store.put(ref, seededBytes(10, 64))
        await store.delete(ref)
        assert.equal(await store.has(ref), false)
        await rejectsWithCode(store.get(ref), 'ERR_NOT_FOUND')
        assert.deepEqual(await collect(store.list()), [])
        await store.delete(ref)
        await store.delete(testRef(11, 9))
      })

      it('list yields every share exactly once, and nothing for an empty store', async () => {
        assert.deepEqual(await collect(store.list()), [])
        const refs: ShareRef[] = []
        for (let n = 0; n < 6; n++) for (const index of [0, 1, 128, 255]) refs.push(testRef(20 + n, index))
        for (const ref of refs) await store.put(ref, seededBytes(ref.index, 3))
        const listed = await collect(store.list())
        for (const ref of listed) assert.equal(ref.pack.byteLength, 32)
        assert.deepEqual(listed.map(refKey).sort(), refs.map(refKey).sort())
      })

      it('rejects malformed refs with ERR_FORMAT and stores nothing', async () => {
        const bad: ShareRef[] = [
          { pack: testPack(12), index: 256 },
          { pack: testPack(12), index: -1 },
          { pack: testPack(12), index: 1.5 },
          { pack: testPack(12), index: Number.NaN },
          { pack: new Uint8Array(31) as PackId, index: 0 }
        ]
        for (const ref of bad) {
          await rejectsWithCode(store.put(ref, new Uint8Array(1)), 'ERR_FORMAT')
          await rejectsWithCode(store.get(ref), 'ERR_FORMAT')
          await rejectsWithCode(store.has(ref), 'ERR_FORMAT')
          await rejectsWithCode(store.size(ref), 'ERR_FORMAT')
          await rejectsWithCode(store.delete(ref), 'ERR_FORMAT')
        }
        assert.deepEqual(await collect(store.list()), [])
      })

      it("stored bytes never alias the caller's buffers", async () => {
        const ref = testRef(13)
        const data = seededBytes(13, 256)
        const copy = data.slice()
        await store.put(ref, data)
        data.fill(0)
        const got = await store.get(ref)
        assertBytes(got, copy)
        got.fill(1)
        assertBytes(await store.get(ref), copy)
        const buf = Buffer.from(copy) // Buffer#slice does not copy: a classic aliasing trap
        await store.put(testRef(14), buf)
        buf.fill(2)
        assertBytes(await store.get(testRef(14)), copy)
      })

      it('round trips are binary exact for random contents and sizes (property)', async () => {
        await fc.assert(fc.asyncProperty(
          fc.uint8Array({ minLength: opts.refusesEmpty === true ? 1 : 0, maxLength: 70_000 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 1000 }),
          async (data, index, n) => {
            const ref = testRef(1000 + n, index)
            await store.put(ref, data)
            assertBytes(await store.get(ref), data)
            assert.equal(await store.size(ref), data.byteLength)
          }), { seed: 20240611, numRuns: 40 })
      })

      for (const size of [0, 1, 65_537, 5 * 1024 * 1024]) {
        it(`round trip of a ${size}-byte share is binary exact${size === 0 && opts.refusesEmpty === true ? ' (here: refused)' : ''}`, async () => {
          const ref = testRef(15, size % 256)
          const data = seededBytes(size, size)
          if (size === 0 && opts.refusesEmpty === true) {
            await rejectsWithCode(store.put(ref, data), 'ERR_PROTOCOL')
            assert.equal(await store.has(ref), false)
            return
          }
          await store.put(ref, data)
          assertBytes(await store.get(ref), data)
          assert.equal(await store.size(ref), size)
          if (size > 0) assertBytes(await store.getRange(ref, size - 1, 1), data.subarray(size - 1))
        })
      }
    })

    describe('records', () => {
      const rid = (n: number): Uint8Array => seededBytes(0xdeed0000 + n, 32)

      it('putRecord/getRecord/hasRecord/listRecords/deleteRecord round trip', async () => {
        assert.deepEqual(await collect(store.listRecords()), [])
        const ids = [rid(1), rid(2), rid(3)]
        for (const [i, id] of ids.entries()) await store.putRecord(id, seededBytes(i, 200 * i + 1))
        for (const [i, id] of ids.entries()) {
          assert.equal(await store.hasRecord(id), true)
          assertBytes(await store.getRecord(id), seededBytes(i, 200 * i + 1))
        }
        assert.deepEqual((await collect(store.listRecords())).map(toHex).sort(), ids.map(toHex).sort())
        await store.deleteRecord(ids[1] as Uint8Array)
        assert.equal(await store.hasRecord(ids[1] as Uint8Array), false)
        assert.deepEqual((await collect(store.listRecords())).map(toHex).sort(), [ids[0], ids[2]].map((x) => toHex(x as Uint8Array)).sort())
      })

      it('an absent record: getRecord fails with ERR_NOT_FOUND, hasRecord is false, deleteRecord succeeds', async () => {
        await rejectsWithCode(store.getRecord(rid(4)), 'ERR_NOT_FOUND')
        assert.equal(await store.hasRecord(rid(4)), false)
        await store.deleteRecord(rid(4))
      })

      it('putting the same record twice succeeds and keeps one copy', async () => {
        await store.putRecord(rid(5), seededBytes(5, 50))
        await store.putRecord(rid(5), seededBytes(5, 50))
        assertBytes(await store.getRecord(rid(5)), seededBytes(5, 50))
        assert.equal((await collect(store.listRecords())).length, 1)
      })

      it('record ids must be 32 bytes (ERR_FORMAT)', async () => {
        for (const id of [new Uint8Array(31), new Uint8Array(33), new Uint8Array(0)]) {
          await rejectsWithCode(store.putRecord(id, new Uint8Array(1)), 'ERR_FORMAT')
          await rejectsWithCode(store.getRecord(id), 'ERR_FORMAT')
          await rejectsWithCode(store.hasRecord(id), 'ERR_FORMAT')
          await rejectsWithCode(store.deleteRecord(id), 'ERR_FORMAT')
        }
        assert.deepEqual(await collect(store.listRecords()), [])
      })

      it('records and shares are separate namespaces', async () => {
        const pack = testPack(30)
        await store.putRecord(pack, seededBytes(1, 10))
        assert.equal(await store.has({ pack, index: 0 }), false)
        assert.deepEqual(await collect(store.list()), [])
        await store.put({ pack, index: 0 }, seededBytes(2, 10))
        assert.deepEqual((await collect(store.listRecords())).map(toHex), [toHex(pack)])
        assertBytes(await store.getRecord(pack), seededBytes(1, 10))
        await store.deleteRecord(pack)
        assert.equal(await store.has({ pack, index: 0 }), true)
      })
    })

    describe('usage', () => {
      it('counts shares and their bytes, not records, and follows deletes', async () => {
        assert.deepEqual(await shareUsage(store), { shares: 0, bytes: 0 })
        await store.put(testRef(40, 0), seededBytes(1, 1000))
        await store.put(testRef(40, 1), seededBytes(2, 24))
        await store.put(testRef(41, 0), new Uint8Array(1))
        await store.putRecord(seededBytes(3, 32), seededBytes(3, 5000))
        assert.deepEqual(await shareUsage(store), { shares: 3, bytes: 1025 })
        await store.delete(testRef(40, 0))
        assert.deepEqual(await shareUsage(store), { shares: 2, bytes: 25 })
      })
    })

    describe('cancellation and close', () => {
      it('an aborted signal rejects with ERR_ABORTED and stores nothing', async () => {
        const controller = new AbortController()
        controller.abort()
        const { signal } = controller
        await rejectsWithCode(store.put(testRef(50), seededBytes(1, 10), { signal }), 'ERR_ABORTED')
        await rejectsWithCode(store.putRecord(seededBytes(2, 32), seededBytes(1, 10), { signal }), 'ERR_ABORTED')
        await rejectsWithCode(store.get(testRef(50), { signal }), 'ERR_ABORTED')
        await rejectsWithCode(collect(store.list({ signal })), 'ERR_ABORTED')
        assert.equal(await store.has(testRef(50)), false)
        assert.deepEqual(await collect(store.listRecords()), [])
      })

      it('close is idempotent and later operations reject', async () => {
        await store.put(testRef(51), seededBytes(1, 10))
        await store.close()
        await store.close()
        await assert.rejects(store.get(testRef(51)))
        await assert.rejects(store.put(testRef(52), seededBytes(1, 10)))
        await assert.rejects(collect(store.list()))
      })
    })
  })
}
