import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { contentHash } from '../../../src/crypto/index.js'
import { MemoryShareStore, IndexDb, type AbortOptions, type ShareRef } from '../../../src/store/index.js'
import { PlacementFailedError, RefusedError } from '../../../src/errors.js'
import { ErasurePackStore } from '../../../src/repo/index.js'
import { NO_ROOM_WAIT_MS } from '../../../src/repo/erasure-pack-store.js'
import { asPackId } from '../../../src/ids.js'
import { GoneStore, cand, putNarrow, tempIndex } from './erasure-pack-store.fixtures.js'

describe('ErasurePackStore.replaceShares', () => {
  let index: IndexDb
  tempIndex((i) => { index = i })

  it('answers (the pack is not repaired) when the removed member was the only holder of a pack', async function () {
    this.timeout(5_000)
    const peers = new Map([['A', new MemoryShareStore('A')], ['B', new MemoryShareStore('B')]])
    let candidates = [cand('A')]
    const store = new ErasurePackStore(new MemoryShareStore('local'), {
      ownPersonId: 'me',
      candidates: () => candidates,
      storeFor: (p: string) => peers.get(p) as MemoryShareStore
    }, index, { repairFetchTimeoutMs: 1000 })
    // placed while one friend was in the group: k = 1, m = 0, its only share on A, and a copy kept here
    const pack = randomBytes(5000)
    const id = asPackId(contentHash(pack))
    assert.deepEqual(await store.putPack(id, pack), { k: 1, m: 0, ownCopy: true })
    await index.addPack({ id, size: pack.byteLength, blobs: 1, k: 1, m: 0, time: Date.now(), kind: 0 }, [])
    // the copy lost too (a disk replaced): A is removed and nobody else holds a share of the pack, so
    // it cannot be repaired, but the call must return
    await store.localPacks.deletePack(id)
    candidates = [cand('B')]
    const result = await store.replaceShares(p => p === 'A')
    assert.deepEqual(result, { packs: 0, shares: 0, failed: 1 })
  })

  it('a stripe that survives one loss only keeps a copy here, which rebuilds it when its holders are gone; delete removes it', async function () {
    this.timeout(5_000)
    const peers = new Map(['A', 'B', 'C', 'D'].map(p => [p, new MemoryShareStore(p)]))
    let candidates = [cand('A'), cand('B')]
    const store = new ErasurePackStore(new MemoryShareStore('local'), {
      ownPersonId: 'me',
      candidates: () => candidates,
      storeFor: (p: string) => peers.get(p) as MemoryShareStore
    }, index, { repairFetchTimeoutMs: 1000 })
    const { pack, id } = await putNarrow(store, index)
    assert.ok(await store.localPacks.hasPack(id))
    // both holders leave while this node was away: the copy rebuilds both shares on the newcomers
    candidates = [cand('C'), cand('D')]
    assert.deepEqual(await store.replaceShares(p => p === 'A' || p === 'B'), { packs: 1, shares: 2, failed: 0 })
    assert.deepEqual([...(index.getPlacement(id) ?? new Map())].sort(), [[0, 'peer:C'], [1, 'peer:D']])
    store.dropCaches()
    assert.deepEqual(Buffer.from(await store.getPack(id)), pack)
    // three friends: 1+2, no copy here
    candidates = [cand('B'), cand('C'), cand('D')]
    const other = randomBytes(3000)
    const otherId = asPackId(contentHash(other))
    assert.deepEqual(await store.putPack(otherId, other), { k: 1, m: 2 })
    assert.equal(await store.localPacks.hasPack(otherId), false)
    // deleting the pack deletes the copy with the shares
    await store.deletePack(id)
    assert.equal(await store.localPacks.hasPack(id), false)
    assert.equal(await peers.get('C')?.has({ pack: id, index: 0 }), false)
  })
})

