import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { deriveIdentity, loadBackend, type SodiumBackend, type Identity } from '../../../src/crypto/index.js'
import { MemoryShareStore, IndexDb } from '../../../src/store/index.js'
import { Repository, SingleStorePackStore, rebuildIndex, saveSnapshot, listSnapshots, openSnapshot, sealSnapshot } from '../../../src/repo/index.js'
import { BlobType } from '../../../src/format/pack.js'
import type { SnapshotRecord } from '../../../src/format/snapshot.js'
import { asTreeId } from '../../../src/ids.js'
import { NotFoundError } from '../../../src/errors.js'

/** A store whose puts all wait until `release()` (then store as usual). */
function heldStore (): { slow: MemoryShareStore, release: () => void } {
  const slow = new MemoryShareStore()
  let release: () => void = () => {}
  const held = new Promise<void>(resolve => { release = resolve })
  const put = slow.put.bind(slow)
  slow.put = async (ref, data, options) => { await held; await put(ref, data, options) }
  return { slow, release }
}

describe('repo/Repository', () => {
  let sodium: SodiumBackend
  let identity: Identity
  let dir: string
  let store: MemoryShareStore
  let repo: Repository

  before(async () => {
    sodium = await loadBackend()
    identity = deriveIdentity(sodium, new Uint8Array(32).fill(9))
  })
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-repo-'))
    store = new MemoryShareStore()
    repo = new Repository({ sodium, identity, packs: new SingleStorePackStore(store), index: IndexDb.open(join(dir, 'index')) }, { packSize: 1 << 20 })
  })
  afterEach(async () => {
    await repo.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('stores blobs once, in padded packs, and loads them back verified', async () => {
    const blobs = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? randomBytes(50_000 + i) : Buffer.from('compressible '.repeat(5000 + i))))
    const ids = []
    for (const b of blobs) ids.push((await repo.saveChunk(b)).id)
    // the same content again is not stored twice
    for (const b of blobs) assert.equal((await repo.saveChunk(b)).added, false)
    await repo.flush()
    assert.equal(repo.stats.blobsAdded, 40)
    for (let i = 0; i < blobs.length; i++) assert.deepEqual(Buffer.from(await repo.loadBlob(ids[i] as Uint8Array)), blobs[i])
    // every pack's size is a size class (multiple of 64 KiB up to 1 MiB, of 1 MiB above)
    for await (const ref of store.list()) {
      const size = (await store.size(ref)) - 88
      assert.equal(size % (size <= 1 << 20 ? 65536 : 1 << 20), 0, `pack size ${size}`)
    }
    // compressible blobs were compressed
    assert.ok(repo.stats.packBytesAdded < blobs.reduce((n, b) => n + b.byteLength, 0))
  })

  it('releaseIdle gives back the compression workers and pack buffers between commands, never during a write; the next write makes them again', async () => {
    const threads = (): number => process.getActiveResourcesInfo().filter(r => r === 'MessagePort' || r === 'Worker').length
    const before = threads()
    await repo.saveChunk(Buffer.from('compressible '.repeat(20_000)))
    assert.ok(threads() > before, 'the compression workers run')
    // a pack is still open (not flushed): nothing is released
    assert.equal(await repo.releaseIdle(), false)
    await repo.flush()
    assert.equal(await repo.releaseIdle(), true)
    assert.equal(threads(), before)
    const again = Buffer.from('another compressible blob '.repeat(9000))
    const { id } = await repo.saveChunk(again)
    await repo.flush()
    assert.deepEqual(Buffer.from(await repo.loadBlob(id)), again)
  })

  it('a failed pack write fails its own job only: after settle() the next job stores the same blobs again', async () => {
    // a long-lived repository (the daemon's) runs one command after another
    const failing = new MemoryShareStore()
    let fail = true
    const put = failing.put.bind(failing)
    failing.put = async (ref, data, options) => { if (fail) throw new Error('a friend went away'); await put(ref, data, options) }
    const shared = new Repository({ sodium, identity, packs: new SingleStorePackStore(failing), index: IndexDb.open(join(dir, 'shared-index')) }, { packSize: 1 << 20 })
    try {
      const blob = randomBytes(40_000)
      await shared.saveChunk(blob)
      await assert.rejects(shared.flush(), /a friend went away/)
      fail = false
      // without settle() the next job would fail with the last one's error
      assert.match(String(await shared.settle()), /a friend went away/)
      assert.equal(await shared.settle(), undefined)
      const again = await shared.saveChunk(blob)
      assert.equal(again.added, true, 'the blob of the failed pack was never indexed: stored again')
      await shared.flush()
      assert.deepEqual(Buffer.from(await shared.loadBlob(again.id)), blob)
    } finally {
      await shared.close()
    }
  })

  it('a pack that waited for a write that then failed is still written or forgotten: after settle() its blobs are stored again', async () => {
    // one write in flight (a home's own disk): the second pack waits for the first, whose write fails
    const failing = new MemoryShareStore()
    let release: () => void = () => {}
    const held = new Promise<void>(resolve => { release = resolve })
    let fail = true
    const put = failing.put.bind(failing)
    failing.put = async (ref, data, options) => { await held; if (fail) throw new Error('the disk is full'); await put(ref, data, options) }
    const shared = new Repository({ sodium, identity, packs: new SingleStorePackStore(failing), index: IndexDb.open(join(dir, 'waiting-index')) }, { packSize: 1 << 16, maxPendingPacks: 1, compressWorkers: 0 })
    try {
      const first = randomBytes(70_000)
      const second = randomBytes(70_000)
      await shared.saveChunk(first) // fills a pack: its write starts and hangs
      const waiting = shared.saveChunk(second) // fills the next: it waits for the first write
      release()
      await assert.rejects(waiting, /the disk is full/)
      assert.match(String(await shared.settle()), /the disk is full/)
      fail = false
      for (const blob of [first, second]) {
        const again = await shared.saveChunk(blob)
        assert.equal(again.added, true, 'a blob of a failed pack is stored again, not taken for one on its way')
      }
      await shared.flush()
      for (const blob of [first, second]) assert.deepEqual(Buffer.from(await shared.loadBlob(shared.blobId(blob))), blob)
    } finally {
      await shared.close()
    }
  })

  it('no pack is larger than packSize: a blob that would not fit goes to the next pack', async () => {
    const packSize = 1 << 20
    const sizes = [300_000, 280_000, 310_000, 200_000, 350_000, 90_000, 400_000, 260_000, 330_000, 170_000, 240_000, 390_000]
    const blobs = sizes.map(n => randomBytes(n)) // incompressible: stored as they are
    for (const b of blobs) await repo.saveChunk(b)
    await repo.flush()
    const packs: number[] = []
    for await (const ref of store.list()) packs.push((await store.get(ref)).byteLength - 88)
    assert.ok(packs.length >= 4, `${packs.length} packs`)
    for (const size of packs) assert.ok(size <= packSize, `a pack of ${size} bytes, more than packSize ${packSize}`)
    for (const b of blobs) assert.deepEqual(Buffer.from(await repo.loadBlob(repo.blobId(b))), b)
  })

  it('while a full data pack waits for its write, no other data pack is opened: the next blob waits', async () => {
    const { slow, release } = heldStore()
    const shared = new Repository({ sodium, identity, packs: new SingleStorePackStore(slow), index: IndexDb.open(join(dir, 'gate-index')) }, { packSize: 1 << 16, maxPendingPacks: 1, compressWorkers: 0 })
    try {
      const [first, second, small] = [randomBytes(70_000), randomBytes(70_000), randomBytes(1_000)]
      await shared.saveChunk(first) // a full pack: its write starts and hangs
      let secondDone = false
      let smallDone = false
      const waiting = shared.saveChunk(second).then(() => { secondDone = true }) // full: waits for the first write
      const after = shared.saveChunk(small).then(() => { smallDone = true }) // would open a third pack buffer
      for (let i = 0; i < 20; i++) await new Promise(resolve => setImmediate(resolve))
      assert.equal(secondDone, false, 'the second pack waits for the first write')
      assert.equal(smallDone, false, 'a blob after a full pack waits for it instead of opening another pack')
      release()
      await Promise.all([waiting, after])
      await shared.flush()
      for (const blob of [first, second, small]) assert.deepEqual(Buffer.from(await shared.loadBlob(shared.blobId(blob))), blob)
    } finally {
      release()
      await shared.close()
    }
  })

  it('blobs that waited for a write slot are each checked against the pack they go into: no pack passes packSize', async () => {
    const { slow, release } = heldStore()
    const packSize = 1 << 20
    const shared = new Repository({ sodium, identity, packs: new SingleStorePackStore(slow), index: IndexDb.open(join(dir, 'recheck-index')) }, { packSize, maxPendingPacks: 1, compressWorkers: 0 })
    try {
      const blobs = [600_000, 500_000, 600_000, 600_000, 600_000, 600_000].map(n => randomBytes(n))
      await shared.saveChunk(blobs[0] as Buffer)
      await shared.saveChunk(blobs[1] as Buffer) // seals the first pack: its write starts and hangs
      const waiting = blobs.slice(2).map(async b => await shared.saveChunk(b)) // all wait for the write slot
      for (let i = 0; i < 20; i++) await new Promise(resolve => setImmediate(resolve))
      release()
      await Promise.all(waiting)
      await shared.flush()
      const sizes: number[] = []
      for await (const ref of slow.list()) sizes.push((await slow.get(ref)).byteLength - 88)
      for (const size of sizes) assert.ok(size <= packSize, `packs of ${sizes.join(', ')} bytes: one is more than packSize ${packSize}`)
      for (const b of blobs) assert.deepEqual(Buffer.from(await shared.loadBlob(shared.blobId(b))), b)
    } finally {
      release()
      await shared.close()
    }
  })

  it('an empty blob counts with its nonce, tag and header entry: it does not take a full pack past packSize', async () => {
    const packSize = 1 << 20
    // a pack that fits its bound exactly when sealed, header and tag included (incompressible, stored as is)
    const full = randomBytes(packSize - 93 - 40 - 1 - 41 - 40 - 1) // prefix, nonce + tag, entry count, entry, header nonce + tag; 1 byte to spare
    await repo.saveChunk(full)
    await repo.saveChunk(new Uint8Array(0))
    await repo.flush()
    for await (const ref of store.list()) {
      const size = (await store.get(ref)).byteLength - 88
      assert.ok(size <= packSize, `a pack of ${size} bytes, more than packSize ${packSize}`)
    }
    assert.deepEqual(Buffer.from(await repo.loadBlob(repo.blobId(new Uint8Array(0)))), Buffer.alloc(0))
  })

  it('flush writes every open pack and waits for every write, even after one failed', async () => {
    const failing = new MemoryShareStore()
    let running = 0
    let tried = 0
    failing.put = async () => {
      running++
      tried++
      try {
        await new Promise(resolve => setTimeout(resolve, 20))
        throw new Error('the disk is full')
      } finally {
        running--
      }
    }
    const shared = new Repository({ sodium, identity, packs: new SingleStorePackStore(failing), index: IndexDb.open(join(dir, 'flush-index')) }, { maxPendingPacks: 1, compressWorkers: 0 })
    try {
      await shared.saveChunk(randomBytes(10_000)) // an open data pack
      await shared.saveBlob(BlobType.Tree, randomBytes(32), randomBytes(500)) // an open tree pack
      await assert.rejects(shared.flush(), /the disk is full/)
      assert.equal(tried, 2, 'both open packs were written')
      assert.equal(running, 0, 'no write is left running when flush fails')
      assert.equal(await shared.settle() instanceof Error, true)
    } finally {
      await shared.close()
    }
  })

  it('a persister sees no plaintext and no chunk sizes in the stored bytes', async () => {
    const secret = Buffer.from('the secret recipe: '.repeat(100))
    await repo.saveChunk(secret)
    await repo.flush()
    for await (const ref of store.list()) {
      const bytes = Buffer.from(await store.get(ref))
      assert.equal(bytes.indexOf('secret recipe'), -1)
      assert.equal(bytes.byteLength - 88, 65536)
    }
  })

  it('a flipped byte in a blob fails authentication, other blobs still load', async () => {
    const a = await repo.saveChunk(randomBytes(200_000))
    const b = await repo.saveChunk(randomBytes(200_000))
    await repo.flush()
    const loc = repo.locate(a.id)
    store.corrupt({ pack: loc.pack, index: 0 }, 88 + loc.offset + 100)
    await assert.rejects(repo.loadBlob(a.id), { code: 'ERR_UNAUTHENTICATED' })
    assert.equal((await repo.loadBlob(b.id)).byteLength, 200_000)
  })

  it('the index can be rebuilt from the packs alone', async () => {
    const saved = []
    for (let i = 0; i < 30; i++) saved.push((await repo.saveChunk(randomBytes(90_000))).id)
    await repo.saveBlob(BlobType.Tree, asTreeId(repo.blobId(Buffer.from('tree'))), Buffer.from('tree'))
    await repo.flush()
    const before = saved.map(id => repo.locate(id))
    await repo.index.clearAll()
    assert.equal(repo.index.countBlobs(), 0)
    const summary = await rebuildIndex(repo)
    assert.equal(summary.damaged.length, 0)
    assert.equal(repo.index.countBlobs(), 31)
    assert.deepEqual(saved.map(id => repo.locate(id)), before)
  })

  it('snapshot records: sealed, signed, listed; tampering and other users are refused', async () => {
    const record: SnapshotRecord = {
      version: 1, time: 1_700_000_000_000_000_000n, endTime: 1_700_000_001_000_000_000n, host: 'h', user: 'u', userId: identity.userId,
      paths: ['/home/u'], tags: ['t'], tree: asTreeId(new Uint8Array(32).fill(1)),
      summary: { filesNew: 1, filesChanged: 0, filesUnchanged: 0, dirs: 1, bytesRead: 5, bytesAdded: 5, errors: 0 }, program: 'test'
    }
    const id = await saveSnapshot(repo.packs, sodium, identity, record)
    const { snapshots, damaged } = await listSnapshots(repo.packs, sodium, identity)
    assert.equal(damaged.length, 0)
    assert.deepEqual(snapshots.map(s => s.id), [id])
    assert.deepEqual(snapshots[0]?.record, record)
    const { envelope } = sealSnapshot(sodium, identity, record)
    const tampered = envelope.slice()
    tampered[tampered.length - 70] = (tampered[tampered.length - 70] as number) ^ 1
    assert.throws(() => openSnapshot(sodium, identity, tampered), { code: 'ERR_UNAUTHENTICATED' })
    const other = deriveIdentity(sodium, new Uint8Array(32).fill(10))
    assert.throws(() => openSnapshot(sodium, other, envelope), { code: 'ERR_UNAUTHENTICATED' })
  })

  it('a record listed, then deleted before it is read (another device forgot it), is skipped; one still listed but unreadable is damaged', async () => {
    const record = (host: string): SnapshotRecord => ({
      version: 1, time: 1_700_000_000_000_000_000n, endTime: 1_700_000_001_000_000_000n, host, user: 'u', userId: identity.userId,
      paths: ['/home/u'], tags: [], tree: asTreeId(new Uint8Array(32).fill(1)),
      summary: { filesNew: 1, filesChanged: 0, filesUnchanged: 0, dirs: 1, bytesRead: 5, bytesAdded: 5, errors: 0 }, program: 'test'
    })
    const kept = await saveSnapshot(repo.packs, sodium, identity, record('kept'))
    const forgotten = await saveSnapshot(repo.packs, sodium, identity, record('forgotten'))
    // the other device deletes `forgotten` right after this one listed it
    const packs = repo.packs
    const racing = new Proxy(packs, {
      get (target, prop) {
        if (prop === 'getRecord') {
          return async (id: Uint8Array) => {
            if (Buffer.from(id).equals(Buffer.from(forgotten))) await target.deleteRecord(id)
            return await target.getRecord(id)
          }
        }
        const v: unknown = Reflect.get(target, prop)
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
      }
    })
    const listing = await listSnapshots(racing, sodium, identity)
    assert.deepEqual(listing.damaged, [])
    assert.deepEqual(listing.snapshots.map(s => s.id), [kept])
    // a record still listed that cannot be read is damaged, as before
    const unreadable = new Proxy(packs, {
      get (target, prop) {
        if (prop === 'getRecord') return async () => { throw new NotFoundError('not on any reachable peer') }
        const v: unknown = Reflect.get(target, prop)
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
      }
    })
    assert.equal((await listSnapshots(unreadable, sodium, identity)).damaged.length, 1)
  })
})
