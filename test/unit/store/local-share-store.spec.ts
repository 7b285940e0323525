import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { toHex } from '../../../src/util/bytes.js'
import { DISK_RESERVE_MAX_BYTES, DISK_RESERVE_MIN_BYTES, LocalShareStore, RECORD_RESERVE_SHARE, diskReserve, diskRoom } from '../../../src/store/index.js'
import {
  collect, refKey, rejectsWithCode, seededBytes, shareStoreCompliance, testPack, testRef
} from '../../compliance/share-store.js'
import { mountTinyTmpfs, unmountTmpfs } from '../../fixtures/tmpfs.js'

async function tempDir (): Promise<string> {
  return await mkdtemp(join(tmpdir(), 'p2pbak-store-'))
}

/** Every file name under `dir`, recursively, relative to it. */
async function walk (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1)).sort()
}

shareStoreCompliance('LocalShareStore', async () => {
  const dir = await tempDir()
  const store = await LocalShareStore.open(dir).catch(async (err: unknown) => {
    await rm(dir, { recursive: true, force: true })
    throw err
  })
  return {
    store,
    teardown: async () => {
      await store.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
})

describe('LocalShareStore on disk', () => {
  let dir: string
  beforeEach(async () => { dir = await tempDir() })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('writes the documented layout with private permissions', async () => {
    const store = await LocalShareStore.open(dir)
    assert.equal(store.id, `local:${dir}`)
    const ref = testRef(1, 17)
    const hex = toHex(ref.pack)
    const rid = seededBytes(9, 32)
    await store.put(ref, seededBytes(1, 100))
    await store.putRecord(rid, seededBytes(2, 10))
    assert.deepEqual(await walk(dir), ['VERSION', `records/${toHex(rid)}`, `shares/${hex.slice(0, 2)}/${hex}.17`].sort())
    assert.equal(await readFile(join(dir, 'VERSION'), 'utf8'), '1')
    assert.deepEqual(new Uint8Array(await readFile(join(dir, 'shares', hex.slice(0, 2), `${hex}.17`))), seededBytes(1, 100))
    assert.equal((await stat(join(dir, 'shares', hex.slice(0, 2), `${hex}.17`))).mode & 0o777, 0o600)
    assert.equal((await stat(join(dir, 'records', toHex(rid)))).mode & 0o777, 0o600)
    assert.equal((await stat(join(dir, 'shares'))).mode & 0o077, 0)
    await store.close()
  })

  it('beginShare writes the pieces to a temporary file as they come, and commit stores their concatenation like put', async () => {
    const store = await LocalShareStore.open(dir)
    const ref = testRef(3, 2)
    const hex = toHex(ref.pack)
    const whole = seededBytes(4, 300_000)
    const w = await store.beginShare(ref)
    await w.append(whole.subarray(0, 1))
    await w.append(whole.subarray(1, 65_537))
    // on disk, under a temporary name only: nothing is visible under the share's name yet
    const during = await walk(dir)
    assert.equal(during.length, 2)
    assert.match(during[1] as string, new RegExp(`^shares/${hex.slice(0, 2)}/\\.tmp-${process.pid}-`))
    assert.equal(await store.has(ref), false)
    assert.equal((await stat(join(dir, during[1] as string))).size, 65_537)
    await w.append(whole.subarray(65_537))
    assert.deepEqual(await w.read(), whole)
    await w.commit()
    await w.abort() // a no-op after the commit
    assert.deepEqual(await store.get(ref), whole)
    // a second upload of identical bytes succeeds, and leaves nothing behind
    const again = await store.beginShare(ref)
    await again.append(whole)
    await again.commit()
    assert.equal(await store.size(ref), whole.byteLength)
    assert.deepEqual(await walk(dir), ['VERSION', `shares/${hex.slice(0, 2)}/${hex}.2`])
    // an abandoned upload leaves nothing either
    const dropped = await store.beginShare(testRef(3, 3))
    await dropped.append(whole.subarray(0, 10))
    await dropped.abort()
    assert.deepEqual(await walk(dir), ['VERSION', `shares/${hex.slice(0, 2)}/${hex}.2`])
    await store.close()
  })

  it('putParts stores the concatenation of its pieces, like put, and a repeat of identical bytes succeeds', async () => {
    const store = await LocalShareStore.open(dir)
    const ref = testRef(3, 4)
    const whole = seededBytes(4, 300_000)
    const parts = [whole.subarray(0, 88), whole.subarray(88)]
    await store.putParts(ref, parts)
    assert.deepEqual(await store.get(ref), whole)
    await store.putParts(ref, parts)
    await store.put(ref, whole)
    assert.equal(await store.size(ref), whole.byteLength)
    const hex = toHex(ref.pack)
    assert.deepEqual(await walk(dir), ['VERSION', `shares/${hex.slice(0, 2)}/${hex}.4`])
    await store.close()
  })

  it('an upload cut off by a crash leaves only a temporary file, which the next open removes', async () => {
    const store = await LocalShareStore.open(dir)
    const ref = testRef(8, 0)
    const w = await store.beginShare(ref)
    await w.append(seededBytes(8, 5000))
    await store.close()
    // the writer's process is gone: its temporary name carries a pid no process has
    const [tmp] = (await walk(dir)).filter(n => n.includes('.tmp-'))
    assert.ok(tmp !== undefined)
    const orphan = join(dir, (tmp as string).replace(/\.tmp-\d+-/, '.tmp-999999999-'))
    await writeFile(orphan, seededBytes(8, 5000))
    await rm(join(dir, tmp as string))
    const reopened = await LocalShareStore.open(dir)
    assert.deepEqual(await walk(dir), ['VERSION'])
    assert.equal(await reopened.has(ref), false)
    await reopened.close()
    await w.abort() // the writer's descriptor (its file is gone)
  })

  it('a put of other bytes over a held share (a signed replace) is what ranges read next, whatever was cached', async () => {
    const store = await LocalShareStore.open(dir)
    const ref = testRef(5, 1)
    const damaged = seededBytes(6, 70_000)
    const good = seededBytes(7, 70_000)
    await store.put(ref, damaged)
    // a range read caches the file's descriptor
    assert.deepEqual(await store.getRange(ref, 69_000, 1000), damaged.subarray(69_000))
    await store.put(ref, good)
    assert.deepEqual(await store.getRange(ref, 69_000, 1000), good.subarray(69_000))
    const w = await store.beginShare(ref)
    await w.append(damaged.subarray(0, 10))
    await w.append(damaged.subarray(10))
    await w.commit()
    assert.deepEqual(await store.getRange(ref, 0, 1000), damaged.subarray(0, 1000))
    await store.close()
  })

  it('a folder wiped while the store is open (a holder replaced its disk): shares and records are taken again', async () => {
    const store = await LocalShareStore.open(dir)
    try {
      const ref = testRef(3, 2)
      const rid = seededBytes(11, 32)
      await store.put(ref, seededBytes(3, 100))
      await store.putRecord(rid, seededBytes(4, 10))
      await rm(dir, { recursive: true, force: true })
      await store.put(ref, seededBytes(3, 100))
      await store.putRecord(rid, seededBytes(4, 10))
      assert.deepEqual(await store.get(ref), seededBytes(3, 100))
      assert.deepEqual(await store.getRecord(rid), seededBytes(4, 10))
    } finally {
      await store.close()
    }
  })

  it('creates a missing directory, and sees every share and record again after reopening', async () => {
    const nested = join(dir, 'a', 'b')
    const first = await LocalShareStore.open(nested)
    const refs = Array.from({ length: 30 }, (_, i) => testRef(i, (i * 37) % 256))
    for (const [i, ref] of refs.entries()) await first.put(ref, seededBytes(i, i * 100))
    await first.putRecord(seededBytes(7, 32), seededBytes(8, 5))
    await first.close()
    const again = await LocalShareStore.open(nested)
    assert.deepEqual((await collect(again.list())).map(refKey).sort(), refs.map(refKey).sort())
    for (const [i, ref] of refs.entries()) assert.deepEqual(await again.get(ref), seededBytes(i, i * 100))
    assert.deepEqual(await again.getRecord(seededBytes(7, 32)), seededBytes(8, 5))
    assert.deepEqual(await again.usage(), { shares: 30, bytes: 100 * (29 * 30) / 2, records: 1, recordBytes: 5 })
    await again.close()
  })

  it('does not list leftover .tmp- files, and open() removes them', async () => {
    const store = await LocalShareStore.open(dir)
    const ref = testRef(2, 1)
    await store.put(ref, seededBytes(2, 50))
    const prefixDir = join(dir, 'shares', toHex(ref.pack).slice(0, 2))
    const temps = [join(prefixDir, '.tmp-0123456789abcdef'), join(dir, 'records', '.tmp-1'), join(dir, '.tmp-2'), join(dir, 'shares', '.tmp-3')]
    for (const t of temps) await writeFile(t, 'partial')
    assert.deepEqual((await collect(store.list())).map(refKey), [refKey(ref)])
    assert.deepEqual(await collect(store.listRecords()), [])
    await store.close()

    const again = await LocalShareStore.open(dir)
    assert.deepEqual(await walk(dir), ['VERSION', `shares/${toHex(ref.pack).slice(0, 2)}/${toHex(ref.pack)}.1`])
    assert.deepEqual(await again.get(ref), seededBytes(2, 50))
    await again.close()
  })

  it('list and listRecords skip names that are not shares or records', async () => {
    const store = await LocalShareStore.open(dir)
    const ref = testRef(3, 200)
    const hex = toHex(ref.pack)
    const rid = seededBytes(3, 32)
    await store.put(ref, seededBytes(3, 10))
    await store.putRecord(rid, seededBytes(4, 10))
    const prefix = join(dir, 'shares', hex.slice(0, 2))
    const other = [4, 5, 6].map((n) => toHex(testPack(n))).find((h) => h.slice(0, 2) !== hex.slice(0, 2)) as string
    const junk = [
      join(dir, 'shares', 'README'),
      join(prefix, `${hex}.256`), join(prefix, `${hex}.01`), join(prefix, `${hex}.1.bak`), join(prefix, hex),
      join(prefix, `${hex.toUpperCase()}.1`), join(prefix, `${hex.slice(2)}.1`),
      join(prefix, `${other}.1`), // a valid share name under the wrong prefix directory
      join(dir, 'records', 'notes.txt'), join(dir, 'records', `${toHex(rid)}.old`), join(dir, 'records', toHex(rid).toUpperCase())
    ]
    for (const d of ['zz', 'AB', 'abc']) junk.push(join(dir, 'shares', d, `${other}.1`)) // not prefix directories
    for (const j of junk) { await mkdir(join(j, '..'), { recursive: true }); await writeFile(j, 'x') }
    assert.deepEqual((await collect(store.list())).map(refKey), [refKey(ref)])
    assert.deepEqual((await collect(store.listRecords())).map(toHex), [toHex(rid)])
    assert.deepEqual(await store.usage(), { shares: 1, bytes: 10, records: 1, recordBytes: 10 })
    await store.close()
  })

  for (const tc of [{ name: 'a newer version', text: '99' }, { name: 'garbage', text: 'hello' }, { name: 'an empty file', text: '' }]) {
    it(`refuses a store whose VERSION is ${tc.name} (ERR_STORE_VERSION) and leaves it untouched`, async () => {
      await writeFile(join(dir, 'VERSION'), tc.text)
      await writeFile(join(dir, '.tmp-keep'), 'a newer writer owns this')
      await rejectsWithCode(LocalShareStore.open(dir), 'ERR_STORE_VERSION')
      assert.deepEqual(await walk(dir), ['.tmp-keep', 'VERSION'])
    })
  }

  it('accepts VERSION "1" followed by a newline', async () => {
    await writeFile(join(dir, 'VERSION'), '1\n')
    const store = await LocalShareStore.open(dir)
    await store.close()
  })
})

describe('the reserve a store keeps free on its disk (disk-room.ts)', () => {
  it('is 2 % of the disk, at least 128 KiB and at most 64 MiB', () => {
    assert.equal(diskReserve(1 << 20), DISK_RESERVE_MIN_BYTES)
    assert.equal(diskReserve(1000 * (1 << 20)), Math.floor(1000 * (1 << 20) * 0.02))
    assert.equal(diskReserve(500 * 2 ** 30), DISK_RESERVE_MAX_BYTES)
  })
})

describe('LocalShareStore on a full disk', function () {
  let mnt: string | undefined
  let dir: string

  before(async function () {
    const result = await mountTinyTmpfs('1m')
    if ('skipReason' in result) {
      // Reported as pending, with why: a real ENOSPC needs a tiny filesystem we are allowed to mount.
      this.test?.parent?.tests.forEach((t) => { t.title += ` (skipped: ${result.skipReason})` })
      this.skip()
    }
    mnt = result.path
  })

  after(async () => {
    if (mnt !== undefined) await unmountTmpfs(mnt)
  })

  beforeEach(async () => {
    dir = join(mnt as string, `s${Math.random().toString(16).slice(2)}`)
  })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('put beyond free space raises ERR_NO_SPACE, leaves no file behind, and keeps earlier shares', async () => {
    const store = await LocalShareStore.open(dir)
    const kept = testRef(1, 0)
    await store.put(kept, seededBytes(1, 400_000))
    const big = testRef(1, 1) // same prefix directory as `kept`
    await rejectsWithCode(store.put(big, seededBytes(2, 700_000)), 'ERR_NO_SPACE')
    assert.equal(await store.has(big), false)
    const hex = toHex(kept.pack)
    assert.deepEqual(await walk(dir), ['VERSION', `shares/${hex.slice(0, 2)}/${hex}.0`])
    assert.deepEqual(await store.get(kept), seededBytes(1, 400_000))
    // the space is really free again: a share that fits now succeeds
    await store.put(testRef(2, 0), seededBytes(3, 400_000))
    assert.equal((await store.usage()).shares, 2)
    await store.close()
  })

  it('a share written in pieces beyond free space raises ERR_NO_SPACE on the piece that does not fit, and leaves no file behind', async () => {
    const store = await LocalShareStore.open(dir)
    const w = await store.beginShare(testRef(1, 0))
    await w.append(seededBytes(1, 256 * 1024))
    await rejectsWithCode((async () => { for (let i = 2; i < 8; i++) await w.append(seededBytes(i, 256 * 1024)) })(), 'ERR_NO_SPACE')
    await w.abort()
    assert.deepEqual(await walk(dir), ['VERSION'])
    await store.put(testRef(2, 0), seededBytes(3, 400_000)) // the space is free again
    await store.close()
  })

  it('a put that would take the reserve kept for the index is refused with ERR_NO_SPACE while the disk still has room for it (disk-room.ts)', async () => {
    const store = await LocalShareStore.open(dir)
    await store.put(testRef(1, 0), seededBytes(1, 400_000))
    const before = await diskRoom(dir)
    assert.equal(before.reserve, DISK_RESERVE_MIN_BYTES, 'a 1 MiB disk keeps the smallest reserve')
    // fits on the disk, not beside the reserve
    const size = before.free - before.reserve + 4096
    assert.ok(size < before.free)
    await rejectsWithCode(store.put(testRef(2, 0), seededBytes(2, size)), 'ERR_NO_SPACE')
    // a record may use a quarter of the reserve (forget and prune write one before they free anything), no more
    await rejectsWithCode(store.putRecord(seededBytes(3, 32), seededBytes(3, before.free - before.reserve * RECORD_RESERVE_SHARE + 4096)), 'ERR_NO_SPACE')
    const w = await store.beginShare(testRef(3, 0))
    await rejectsWithCode(w.append(seededBytes(4, size)), 'ERR_NO_SPACE')
    await w.abort()
    assert.equal((await diskRoom(dir)).free, before.free, 'nothing was written')
    // two writes at once that each fit beside the reserve, but not both: one is refused
    const half = Math.floor(before.room * 0.6)
    const both = await Promise.allSettled([store.put(testRef(4, 0), seededBytes(4, half)), store.put(testRef(5, 0), seededBytes(5, half))])
    assert.deepEqual(both.map(r => r.status).sort(), ['fulfilled', 'rejected'], JSON.stringify(both.map(r => r.status === 'rejected' ? String(r.reason) : 'ok')))
    assert.ok((await diskRoom(dir)).free >= before.reserve)
    const gone = both[0].status === 'fulfilled' ? testRef(4, 0) : testRef(5, 0)
    await store.delete(gone)
    // a record that fits beside three quarters of the reserve is written on a disk at its reserve
    await store.put(testRef(2, 0), seededBytes(2, before.room - 8192))
    await store.putRecord(seededBytes(6, 32), seededBytes(6, Math.floor(before.reserve * RECORD_RESERVE_SHARE)))
    await store.close()
  })

  it('putRecord beyond free space raises ERR_NO_SPACE and leaves no file behind', async () => {
    const store = await LocalShareStore.open(dir)
    await rejectsWithCode(store.putRecord(seededBytes(1, 32), seededBytes(1, 2_000_000)), 'ERR_NO_SPACE')
    assert.deepEqual(await collect(store.listRecords()), [])
    assert.deepEqual(await walk(dir), ['VERSION'])
    await store.close()
  })
})