describe('ErasurePackStore.putPack when a friend goes away during the job', () => {
  let index: IndexDb
  tempIndex((i) => { index = i })

  it('keeps the pack on this disk, says why in the summary, and moves it to friends once they answer', async function () {
    this.timeout(10_000)
    // three friends, each holding one share of every stripe (1 + 2): nobody can replace C
    const c = new GoneStore('C')
    const peers = new Map<string, MemoryShareStore>([['A', new MemoryShareStore('A')], ['B', new MemoryShareStore('B')], ['C', c]])
    const local = new MemoryShareStore('local')
    const store = new ErasurePackStore(local, { ownPersonId: 'me', candidates: () => ['A', 'B', 'C'].map(cand), storeFor: (p: string) => peers.get(p) as MemoryShareStore }, index, { scheme: { k: 1, m: 2 } })
    const pack = randomBytes(5000)
    const id = asPackId(contentHash(pack))
    const { tally, end } = store.openTally()
    assert.deepEqual(await store.putPack(id, pack), { k: 1, m: 0 })
    end()
    const summary = tally.summary()
    assert.equal(summary.local, 1)
    assert.match(summary.localReason ?? '', /only 2 of 3 shares .* could be placed \(no answer from …C\); it moves to friends when they answer again/)
    assert.equal(index.getPlacement(id)?.get(0), 'local')
    // the shares placed on A and B were taken back: they must not use the friends' quota
    for await (const ref of (peers.get('A') as MemoryShareStore).list()) assert.fail(`A still holds share ${ref.index}`)
    assert.deepEqual(await store.getPack(id), new Uint8Array(pack))
    await index.addPack({ id, size: pack.byteLength, blobs: 1, k: 1, m: 0, time: Date.now(), kind: 0 }, [])

    // moving local packs never keeps them local: it fails this round and tries again next time
    assert.deepEqual(await store.placeLocalPacks(), { moved: 0, widened: 0, failed: 1 })
    c.gone = false
    assert.deepEqual(await store.placeLocalPacks(), { moved: 1, widened: 0, failed: 0 })
    assert.equal(index.getPlacement(id)?.size, 3)
    assert.equal(await local.has({ pack: id, index: 0 }), false)
    assert.deepEqual(await store.getPack(id), new Uint8Array(pack))
  })

  it('a persister that refuses on purpose (reciprocity, quota) fails the backup with its reason: waiting would not help', async () => {
    class RefusingStore extends MemoryShareStore {
      override async put (): Promise<void> { throw new RefusedError('reciprocity limit reached: run p2pbak contribute SIZE') }
    }
    const peers = new Map<string, MemoryShareStore>([['A', new MemoryShareStore('A')], ['B', new RefusingStore('B')]])
    const store = new ErasurePackStore(new MemoryShareStore('local'), { ownPersonId: 'me', candidates: () => ['A', 'B'].map(cand), storeFor: (p: string) => peers.get(p) as MemoryShareStore }, index, { scheme: { k: 1, m: 1 } })
    const pack = randomBytes(3000)
    await assert.rejects(store.putPack(asPackId(contentHash(pack)), pack),
      (err: unknown) => err instanceof PlacementFailedError && err.refused && err.errors.some(e => /reciprocity limit reached/.test(e.error)))
  })

  it('a persister with no room (disk full, quota used up) does not fail the backup: the pack stays on this disk, the summary says why, and it moves once there is room', async () => {
    let full = true
    class FullStore extends MemoryShareStore {
      override async put (ref: ShareRef, data: Uint8Array, options?: AbortOptions): Promise<void> {
        if (full) throw new RefusedError('put on B: refused: the persister\'s disk is full', { noRoom: true })
        await super.put(ref, data, options)
      }
    }
    const local = new MemoryShareStore('local')
    const peers = new Map<string, MemoryShareStore>([['A', new MemoryShareStore('A')], ['B', new FullStore('B')]])
    let now = 1_800_000_000_000
    const store = new ErasurePackStore(local, { ownPersonId: 'me', candidates: () => ['A', 'B'].map(cand), storeFor: (p: string) => peers.get(p) as MemoryShareStore }, index, { scheme: { k: 1, m: 1 }, now: () => now })
    const pack = randomBytes(3000)
    const id = asPackId(contentHash(pack))
    const { tally, end } = store.openTally()
    await store.putPack(id, pack)
    end()
    const summary = tally.summary()
    assert.equal(summary.local, 1)
    assert.match(summary.localReason ?? '', /\(no room on …B: disk full or quota used up\); it moves to friends when they have room or answer again/)
    assert.equal(await peers.get('A')?.has({ pack: id, index: 0 }) ?? true, false, 'the share placed on A was taken back')
    assert.deepEqual(await store.getPack(id), new Uint8Array(pack))
    await index.addPack({ id, size: pack.byteLength, blobs: 1, k: 1, m: 0, time: Date.now(), kind: 0 }, [])
    assert.equal(store.candidatesWithRoom(pack.byteLength).some(c => c.peerId === 'B'), false, 'B gets no share for a while')
    assert.deepEqual(await store.placeLocalPacks(), { moved: 0, widened: 0, failed: 0 }, 'only A left: the pack stays here')
    full = false
    now += NO_ROOM_WAIT_MS
    assert.deepEqual(await store.placeLocalPacks(), { moved: 1, widened: 0, failed: 0 })
    assert.equal(index.getPlacement(id)?.size, 2)
  })

  it('in a group with one other person, a pack kept here while that friend had no room goes to it once it has room, and the copy here stays (1+0)', async () => {
    let full = true
    class FullStore extends MemoryShareStore {
      override async put (ref: ShareRef, data: Uint8Array, options?: AbortOptions): Promise<void> {
        if (full) throw new RefusedError('put on A: refused: the persister\'s disk is full', { noRoom: true })
        await super.put(ref, data, options)
      }
    }
    const a = new FullStore('A')
    let now = 1_800_000_000_000
    const store = new ErasurePackStore(new MemoryShareStore('local'), { ownPersonId: 'me', otherPeople: () => 1, candidates: () => [cand('A')], storeFor: () => a }, index, { now: () => now })
    const pack = randomBytes(3000)
    const id = asPackId(contentHash(pack))
    await store.putPack(id, pack)
    assert.equal(index.getPlacement(id)?.get(0), 'local')
    await index.addPack({ id, size: pack.byteLength, blobs: 1, k: 1, m: 0, time: now, kind: 0 }, [])
    full = false
    assert.deepEqual(await store.placeLocalPacks(), { moved: 0, widened: 0, failed: 0 }, 'A refused for want of room a moment ago')
    now += NO_ROOM_WAIT_MS
    assert.deepEqual(await store.placeLocalPacks(), { moved: 1, widened: 0, failed: 0 })
    assert.equal(index.getPlacement(id)?.get(0), 'peer:A')
    assert.equal(await a.has({ pack: id, index: 0 }), true)
    assert.equal(await store.hasOwnCopy(id), true, 'the copy here stays beside a 1+0 stripe')
    assert.deepEqual(await store.getPack(id), new Uint8Array(pack))
  })

  it('says why packs on this disk stay there at the next round (status): no room, one of several friends with room, or nothing once they move', async () => {
    const MiB = 1 << 20
    let free: Record<string, number> = { A: 0, B: 0 }
    const store = new ErasurePackStore(new MemoryShareStore('local'), {
      ownPersonId: 'me', otherPeople: () => 2, whyLocal: () => null,
      candidates: () => ['A', 'B'].map(p => ({ ...cand(p), freeBytes: free[p] as number, provenBytes: 1 << 30 })),
      storeFor: (p: string) => new MemoryShareStore(p)
    }, index)
    const pack = randomBytes(3 * MiB)
    const id = asPackId(contentHash(pack))
    await store.putPack(id, pack)
    await index.addPack({ id, size: pack.byteLength, blobs: 1, k: 1, m: 0, time: Date.now(), kind: 0 }, [])
    assert.match(store.whyStaysLocal() ?? '', /the friends who answer have no room for a pack of 3\.0 MiB now/)
    free = { A: 64 * MiB, B: MiB }
    assert.match(store.whyStaysLocal() ?? '', /only one of the 2 friends who offer space answers with room now: packs move once two do/)
    free = { A: 64 * MiB, B: 64 * MiB }
    assert.equal(store.whyStaysLocal(), null)
  })

  it('fails with the friends\' errors when told not to keep the pack local', async () => {
    const peers = new Map<string, MemoryShareStore>([['A', new MemoryShareStore('A')], ['B', new GoneStore('B')]])
    const store = new ErasurePackStore(new MemoryShareStore('local'), { ownPersonId: 'me', candidates: () => ['A', 'B'].map(cand), storeFor: (p: string) => peers.get(p) as MemoryShareStore }, index, { scheme: { k: 1, m: 1 } })
    const pack = randomBytes(3000)
    await assert.rejects(store.putPack(asPackId(contentHash(pack)), pack, { keepLocalOnFailure: false }),
      (err: unknown) => err instanceof PlacementFailedError && err.errors.some(e => e.peer === 'B' && /ECONNREFUSED/.test(e.error)))
  })
})
