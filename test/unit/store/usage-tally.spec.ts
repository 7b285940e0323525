import assert from 'node:assert/strict'
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LocalShareStore } from '../../../src/store/index.js'
import { RECOUNT_MS } from '../../../src/store/usage-tally.js'
import { toHex } from '../../../src/util/bytes.js'
import { seededBytes, testRef } from '../../compliance/share-store.js'
import { Rng } from '../../helpers/seeded.js'

/** What a store that walks its folder now reports: the truth the kept count must match. */
async function walked (dir: string): Promise<unknown> {
  const fresh = await LocalShareStore.open(dir)
  try { return await fresh.usage() } finally { await fresh.close() }
}

describe('LocalShareStore usage count', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'p2pbak-usage-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  for (const seed of [1, 2, 3]) {
    it(`is kept by every kind of write and delete, equal to a walk of the folder (seed ${seed})`, async () => {
      const rng = new Rng(seed)
      const store = await LocalShareStore.open(dir)
      await store.put(testRef(999), seededBytes(1, 10)) // something to count before the first walk
      assert.deepEqual(await store.usage(), { shares: 1, bytes: 10, records: 0, recordBytes: 0 })
      for (let step = 0; step < 300; step++) {
        const ref = testRef(rng.int(0, 12), rng.int(0, 3))
        const id = seededBytes(500 + rng.int(0, 6), 32)
        const size = 1 + rng.int(0, 3000)
        switch (rng.int(0, 7)) {
          case 0: await store.put(ref, seededBytes(step, size)); break // new or a replace of another size
          case 1: await store.putParts(ref, [seededBytes(step, size), seededBytes(step + 1, rng.int(0, 500))]); break
          case 2: {
            const w = await store.beginShare(ref)
            await w.append(seededBytes(step, size))
            if (rng.int(0, 4) === 0) await w.abort(); else await w.commit()
            break
          }
          case 3: await store.delete(ref); break // absent ones too
          case 4: await store.putRecord(id, seededBytes(step, size)); break
          case 5: await store.deleteRecord(id); break
          default: assert.deepEqual(await store.usage(), await walked(dir), `step ${step}`)
        }
      }
      assert.deepEqual(await store.usage(), await walked(dir))
      await store.close()
    })
  }

  it('counts two writes of one object at once as one object', async () => {
    const store = await LocalShareStore.open(dir)
    assert.equal((await store.usage()).shares, 0)
    for (let i = 0; i < 20; i++) {
      await Promise.all([store.put(testRef(i), seededBytes(i, 5000)), store.put(testRef(i), seededBytes(i, 5000)), store.putParts(testRef(i), [seededBytes(i, 5000)])])
      await Promise.all([store.putRecord(seededBytes(i, 32), seededBytes(i, 70)), store.putRecord(seededBytes(i, 32), seededBytes(i, 70))])
    }
    await Promise.all([store.delete(testRef(3)), store.delete(testRef(3)), store.deleteRecord(seededBytes(4, 32)), store.deleteRecord(seededBytes(4, 32))])
    assert.deepEqual(await store.usage(), await walked(dir))
    assert.deepEqual(await store.usage(), { shares: 19, bytes: 19 * 5000, records: 19, recordBytes: 19 * 70 })
    await store.close()
  })

  it('counts the writes and deletes made while it walks the folder', async () => {
    const setup = await LocalShareStore.open(dir)
    for (let i = 0; i < 400; i++) await setup.put(testRef(i), seededBytes(i, 100 + i))
    await setup.close()
    for (const round of [0, 1, 2]) {
      let now = 0
      const store = await LocalShareStore.open(dir, { now: () => now })
      if (round > 0) { await store.usage(); now += RECOUNT_MS } // a count to be walked again, not the first
      const walking = store.usage()
      await Promise.all([
        ...Array.from({ length: 60 }, async (_, i) => { await store.put(testRef(1000 + round * 100 + i), seededBytes(i, 300)) }),
        ...Array.from({ length: 30 }, async (_, i) => { await store.delete(testRef(round * 100 + i)) }),
        ...Array.from({ length: 10 }, async (_, i) => { await store.putRecord(seededBytes(round * 100 + i, 32), seededBytes(i, 40)) })
      ])
      await walking
      assert.deepEqual(await store.usage(), await walked(dir), `round ${round}`)
      await store.close()
    }
  })

  it('walks the folder again once the count is RECOUNT_MS old, so changes made by hand are seen then', async () => {
    let now = 0
    const store = await LocalShareStore.open(dir, { now: () => now })
    const ref = testRef(1)
    await store.put(ref, seededBytes(1, 100))
    await store.put(testRef(2), seededBytes(2, 50))
    assert.deepEqual(await store.usage(), { shares: 2, bytes: 150, records: 0, recordBytes: 0 })
    // a share lost behind the store's back (a disk error, a folder cleaned by hand)
    const hex = toHex(ref.pack)
    await unlink(join(dir, 'shares', hex.slice(0, 2), `${hex}.0`))
    now += RECOUNT_MS - 1
    assert.equal((await store.usage()).shares, 2, 'the count is not walked again before RECOUNT_MS')
    now += 1
    assert.deepEqual(await store.usage(), { shares: 1, bytes: 50, records: 0, recordBytes: 0 })
    await store.close()
  })

  it('counts again at once when a write finds its folder gone', async () => {
    const store = await LocalShareStore.open(dir)
    await store.putRecord(seededBytes(7, 32), seededBytes(8, 20))
    assert.deepEqual(await store.usage(), { shares: 0, bytes: 0, records: 1, recordBytes: 20 })
    await rm(join(dir, 'records'), { recursive: true })
    await store.putRecord(seededBytes(9, 32), seededBytes(8, 30))
    assert.deepEqual(await store.usage(), { shares: 0, bytes: 0, records: 1, recordBytes: 30 })
    await store.close()
  })

  it('does not count files that are not shares or records', async () => {
    const store = await LocalShareStore.open(dir)
    await store.put(testRef(3), seededBytes(3, 40))
    await writeFile(join(dir, 'shares', 'notes.txt'), 'x')
    await writeFile(join(dir, 'records', 'README'), 'x')
    assert.deepEqual(await store.usage(), { shares: 1, bytes: 40, records: 0, recordBytes: 0 })
    await store.close()
  })
})
