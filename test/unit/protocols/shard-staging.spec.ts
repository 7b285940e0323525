/** The persister's unfinished putPart uploads (src/protocols/shard/staging.ts): order, repeats, bounds, disk. */
import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Staging, type PartOutcome } from '../../../src/protocols/shard/staging.js'
import { LocalShareStore, type ShareWriter } from '../../../src/store/index.js'
import { testRef } from '../../compliance/share-store.js'

const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill)

/** The bytes of a complete upload, whichever way it was staged. */
async function contents (out: PartOutcome): Promise<number[]> {
  assert.equal(out.kind, 'complete')
  if (out.kind !== 'complete') return []
  if ('writer' in out.staged) return [...await out.staged.writer.read()]
  return out.staged.parts.flatMap(p => [...p])
}

describe('protocols/shard staging', () => {
  it('assembles parts in order, takes repeats, refuses gaps with what it has', async () => {
    const s = new Staging(() => 0)
    assert.deepEqual(await s.accept('k', 10, 4, bytes(3, 1)), { kind: 'mismatch', have: 0 })
    assert.deepEqual(await s.accept('k', 10, 0, bytes(4, 1)), { kind: 'partial', have: 4 })
    assert.deepEqual(await s.accept('k', 10, 0, bytes(4, 1)), { kind: 'partial', have: 4 }) // a retried part
    assert.deepEqual(await s.accept('k', 10, 8, bytes(2, 3)), { kind: 'mismatch', have: 4 })
    assert.deepEqual(await s.accept('k', 10, 4, bytes(4, 2)), { kind: 'partial', have: 8 })
    assert.deepEqual(await contents(await s.accept('k', 10, 8, bytes(2, 3))), [1, 1, 1, 1, 2, 2, 2, 2, 3, 3])
    assert.equal(s.stagedBytes, 0)
    // no memory of completed uploads (the server answers a retried part from the store, which holds
    // the share whole): a new upload starts afresh, and a forgotten one is gone
    assert.deepEqual(await s.accept('k', 10, 8, bytes(2, 3)), { kind: 'mismatch', have: 0 })
    assert.deepEqual(await s.accept('k', 10, 0, bytes(4, 9)), { kind: 'partial', have: 4 })
    s.forget('k')
    assert.deepEqual(await s.accept('k', 10, 4, bytes(2, 3)), { kind: 'mismatch', have: 0 })
  })

  it('keeps the parts as they came, and only the new bytes of a part that overlaps what it has', async () => {
    const s = new Staging(() => 0)
    const first = bytes(4, 1)
    await s.accept('k', 10, 0, first)
    await s.accept('k', 10, 2, Uint8Array.from([7, 7, 2, 2])) // repeats bytes 2..3 (with other bytes: nothing changes), adds 4..5
    const last = await s.accept('k', 10, 6, bytes(4, 3))
    assert.equal(last.kind === 'complete' && 'parts' in last.staged ? last.staged.parts[0] : undefined, first) // not copied
    assert.deepEqual(await contents(last), [1, 1, 1, 1, 2, 2, 3, 3, 3, 3])
  })

  it('is bounded: least recently touched uploads go first, idle ones expire', async () => {
    let t = 0
    const s = new Staging(() => t, 25, 1000)
    await s.accept('a', 10, 0, bytes(1, 1))
    await s.accept('b', 10, 0, bytes(1, 1))
    await s.accept('a', 10, 1, bytes(1, 1)) // a is now the most recent
    await s.accept('c', 10, 0, bytes(1, 1)) // 30 > 25: b goes
    assert.equal(s.stagedBytes, 20)
    assert.deepEqual(await s.accept('b', 10, 1, bytes(1, 1)), { kind: 'mismatch', have: 0 })
    t = 5000
    assert.deepEqual(await s.accept('a', 10, 2, bytes(1, 1)), { kind: 'mismatch', have: 0 })
    assert.equal(s.stagedBytes, 0)
  })

  describe('on disk, through the store\'s writer', () => {
    let dir: string
    let store: LocalShareStore
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'p2pbak-staging-'))
      store = await LocalShareStore.open(dir)
    })
    afterEach(async () => {
      await store.close()
      await rm(dir, { recursive: true, force: true })
    })

    /** Temporary files in the store (unfinished uploads). */
    const temps = async (): Promise<string[]> => (await readdir(dir, { recursive: true })).filter(n => n.includes('.tmp-'))

    it('writes each part as it comes, keeps none of them, and hands over the writer that holds them', async () => {
      const s = new Staging(() => 0)
      const ref = testRef(1, 0)
      const begin = async (): Promise<ShareWriter> => await store.beginShare(ref)
      const first = bytes(4, 1)
      assert.deepEqual(await s.accept('k', 10, 0, first, begin), { kind: 'partial', have: 4 })
      first.fill(0) // the part's buffer is the caller's again once its answer is given
      assert.equal((await temps()).length, 1)
      assert.deepEqual(await s.accept('k', 10, 2, Uint8Array.from([7, 7, 2, 2]), begin), { kind: 'partial', have: 6 })
      assert.deepEqual(await s.accept('k', 10, 8, bytes(2, 3), begin), { kind: 'mismatch', have: 6 })
      const last = await s.accept('k', 10, 6, bytes(4, 3), begin)
      assert.deepEqual(await contents(last), [1, 1, 1, 1, 2, 2, 3, 3, 3, 3])
      assert.equal(s.stagedBytes, 0)
      if (last.kind === 'complete' && 'writer' in last.staged) await last.staged.writer.commit()
      assert.deepEqual([...await store.get(ref)], [1, 1, 1, 1, 2, 2, 3, 3, 3, 3])
      assert.deepEqual(await temps(), [])
    })

    it('parts of one upload that arrive together are written in order', async () => {
      const s = new Staging(() => 0)
      const ref = testRef(2, 0)
      const begin = async (): Promise<ShareWriter> => await store.beginShare(ref)
      const answers = await Promise.all([
        s.accept('k', 9, 0, bytes(3, 1), begin),
        s.accept('k', 9, 3, bytes(3, 2), begin),
        s.accept('k', 9, 6, bytes(3, 3), begin)
      ])
      assert.deepEqual(answers.slice(0, 2), [{ kind: 'partial', have: 3 }, { kind: 'partial', have: 6 }])
      assert.deepEqual(await contents(answers[2] as PartOutcome), [1, 1, 1, 2, 2, 2, 3, 3, 3])
    })

    it('a dropped, evicted, expired or cleared upload leaves no temporary file', async () => {
      let t = 0
      const s = new Staging(() => t, 25, 1000)
      const begin = (i: number) => async (): Promise<ShareWriter> => await store.beginShare(testRef(3, i))
      await s.accept('a', 10, 0, bytes(1, 1), begin(0))
      await s.accept('b', 10, 0, bytes(1, 1), begin(1))
      await s.accept('c', 10, 0, bytes(1, 1), begin(2)) // evicts a
      s.forget('b')
      t = 5000
      await s.accept('d', 10, 0, bytes(1, 1), begin(3)) // c expires
      s.clear()
      const deadline = Date.now() + 5000
      while ((await temps()).length > 0 && Date.now() < deadline) await new Promise(resolve => setImmediate(resolve))
      assert.deepEqual(await temps(), [])
      assert.equal(s.stagedBytes, 0)
    })

    it('a failed write rejects the part and drops the upload: the client starts over', async () => {
      const s = new Staging(() => 0)
      const failing = async (): Promise<ShareWriter> => {
        const w = await store.beginShare(testRef(4, 0))
        return { ...w, append: async () => { throw new Error('the disk failed') } }
      }
      await assert.rejects(s.accept('k', 10, 0, bytes(4, 1), failing), /the disk failed/)
      assert.equal(s.stagedBytes, 0)
      assert.deepEqual(await s.accept('k', 10, 4, bytes(4, 1), failing), { kind: 'mismatch', have: 0 })
    })
  })
})
