/** The persister's unfinished putPart uploads (src/protocols/shard/staging.ts): order, repeats, bounds, disk. */
import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MAX_DISK_UPLOADS, MIN_STAGED_CHARGE, Staging, type PartOutcome } from '../../../src/protocols/shard/staging.js'
import { TRANSFER_PART_BYTES } from '../../../src/protocols/shard/constants.js'
import { dropFront, equalsPartBytes, partBytesOf, type PartBytes } from '../../../src/protocols/shard/wire.js'
import { concatBytes } from '../../../src/util/bytes.js'
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
    // each tiny upload counts MIN_STAGED_CHARGE: room for two and a half
    const s = new Staging(() => t, 2.5 * MIN_STAGED_CHARGE, 1000)
    await s.accept('a', 10, 0, bytes(1, 1))
    await s.accept('b', 10, 0, bytes(1, 1))
    await s.accept('a', 10, 1, bytes(1, 1)) // a is now the most recent
    await s.accept('c', 10, 0, bytes(1, 1)) // three do not fit: b goes
    assert.equal(s.stagedBytes, 2 * MIN_STAGED_CHARGE)
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
    const P = TRANSFER_PART_BYTES
    /** `n` bytes, byte i of them `fill + i` (mod 256): parts differ, and their order shows */
    const pattern = (n: number, fill: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (fill + i) & 0xff)
    const begin = (i: number) => async (): Promise<ShareWriter> => await store.beginShare(testRef(9, i))
    /** waits (bounded) until the temporary files are gone: a dropped upload removes its file after its writes */
    const noTemps = async (): Promise<void> => {
      const deadline = Date.now() + 5000
      while ((await temps()).length > 0 && Date.now() < deadline) await new Promise(resolve => setImmediate(resolve))
      assert.deepEqual(await temps(), [])
    }

    it('writes each part as it comes, keeps none of them, and hands over the writer that holds them', async () => {
      const s = new Staging(() => 0)
      const ref = testRef(1, 0)
      const open = async (): Promise<ShareWriter> => await store.beginShare(ref)
      const whole = pattern(3 * P, 5)
      const first = whole.slice(0, P)
      assert.deepEqual(await s.accept('k', 3 * P, 0, first, open), { kind: 'partial', have: P })
      first.fill(0) // the part's buffer is the caller's again once its answer is given
      assert.equal((await temps()).length, 1)
      // a retry that repeats some bytes (with other bytes: nothing changes) and adds new ones
      const overlap = whole.slice(P - 10, 2 * P)
      overlap.fill(0, 0, 10)
      assert.deepEqual(await s.accept('k', 3 * P, P - 10, overlap, open), { kind: 'partial', have: 2 * P })
      assert.deepEqual(await s.accept('k', 3 * P, 2 * P + 1, whole.subarray(2 * P + 1), open), { kind: 'mismatch', have: 2 * P })
      const last = await s.accept('k', 3 * P, 2 * P, whole.slice(2 * P), open)
      assert.ok(last.kind === 'complete' && 'writer' in last.staged, 'staged on disk')
      assert.deepEqual(await last.staged.writer.read(), whole)
      assert.equal(s.stagedBytes, 0)
      await last.staged.writer.commit()
      assert.deepEqual(await store.get(ref), whole)
      assert.deepEqual(await temps(), [])
    })

    it('takes parts in the pieces they arrived in, a retry overlapping across pieces included, and writes them in order', async () => {
      const s = new Staging(() => 0)
      const ref = testRef(2, 0)
      const open = async (): Promise<ShareWriter> => await store.beginShare(ref)
      const whole = pattern(3 * P, 9)
      /** `bytes` cut into pieces of 1000 bytes, as the transport hands them over */
      const cut = (bytes: Uint8Array): PartBytes => partBytesOf(Array.from({ length: Math.ceil(bytes.byteLength / 1000) }, (_, i) => bytes.slice(i * 1000, (i + 1) * 1000)))
      assert.deepEqual(await s.accept('k', 3 * P, 0, cut(whole.subarray(0, P)), open), { kind: 'partial', have: P })
      // the retry repeats 2500 bytes: it starts inside its third piece
      assert.deepEqual(await s.accept('k', 3 * P, P - 2500, cut(whole.subarray(P - 2500, 2 * P)), open), { kind: 'partial', have: 2 * P })
      const last = await s.accept('k', 3 * P, 2 * P, cut(whole.subarray(2 * P)), open)
      assert.ok(last.kind === 'complete' && 'writer' in last.staged, 'staged on disk')
      assert.deepEqual(await last.staged.writer.read(), whole)
      await last.staged.writer.commit()
      assert.deepEqual(await store.get(ref), whole)
    })

    it('in memory, keeps the pieces of each part (without the bytes a retry repeats) and hands them over in order', async () => {
      const s = new Staging(() => 0)
      const whole = pattern(3000, 3)
      const pieces = (from: number, to: number, size: number): PartBytes => partBytesOf(Array.from({ length: Math.ceil((to - from) / size) }, (_, i) => whole.slice(from + i * size, Math.min(to, from + (i + 1) * size))))
      assert.deepEqual(await s.accept('m', 3000, 0, pieces(0, 1000, 300)), { kind: 'partial', have: 1000 })
      assert.deepEqual(await s.accept('m', 3000, 700, pieces(700, 2000, 400)), { kind: 'partial', have: 2000 })
      const last = await s.accept('m', 3000, 1999, pieces(1999, 3000, 1001))
      assert.ok(last.kind === 'complete' && 'parts' in last.staged)
      assert.deepEqual(concatBytes(last.staged.parts), whole)
    })

    it('parts of one upload that arrive together are written in order', async () => {
      const s = new Staging(() => 0)
      const whole = pattern(3 * P, 1)
      const answers = await Promise.all([0, 1, 2].map(async i => await s.accept('k', 3 * P, i * P, whole.slice(i * P, (i + 1) * P), begin(0))))
      assert.deepEqual(answers.slice(0, 2), [{ kind: 'partial', have: P }, { kind: 'partial', have: 2 * P }])
      const last = answers[2] as PartOutcome
      assert.ok(last.kind === 'complete' && 'writer' in last.staged)
      assert.deepEqual(await last.staged.writer.read(), whole)
      await last.staged.writer.abort()
    })

    it('a dropped, evicted, expired, swept or cleared upload leaves no temporary file', async () => {
      let t = 0
      const s = new Staging(() => t, 5 * P, 1000)
      const part = pattern(P, 3)
      await s.accept('a', 2 * P, 0, part, begin(0))
      await s.accept('b', 2 * P, 0, part, begin(1))
      assert.equal((await temps()).length, 2)
      await s.accept('c', 2 * P, 0, part, begin(2)) // 6 P > 5 P: a goes
      s.forget('b')
      assert.deepEqual(await s.accept('a', 2 * P, P, part, begin(0)), { kind: 'mismatch', have: 0 })
      await s.accept('d', 2 * P, 0, part, begin(3))
      assert.equal((await temps()).length >= 2, true)
      t = 5000
      s.sweep() // c and d are idle: dropped with no part arriving
      await noTemps()
      assert.equal(s.stagedBytes, 0)
      await s.accept('e', 2 * P, 0, part, begin(4))
      assert.equal((await temps()).length, 1)
      s.clear()
      await noTemps()
      // after clear (the server stopped), a part that was already on its way is staged in memory
      await s.accept('f', 2 * P, 0, part, begin(5))
      assert.deepEqual(await temps(), [])
    })

    it('tiny shares and uploads beyond MAX_DISK_UPLOADS are staged in memory, and each counts at least MIN_STAGED_CHARGE', async () => {
      const s = new Staging(() => 0)
      let opened = 0
      const counting = async (): Promise<ShareWriter> => { opened++; return await store.beginShare(testRef(7, opened % 256)) }
      for (let i = 0; i < 100; i++) await s.accept(`tiny${i}`, 2, 0, bytes(1, 1), counting)
      assert.equal(opened, 0)
      assert.equal(s.stagedBytes, 100 * MIN_STAGED_CHARGE)
      for (let i = 0; i < MAX_DISK_UPLOADS + 5; i++) await s.accept(`big${i}`, 2 * P, 0, pattern(1, 1), counting)
      assert.equal(opened, MAX_DISK_UPLOADS)
      assert.equal((await temps()).length, MAX_DISK_UPLOADS)
      s.clear()
      await noTemps()
    })

    it('a failed write rejects the part and drops the upload: the client starts over', async () => {
      const s = new Staging(() => 0)
      const failing = async (): Promise<ShareWriter> => {
        const w = await store.beginShare(testRef(4, 0))
        return { ...w, append: async () => { throw new Error('the disk failed') } }
      }
      await assert.rejects(s.accept('k', 2 * P, 0, pattern(P, 1), failing), /the disk failed/)
      assert.equal(s.stagedBytes, 0)
      assert.deepEqual(await s.accept('k', 2 * P, P, pattern(P, 1), failing), { kind: 'mismatch', have: 0 })
      await noTemps()
    })
  })
})

describe('a part in pieces (shard/wire.ts)', () => {
  const whole = Uint8Array.from({ length: 100 }, (_, i) => i)
  const pieces = partBytesOf([whole.subarray(0, 30), whole.subarray(30, 31), whole.subarray(31, 100)])

  it('drops any number of leading bytes, across pieces, without copying', () => {
    for (let skip = 0; skip <= 100; skip++) {
      const rest = dropFront(pieces, skip)
      assert.equal(rest.byteLength, 100 - skip)
      assert.deepEqual(concatBytes(rest.chunks), whole.subarray(skip))
      for (const c of rest.chunks) assert.equal(c.buffer, whole.buffer)
    }
  })

  it('compares with one buffer piece by piece', () => {
    assert.ok(equalsPartBytes(whole, pieces))
    assert.ok(!equalsPartBytes(whole.subarray(0, 99), pieces))
    const other = whole.slice()
    other[30] = 0
    assert.ok(!equalsPartBytes(other, pieces))
  })
})
