/** Widening a narrow stripe, releasing a pruned pack's shares, and repairing a pack (ErasurePackStore with group-repair.ts and local-packs.ts). */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { contentHash } from '../../../src/crypto/index.js'
import { MemoryShareStore, IndexDb, type AbortOptions, type ShareRef } from '../../../src/store/index.js'
import { OtherStripeError, RefusedError } from '../../../src/errors.js'
import { ErasurePackStore, RefusalBackoff, releaseShares, repairPack } from '../../../src/repo/index.js'
import { NO_ROOM_WAIT_MS } from '../../../src/repo/erasure-pack-store.js'
import { asPackId, type PackId } from '../../../src/ids.js'
import { GoneStore, PersisterStore, cand, putNarrow, tempIndex } from './erasure-pack-store.fixtures.js'

describe('ErasurePackStore: a pack placed while only two friends answered is widened once more answer', () => {
  let index: IndexDb
  tempIndex((i) => { index = i })

  it('gets the stripe the group gives now, never at an index a peer holds of the old one; the old shares and the own copy go', async function () {
    this.timeout(10_000)
    const peers = new Map(['A', 'B', 'C', 'D'].map(p => [p, new PersisterStore(p)]))
    const local = new MemoryShareStore('local')
    let online = ['A', 'B']
    const store = new ErasurePackStore(local, { ownPersonId: 'me', candidates: () => online.map(cand), storeFor: (p: string) => peers.get(p) as MemoryShareStore }, index)
    const { pack, id } = await putNarrow(store, index)
    const old = new Map(index.getPlacement(id))
    // nothing changes while the group online gives no wider stripe
    assert.deepEqual(await store.placeLocalPacks(), { moved: 0, widened: 0, failed: 0 })
    assert.deepEqual(index.getPlacement(id), old)

    online = ['A', 'B', 'C', 'D']
    assert.deepEqual(await store.placeLocalPacks(), { moved: 0, widened: 1, failed: 0 })
    const placement = index.getPlacement(id) ?? new Map<number, string>()
    assert.equal(placement.size, 3)
    assert.deepEqual({ k: index.getPack(id)?.k, m: index.getPack(id)?.m }, { k: 1, m: 2 })
    for (const [i, h] of old) assert.notEqual(placement.get(i), h, `share ${i} went back to ${h}, over the old stripe's share`)
    assert.equal(await local.has({ pack: id, index: 0 }), false, 'the own copy is deleted')
    // the old stripe's shares are released; each friend then holds exactly its share of the new one
    assert.equal(await releaseShares(store, () => true), old.size)
    for (const [name, s] of peers) {
      const held: number[] = []
      for await (const ref of s.list()) held.push(ref.index)
      assert.deepEqual(held, [...placement].filter(([, h]) => h === `peer:${name}`).map(([i]) => i), `${name} holds ${held.join(',')}`)
    }
    store.dropCaches()
    assert.deepEqual(Buffer.from(await store.getPack(id)), pack)
    // widened packs stay as they are
    assert.deepEqual(await store.placeLocalPacks(), { moved: 0, widened: 0, failed: 0 })
  })

  // with one friend left, the one that holds share 1 of the old stripe: share 0 of a 1+0 stripe could go to it
  for (const left of ['no friend', 'one friend'] as const) {
    it(`${left} answering once the step has chosen the wider stripe: the old stripe and the own copy stay whole`, async function () {
      this.timeout(10_000)
      const peers = new Map(['A', 'B', 'C', 'D'].map(p => [p, new PersisterStore(p)]))
      let online: readonly string[] = ['A', 'B']
      let stayed: readonly string[] = []
      // the friends go away while the widening reads the own copy: after the step chose 1+2 from
      // the friends online, before the put (a laptop losing its link in the middle of the step)
      let goAway = false
      class LocalDisk extends MemoryShareStore {
        override async get (ref: ShareRef, options?: AbortOptions): Promise<Uint8Array> {
          if (goAway) online = stayed
          return await super.get(ref, options)
        }
      }
      const local = new LocalDisk('local')
      const store = new ErasurePackStore(local, { ownPersonId: 'me', candidates: () => online.map(cand), storeFor: (p: string) => peers.get(p) as MemoryShareStore }, index)
      const { pack, id } = await putNarrow(store, index)
      const old = new Map(index.getPlacement(id))
      if (left === 'one friend') stayed = [(old.get(1) ?? '').slice(5)]
      online = ['A', 'B', 'C', 'D']
      goAway = true
      const r = await store.placeLocalPacks()
      goAway = false
      assert.equal(r.widened, 0, 'nothing was widened')
      assert.deepEqual(index.getPlacement(id), old, 'the recorded stripe is the old one')
      assert.deepEqual({ k: index.getPack(id)?.k, m: index.getPack(id)?.m }, { k: 1, m: 1 })
      assert.equal(await local.has({ pack: id, index: 0 }), true, 'the own copy stays')
      // the releases queued for the old stripe delete nothing while it is the recorded one
      online = ['A', 'B', 'C', 'D']
      await releaseShares(store, () => true)
      for (const [i, h] of old) assert.equal(await peers.get(h.slice(5))?.has({ pack: id, index: i }), true, `${h} keeps share ${i}`)
      store.dropCaches()
      assert.deepEqual(Buffer.from(await store.getPack(id)), pack)
      // everyone answers again: the next round widens
      assert.deepEqual(await store.placeLocalPacks(), { moved: 0, widened: 1, failed: 0 })
      store.dropCaches()
      assert.deepEqual(Buffer.from(await store.getPack(id)), pack)
    })
  }

  it('a widening a friend refuses waits before it is tried again, doubling, instead of uploading every round', async function () {
    this.timeout(10_000)
    class Refusing extends PersisterStore {
      refusing = true
      puts = 0
      override async put (ref: ShareRef, data: Uint8Array, options?: AbortOptions): Promise<void> {
        this.puts++
        if (this.refusing) throw new RefusedError('reciprocity limit reached: run p2pbak contribute SIZE')
        await super.put(ref, data, options)
      }
    }
    const c = new Refusing('C')
    const peers = new Map<string, MemoryShareStore>([['A', new PersisterStore('A')], ['B', new PersisterStore('B')], ['C', c]])
    let online = ['A', 'B']
    let clock = Date.parse('2026-12-07T00:00:00Z')
    const store = new ErasurePackStore(new MemoryShareStore('local'), { ownPersonId: 'me', candidates: () => online.map(cand), storeFor: (p: string) => peers.get(p) as MemoryShareStore }, index, { now: () => clock })
    const { pack, id } = await putNarrow(store, index, clock)
    // C answers, but refuses: a 1+2 stripe needs it
    online = ['A', 'B', 'C']
    assert.deepEqual(await store.placeLocalPacks(), { moved: 0, widened: 0, failed: 1 })
    const tried = c.puts
    assert.ok(tried > 0)
    // the next rounds within the wait do not try
    clock += RefusalBackoff.FIRST_MS - 1
    assert.deepEqual(await store.placeLocalPacks(), { moved: 0, widened: 0, failed: 0 })
    assert.equal(c.puts, tried, 'no upload while the widening waits')
    // tried once the wait is over: refused again, the wait doubles
    clock += 1
    assert.deepEqual(await store.placeLocalPacks(), { moved: 0, widened: 0, failed: 1 })
    clock += RefusalBackoff.FIRST_MS
    assert.deepEqual(await store.placeLocalPacks(), { moved: 0, widened: 0, failed: 0 })
    // C makes room: the widening goes through at the end of the doubled wait
    c.refusing = false
    clock += RefusalBackoff.FIRST_MS
    assert.deepEqual(await store.placeLocalPacks(), { moved: 0, widened: 1, failed: 0 })
    store.dropCaches()
    assert.deepEqual(Buffer.from(await store.getPack(id)), pack)
  })

  it('another device of the same person still reads a pack after it was widened and its old shares released', async function () {
    this.timeout(10_000)
    const peers = new Map(['A', 'B', 'C', 'D'].map(p => [p, new PersisterStore(p)]))
    let online = ['A', 'B']
    const directory = { ownPersonId: 'me', candidates: () => online.map(cand), storeFor: (p: string) => peers.get(p) as MemoryShareStore }
    const laptop = new ErasurePackStore(new MemoryShareStore('laptop'), directory, index)
    const { pack, id } = await putNarrow(laptop, index)
    // the desktop finds the pack on friends and records the 1+1 placement it reads it from
    const dir = mkdtempSync(join(tmpdir(), 'p2pbak-eps-desktop-'))
    const desktopIndex = IndexDb.open(join(dir, 'index'))
    try {
      const desktop = new ErasurePackStore(new MemoryShareStore('desktop'), directory, desktopIndex)
      for await (const _ of desktop.listPacks()) { /* the listing finds the holders */ }
      assert.deepEqual(Buffer.from(await desktop.getPack(id)), pack)
      const recorded = desktopIndex.getPlacement(id)
      assert.equal(recorded?.size, 2)
      // the laptop widens it to 1+2 and its old shares are released
      online = ['A', 'B', 'C', 'D']
      assert.deepEqual(await laptop.placeLocalPacks(), { moved: 0, widened: 1, failed: 0 })
      assert.equal(await releaseShares(laptop, () => true), 2)
      // the desktop's next command lists the friends again, then reads from the new holders
      desktop.dropCaches()
      for await (const _ of desktop.listPacks()) { /* as syncIndex does before a command */ }
      assert.deepEqual(Buffer.from(await desktop.getPack(id)), pack)
      assert.deepEqual(desktopIndex.getPlacement(id), recorded, 'the read changed no record')
    } finally {
      await desktopIndex.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('a widening that cannot finish leaves the old stripe and the own copy whole', async function () {
    this.timeout(10_000)
    const d = new GoneStore('D')
    const peers = new Map<string, MemoryShareStore>([['A', new PersisterStore('A')], ['B', new PersisterStore('B')], ['D', d]])
    const local = new MemoryShareStore('local')
    let online = ['A', 'B']
    const store = new ErasurePackStore(local, { ownPersonId: 'me', candidates: () => online.map(cand), storeFor: (p: string) => peers.get(p) as MemoryShareStore }, index, { placementRounds: 1 })
    const { pack, id } = await putNarrow(store, index)
    const old = new Map(index.getPlacement(id))
    // D is counted as online but its puts fail: a 1+2 stripe needs it
    online = ['A', 'B', 'D']
    const r = await store.placeLocalPacks()
    assert.equal(r.widened, 0)
    assert.equal(r.failed, 1)
    assert.deepEqual(index.getPlacement(id), old)
    assert.equal(index.getPack(id)?.m, 1)
    assert.equal(await local.has({ pack: id, index: 0 }), true, 'the own copy stays')
    // the releases queued for the old stripe delete nothing while it is the recorded one
    await releaseShares(store, () => true)
    for (const [i, h] of old) assert.equal(await peers.get(h.slice(5))?.has({ pack: id, index: i }), true)
    // D answers again: the next round widens
    d.gone = false
    assert.deepEqual(await store.placeLocalPacks(), { moved: 0, widened: 1, failed: 0 })
    store.dropCaches()
    assert.deepEqual(Buffer.from(await store.getPack(id)), pack)
  })

  it('a group of two that becomes three: a 1+0 pack gets a second share on the newcomer, keeps its own copy, and survives losing it and the first friend\'s share', async function () {
    this.timeout(10_000)
    const { peers, local, store, pack, id, online } = await onePackOnA(index)
    // one friend: nothing wider to give
    assert.deepEqual(await store.placeLocalPacks(), { moved: 0, widened: 0, failed: 0 })

    online.push('B')
    assert.deepEqual(await store.placeLocalPacks(), { moved: 0, widened: 1, failed: 0 })
    assert.deepEqual({ k: index.getPack(id)?.k, m: index.getPack(id)?.m }, { k: 1, m: 1 })
    const placement = index.getPlacement(id) ?? new Map<number, string>()
    assert.deepEqual([...placement.values()].sort(), ['peer:A', 'peer:B'])
    assert.notEqual(placement.get(0), 'peer:A', 'A held share 0 of the old stripe: the new share 0 goes elsewhere')
    assert.equal(await local.has({ pack: id, index: 0 }), true, 'a 1+1 stripe keeps the own copy')
    assert.equal(await releaseShares(store, () => true), 1, 'A\'s share of the 1+0 stripe is released')
    assert.deepEqual(await store.placeLocalPacks(), { moved: 0, widened: 0, failed: 0 }, 'and it is not widened again')
    // the own copy and A's share lost: B's share alone restores it
    await local.delete({ pack: id, index: 0 })
    for await (const ref of peers.get('A')?.list() ?? []) await peers.get('A')?.delete(ref)
    online.splice(0, online.length, 'B')
    store.dropCaches()
    assert.deepEqual(Buffer.from(await store.getPack(id)), pack)
  })

  it('a 1+0 pack whose own copy is damaged is widened from the friend\'s share, and a sound copy is written here again', async function () {
    this.timeout(10_000)
    const { local, store, pack, id, online } = await onePackOnA(index)
    // one bit of the copy here flips
    const ref = { pack: id, index: 0 }
    const sound = Buffer.from(await local.get(ref))
    const damaged = Buffer.from(sound)
    damaged[damaged.length - 1] = (damaged[damaged.length - 1] as number) ^ 1
    await local.delete(ref)
    await local.put(ref, damaged)
    store.dropCaches()

    online.push('B')
    assert.deepEqual(await store.placeLocalPacks(), { moved: 0, widened: 1, failed: 0 })
    assert.deepEqual({ k: index.getPack(id)?.k, m: index.getPack(id)?.m }, { k: 1, m: 1 })
    assert.deepEqual(Buffer.from(await local.get(ref)), sound, 'the copy here is written again from the friend\'s share')
    assert.deepEqual(await store.placeLocalPacks(), { moved: 0, widened: 0, failed: 0 }, 'and it is not widened again')
    // and the new stripe alone, without the copy here, restores it
    await local.delete(ref)
    store.dropCaches()
    assert.deepEqual(Buffer.from(await store.getPack(id)), pack)
  })
})

/** A group of two: one 5,000-byte pack placed 1+0 on friend A, its own copy here; `online` may be changed in place. */
async function onePackOnA (index: IndexDb): Promise<{ peers: Map<string, PersisterStore>, local: MemoryShareStore, store: ErasurePackStore, pack: Buffer, id: PackId, online: string[] }> {
  const peers = new Map(['A', 'B'].map(p => [p, new PersisterStore(p)]))
  const local = new MemoryShareStore('local')
  const online = ['A']
  const store = new ErasurePackStore(local, { ownPersonId: 'me', candidates: () => online.map(cand), storeFor: (p: string) => peers.get(p) as MemoryShareStore }, index)
  const pack = randomBytes(5000)
  const id = asPackId(contentHash(pack))
  assert.deepEqual(await store.putPack(id, pack), { k: 1, m: 0, ownCopy: true })
  await index.addPack({ id, size: pack.byteLength, blobs: 1, k: 1, m: 0, time: Date.now(), kind: 0 }, [])
  return { peers, local, store, pack, id, online }
}

describe('releaseShares: a pruned pack a snapshot uses again', () => {
  let index: IndexDb
  tempIndex((i) => { index = i })

  it('keeps every share: the deletes wait while the snapshots cannot be read, and once it is needed those queued for holders away now are cancelled too', async () => {
    const peers = new Map(['A', 'B'].map(p => [p, new PersisterStore(p)]))
    const store = new ErasurePackStore(new MemoryShareStore('local'), { ownPersonId: 'me', candidates: () => ['A', 'B'].map(cand), storeFor: (p: string) => peers.get(p) as MemoryShareStore }, index, { scheme: { k: 1, m: 1 } })
    const pack = randomBytes(4000)
    const id = asPackId(contentHash(pack))
    await store.putPack(id, pack)
    const placement = new Map(index.getPlacement(id))
    // a prune queued the deletes of both shares (the pack is no longer indexed)
    for (const [i, h] of placement) await index.audit.addRelease(h.slice(5), { pack: id, index: i })
    // the snapshots cannot all be read this round (a friend's listing broke off): every delete waits
    assert.equal(await releaseShares(store, () => true, { stillNeeded: async () => async () => undefined }), 0)
    assert.equal([...index.audit.pendingReleases().values()].flat().length, 2, 'both deletes still queued')
    for (const [i, h] of placement) assert.equal(await peers.get(h.slice(5))?.has({ pack: id, index: i }), true, `${h} keeps share ${i}`)
    // a snapshot written since uses the pack again; only A answers this round
    assert.ok([...placement].some(([, h]) => h === 'peer:A'))
    assert.equal(await releaseShares(store, peer => peer === 'A', { stillNeeded: async () => async () => true }), 0)
    assert.equal([...index.audit.pendingReleases().values()].flat().length, 0, 'no delete of the pack stays queued')
    // the pack is indexed again (its revival); B answers: nothing of it is deleted
    await index.addPack({ id, size: pack.byteLength, blobs: 1, k: 1, m: 1, time: Date.now(), kind: 0 }, [])
    assert.equal(await releaseShares(store, () => true), 0)
    for (const [i, h] of placement) assert.equal(await peers.get(h.slice(5))?.has({ pack: id, index: i }), true, `${h} keeps share ${i}`)
  })
})

describe('repairPack: a peer that refuses the rebuilt share', () => {
  let index: IndexDb
  tempIndex((i) => { index = i })

  it('is left out and the share planned again on another friend (a share of another device\'s stripe there, a full quota)', async () => {
    class OtherStripeHeld extends PersisterStore {
      override async put (ref: ShareRef): Promise<void> { throw new OtherStripeError(`${this.id} holds share ${ref.index} of this pack of a 1+2 stripe`) }
    }
    const peers = new Map<string, MemoryShareStore>([['A', new PersisterStore('A')], ['B', new PersisterStore('B')], ['C', new OtherStripeHeld('C')], ['D', new PersisterStore('D')]])
    let online = ['A', 'B']
    const store = new ErasurePackStore(new MemoryShareStore('local'), { ownPersonId: 'me', candidates: () => online.map(cand), storeFor: (p: string) => peers.get(p) as MemoryShareStore }, index, { scheme: { k: 1, m: 1 } })
    const pack = randomBytes(4000)
    const id = asPackId(contentHash(pack))
    await store.putPack(id, pack)
    await index.addPack({ id, size: pack.byteLength, blobs: 1, k: 1, m: 1, time: Date.now(), kind: 0 }, [])
    await store.localPacks.deletePack(id) // no own copy: the rebuild reads the good share
    const placement = new Map(index.getPlacement(id))
    const [lostIndex, lostHolder] = [...placement][1] as [number, string]
    await peers.get(lostHolder.slice(5))?.delete({ pack: id, index: lostIndex })
    // C comes first by peer id, and refuses; D can take it
    online = ['A', 'B', 'C', 'D']
    assert.equal(await repairPack(store, id, [lostIndex]), 1)
    assert.equal(index.getPlacement(id)?.get(lostIndex), 'peer:D')
    assert.equal(await peers.get('D')?.has({ pack: id, index: lostIndex }), true)
  })

  it('a friend with no room is left out for a while, by repair and by placement alike (share-placement.ts NO_ROOM_WAIT_MS)', async () => {
    class FullStore extends PersisterStore {
      puts = 0
      override async put (ref: ShareRef): Promise<void> { this.puts++; throw new RefusedError(`put on ${this.id}: refused: the persister's disk is full`, { noRoom: true }) }
    }
    const full = new FullStore('C')
    const peers = new Map<string, MemoryShareStore>([['A', new PersisterStore('A')], ['B', new PersisterStore('B')], ['C', full], ['D', new PersisterStore('D')]])
    let online = ['A', 'B']
    let now = 1_800_000_000_000
    const store = new ErasurePackStore(new MemoryShareStore('local'), { ownPersonId: 'me', candidates: () => online.map(cand), storeFor: (p: string) => peers.get(p) as MemoryShareStore }, index, { scheme: { k: 1, m: 1 }, now: () => now })
    const lose = async (): Promise<{ id: PackId, lostIndex: number }> => {
      const pack = randomBytes(4000)
      const id = asPackId(contentHash(pack))
      await store.putPack(id, pack)
      await index.addPack({ id, size: pack.byteLength, blobs: 1, k: 1, m: 1, time: now, kind: 0 }, [])
      await store.localPacks.deletePack(id)
      const [lostIndex, lostHolder] = [...(index.getPlacement(id) ?? [])][1] as [number, string]
      await peers.get(lostHolder.slice(5))?.delete({ pack: id, index: lostIndex })
      return { id, lostIndex }
    }
    const first = await lose()
    // C comes first by peer id and refuses for want of room; D takes the share
    online = ['A', 'B', 'C', 'D']
    assert.equal(await repairPack(store, first.id, [first.lostIndex]), 1)
    assert.equal(index.getPlacement(first.id)?.get(first.lostIndex), 'peer:D')
    assert.equal(full.puts, 1)
    assert.equal(store.eligibleCandidates().some(c => c.peerId === 'C'), false, 'C gets no share for a while')
    // the next repair within the wait does not ask C again
    online = ['A', 'B']
    const second = await lose()
    online = ['A', 'B', 'C', 'D']
    assert.equal(await repairPack(store, second.id, [second.lostIndex]), 1)
    assert.equal(full.puts, 1, 'C was not asked again within NO_ROOM_WAIT_MS')
    now += NO_ROOM_WAIT_MS
    assert.equal(store.eligibleCandidates().some(c => c.peerId === 'C'), true, 'after the wait C may get shares again')
  })

})
