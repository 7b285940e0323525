import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { contentHash } from '../../../src/crypto/index.js'
import { asPackId, type PackId } from '../../../src/ids.js'
import { ErasurePackStore, encodeShares } from '../../../src/repo/index.js'
import { Repairer, recordProbes } from '../../../src/repair/index.js'
import { IndexDb, MemoryShareStore } from '../../../src/store/index.js'
import { toHex } from '../../../src/util/bytes.js'

const HOUR = 3600_000

describe('repair/repairer: lazy repair with an offline grace', function () {
  this.timeout(20_000)
  let dir: string
  let index: IndexDb
  let now: number
  const peers = ['p1', 'p2', 'p3', 'p4', 'p5'].map(p => ({ id: p, store: new MemoryShareStore(), online: true }))
  let group: ErasurePackStore
  let repairer: Repairer
  let pack: PackId
  let bytes: Uint8Array

  const holders = (): Map<number, string> => index.getPlacement(pack) as Map<number, string>
  const peer = (id: string): typeof peers[number] => peers.find(p => p.id === id) as typeof peers[number]
  const probe = async (): Promise<void> => { await recordProbes(index.audit, new Map(peers.map(p => [p.id, p.online])), now) }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'p2pbak-repairer-'))
    index = IndexDb.open(dir)
    now = Date.now()
    group = new ErasurePackStore(new MemoryShareStore(), {
      ownPersonId: 'me',
      candidates: () => peers.map(p => ({ peerId: p.id, personId: `person-${p.id}`, online: p.online, freeBytes: 1e9, reliability: 1 })),
      storeFor: (id) => {
        const p = peer(id)
        // an offline peer's store answers nothing
        return new Proxy(p.store, { get: (t, k, r) => (p.online || typeof Reflect.get(t, k, r) !== 'function' ? Reflect.get(t, k, r) : async () => { throw new Error(`${id} is offline`) }) })
      }
    }, index, { scheme: { k: 2, m: 2 }, now: () => now })
    repairer = new Repairer(group, { online: (id) => peer(id).online, isMember: () => true }, { policy: { offlineGraceMs: 24 * HOUR }, now: () => now })
    bytes = new Uint8Array(randomBytes(50_000))
    pack = asPackId(contentHash(bytes))
    await index.addPack({ id: pack, size: bytes.byteLength, blobs: 1, k: 2, m: 2, time: now, kind: 0 }, [])
    await group.putPack(pack, bytes)
    await probe()
  })
  after(async () => {
    await index.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('a holder asleep overnight, then back within the grace, costs no upload; one gone past the grace is replaced', async () => {
    const sleeper = (holders().get(0) as string).slice(5)
    peer(sleeper).online = false
    for (let h = 0; h < 12; h++) { now += HOUR; await probe() }
    assert.deepEqual(repairer.plan(), [])
    assert.equal((await repairer.round()).repairedShares, 0)
    peer(sleeper).online = true
    now += HOUR
    await probe()
    // flapping: away 20 h, back, away 20 h again: never past the grace in one stretch
    for (const online of [false, true, false]) {
      peer(sleeper).online = online
      for (let h = 0; h < 20; h++) { now += HOUR; await probe() }
      assert.equal((await repairer.round()).repairedShares, 0)
    }
    for (let h = 0; h < 5; h++) { now += HOUR; await probe() }
    const r = await repairer.round()
    assert.equal(r.repairedShares, 1)
    assert.notEqual(holders().get(0), `peer:${sleeper}`)
    // four distinct people still hold the stripe
    assert.equal(new Set(holders().values()).size, 4)
    // the sleeper returns: its stale copy is released, nothing is uploaded again
    peer(sleeper).online = true
    now += HOUR
    await probe()
    const back = await repairer.round()
    assert.equal(back.repairedShares, 0)
    assert.equal(back.released, 1)
    assert.equal(await peer(sleeper).store.has({ pack, index: 0 }), false)
    assert.equal((await repairer.round()).released, 0)
  })

  it('a share that failed its audit is rebuilt at once, byte-identical, from the others', async () => {
    const holder = (holders().get(3) as string).slice(5)
    const a = index.audit.getShare(pack, 3)
    assert.ok(a !== undefined)
    await index.audit.putShare(pack, 3, { ...a, state: 'failed', reason: 'test' })
    const original = await peer(holder).store.get({ pack, index: 3 })
    const r = await repairer.round()
    assert.equal(r.repairedShares, 1)
    const next = (holders().get(3) as string).slice(5)
    assert.notEqual(next, holder)
    assert.equal(toHex(await peer(next).store.get({ pack, index: 3 })), toHex(original))
    assert.equal(index.audit.getShare(pack, 3)?.state, 'unknown', 'the new share awaits its first audit')
    assert.equal(toHex(await group.getPack(pack)), toHex(bytes))
  })

  it('a pack no snapshot uses is not repaired', async () => {
    const a = index.audit.getShare(pack, 1)
    assert.ok(a !== undefined)
    await index.audit.putShare(pack, 1, { ...a, state: 'failed', reason: 'test' })
    assert.equal((await repairer.round(() => false)).needed, 0)
    assert.equal((await repairer.round((hex) => hex === toHex(pack))).repairedShares, 1)
  })

  it('a pack the index did not know (a backup killed between its puts and its index write) is recovered with every holder, and the index nobody holds is rebuilt', async () => {
    for (const p of peers) p.online = true
    const lost = new Uint8Array(randomBytes(30_000))
    const id = asPackId(contentHash(lost))
    const shares = await encodeShares(id, lost, 2, 2)
    // shares 0, 1 and 2 landed on three friends; the put of share 3 never did
    for (const i of [0, 1, 2]) await (peers[i + 1] as typeof peers[number]).store.put({ pack: id, index: i }, shares[i] as Uint8Array)
    const found: string[] = []
    for await (const p of group.listPacks()) found.push(toHex(p))
    assert.ok(found.includes(toHex(id)))
    assert.equal(toHex(await group.getPack(id)), toHex(lost))
    // the decode read two shares; the third holder is on the placement too (it was two before)
    assert.deepEqual([...(index.getPlacement(id) ?? [])].sort(), [[0, 'peer:p2'], [1, 'peer:p3'], [2, 'peer:p4']])
    await index.addPack({ id, size: lost.byteLength, blobs: 1, k: 2, m: 2, time: now, kind: 0 }, [])
    assert.deepEqual(repairer.plan().find(n => toHex(n.pack) === toHex(id))?.bad, [{ index: 3, peer: '', reason: 'missing' }])
    const r = await repairer.round((hex) => hex === toHex(id))
    assert.equal(r.repairedShares, 1)
    const after = index.getPlacement(id) as Map<number, string>
    assert.equal(after.size, 4)
    assert.equal(new Set(after.values()).size, 4, 'four different friends hold the stripe')
    assert.equal(toHex(await (peer((after.get(3) as string).slice(5))).store.get({ pack: id, index: 3 })), toHex(shares[3] as Uint8Array))
    assert.deepEqual(repairer.plan((hex) => hex === toHex(id)), [])
  })
})
