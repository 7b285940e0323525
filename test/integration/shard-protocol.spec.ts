/**
 * /p2pbak/shard/1.0.0 between real libp2p nodes on 127.0.0.1: the ShareStore compliance suite run
 * against a RemoteShareStore (the same suite the local store passes), then what a persister must
 * refuse: strangers, other people's namespaces, a write-only device's deletes and overwrites, and
 * unsigned, forged or stale deletes. Oversized bodies, malformed headers, rate limits and a server
 * that stalls or vanishes are in shard-limits.spec.ts; the nodes both share, in shard-protocol.fixtures.ts.
 */
import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import { errnoCode } from '../../src/errors.js'
import { newDeviceKey } from '../../src/node/libp2p-node.js'
import { exchange } from '../../src/protocols/framing.js'
import { DELETE_MAX_SKEW_MS, SHARD_PROTOCOL, deleteMessage } from '../../src/protocols/shard/index.js'
import type { LocalShareStore } from '../../src/store/index.js'
import { toHex } from '../../src/util/bytes.js'
import { collect, refKey, rejectsWithCode, seededBytes, shareStoreCompliance, testRef } from '../compliance/share-store.js'
import { assertSameBytes, rid, shardLab } from './shard-protocol.fixtures.js'

describe('integration: the shard protocol', function () {
  this.timeout(30_000)
  const lab = shardLab()
  const { namespaces, storeForCalls, signer, freshStore, client, raw } = lab

  shareStoreCompliance('RemoteShareStore over /p2pbak/shard/1.0.0 to a LocalShareStore', async () => {
    const local = await freshStore()
    namespaces.set(lab.alice.userId, local)
    const store = client(lab.aliceDevice, lab.persister, lab.alice)
    return {
      store,
      // closing the client closes the streams it kept for its next request
      teardown: async () => { await store.close(); namespaces.delete(lab.alice.userId); await local.close() }
    }
  }, { refusesEmpty: true })

  describe('a write-only device (its certificate says so)', () => {
    let aliceLocal: LocalShareStore
    const ref = testRef(80)
    beforeEach(async () => {
      aliceLocal = await freshStore()
      namespaces.set(lab.alice.userId, aliceLocal)
      await aliceLocal.put(ref, seededBytes(80, 1000))
      await aliceLocal.putRecord(rid(80), seededBytes(81, 50))
    })
    afterEach(async () => { namespaces.delete(lab.alice.userId); await aliceLocal.close() })

    it('adds shares and records, and puts identical bytes again, into its person\'s namespace', async () => {
      // it even holds a valid signature of alice's user key: it is still only a writer
      const w = client(lab.aliceWriteOnly, lab.persister, lab.alice)
      await w.put(testRef(81), seededBytes(82, 500))
      await w.put(ref, seededBytes(80, 1000))
      await w.putRecord(rid(82), seededBytes(83, 20))
      await w.putRecord(rid(80), seededBytes(81, 50))
      assertSameBytes(await aliceLocal.get(testRef(81)), seededBytes(82, 500))
      assertSameBytes(await aliceLocal.getRecord(rid(82)), seededBytes(83, 20))
    })

    it('cannot delete or overwrite a share or a record, even with a valid signature of the owner', async () => {
      const w = client(lab.aliceWriteOnly, lab.persister, lab.alice)
      await rejectsWithCode(w.delete(ref), 'ERR_REFUSED')
      await rejectsWithCode(w.deleteRecord(rid(80)), 'ERR_REFUSED')
      await rejectsWithCode(w.put(ref, seededBytes(99, 1000)), 'ERR_REFUSED')
      await rejectsWithCode(w.putRecord(rid(80), seededBytes(98, 50)), 'ERR_REFUSED')
      const ts = Date.now()
      const message = deleteMessage({ kind: 'share', owner: lab.alice.signPublicKey, persister: lab.persister.peerId.toMultihash().bytes, id: ref.pack, index: ref.index }, ts)
      const res = await exchange(lab.aliceWriteOnly, multiaddr(lab.persister.getMultiaddrs()[0]?.toString() ?? ''), SHARD_PROTOCOL, { op: 'delete', pack: toHex(ref.pack), index: ref.index, ts, sig: signer(lab.alice)(message) }, undefined, { timeoutMs: 10_000 })
      assert.equal(res.header.status, 'REFUSED')
      assert.match(String(res.header.error), /write-only/)
      assertSameBytes(await aliceLocal.get(ref), seededBytes(80, 1000))
      assertSameBytes(await aliceLocal.getRecord(rid(80)), seededBytes(81, 50))
      // the same requests from alice's full device go through
      const a = client(lab.aliceDevice, lab.persister, lab.alice)
      await a.put(ref, seededBytes(99, 1000))
      await a.delete(ref)
      await a.deleteRecord(rid(80))
      assert.equal(await aliceLocal.has(ref), false)
      assert.equal(await aliceLocal.hasRecord(rid(80)), false)
    })
  })

  describe('authorization and namespaces', () => {
    let aliceLocal: LocalShareStore
    let bobLocal: LocalShareStore
    beforeEach(async () => {
      aliceLocal = await freshStore()
      bobLocal = await freshStore()
      namespaces.set(lab.alice.userId, aliceLocal)
      namespaces.set(lab.bob.userId, bobLocal)
      storeForCalls.length = 0
    })
    afterEach(async () => {
      namespaces.delete(lab.alice.userId)
      namespaces.delete(lab.bob.userId)
      await aliceLocal.close()
      await bobLocal.close()
    })

    it('a peer that is not a member gets NOT_MEMBER for every op, and no store is ever touched', async () => {
      await aliceLocal.put(testRef(1), seededBytes(1, 100))
      await aliceLocal.putRecord(rid(1), seededBytes(2, 10))
      // the stranger even claims to be alice: only the authenticated peer id counts
      const x = client(lab.stranger, lab.persister, lab.alice)
      const ref = testRef(1)
      const attempts: Array<[string, () => Promise<unknown>]> = [
        ['put', async () => { await x.put(testRef(2), seededBytes(3, 10)) }],
        ['get', async () => await x.get(ref)],
        ['getRange', async () => await x.getRange(ref, 0, 10)],
        ['has', async () => await x.has(ref)],
        ['size', async () => await x.size(ref)],
        ['delete', async () => { await x.delete(ref) }],
        ['list', async () => await collect(x.list())],
        ['putRecord', async () => { await x.putRecord(rid(2), seededBytes(4, 10)) }],
        ['getRecord', async () => await x.getRecord(rid(1))],
        ['hasRecord', async () => await x.hasRecord(rid(1))],
        ['deleteRecord', async () => { await x.deleteRecord(rid(1)) }],
        ['listRecords', async () => await collect(x.listRecords())],
        ['usage', async () => await x.usage()]
      ]
      for (const [name, attempt] of attempts) {
        await assert.rejects(attempt(), (err: unknown) => { assert.equal(errnoCode(err), 'ERR_NOT_MEMBER', name); return true })
      }
      // malformed requests too: a stranger learns nothing, not even what is valid
      for (const header of [{ op: 'nope' }, { op: 'get', pack: 'zz', index: 0 }, {}]) {
        assert.equal((await raw(lab.stranger, lab.persister, header)).status, 'NOT_MEMBER')
      }
      assert.deepEqual(storeForCalls, [])
      assert.deepEqual((await collect(aliceLocal.list())).map(refKey), [refKey(ref)])
      assert.deepEqual(await collect(aliceLocal.listRecords()), [rid(1)])
      assert.deepEqual(await collect(bobLocal.list()), [])
    })

    it("member B can neither see, list, read nor delete member A's shares and records", async () => {
      const a = client(lab.aliceDevice, lab.persister, lab.alice)
      const b = client(lab.bobDevice, lab.persister, lab.bob)
      await a.put(testRef(5, 2), seededBytes(5, 300))
      await a.putRecord(rid(5), seededBytes(6, 40))
      assert.equal(await b.has(testRef(5, 2)), false)
      await rejectsWithCode(b.get(testRef(5, 2)), 'ERR_NOT_FOUND')
      await rejectsWithCode(b.size(testRef(5, 2)), 'ERR_NOT_FOUND')
      await rejectsWithCode(b.getRecord(rid(5)), 'ERR_NOT_FOUND')
      assert.deepEqual(await collect(b.list()), [])
      assert.deepEqual(await collect(b.listRecords()), [])
      assert.deepEqual(await b.usage(), { shares: 0, bytes: 0 })
      await b.delete(testRef(5, 2)) // validly signed by bob: acts on bob's (empty) namespace only
      await b.deleteRecord(rid(5))
      // B's own put of the same name lands in B's namespace and leaves A's bytes alone
      await b.put(testRef(5, 2), seededBytes(7, 10))
      assertSameBytes(await a.get(testRef(5, 2)), seededBytes(5, 300))
      assertSameBytes(await aliceLocal.getRecord(rid(5)), seededBytes(6, 40))
      assertSameBytes(await bobLocal.get(testRef(5, 2)), seededBytes(7, 10))
      assert.deepEqual([...new Set(storeForCalls)].sort(), [lab.alice.userId, lab.bob.userId].sort())
    })

    it('lists page through the cursor: every entry exactly once at any page size', async () => {
      const a = client(lab.aliceDevice, lab.persister, lab.alice, { listPageSize: 7 })
      const refs = Array.from({ length: 30 }, (_, i) => testRef(40 + (i % 11), i))
      for (const ref of refs) await aliceLocal.put(ref, seededBytes(ref.index, 5))
      for (let i = 0; i < 12; i++) await aliceLocal.putRecord(rid(100 + i), seededBytes(i, 5))
      const listed = (await collect(a.list())).map(refKey)
      assert.equal(listed.length, 30)
      assert.deepEqual([...listed].sort(), refs.map(refKey).sort())
      const one = client(lab.aliceDevice, lab.persister, lab.alice, { listPageSize: 1 })
      assert.deepEqual((await collect(one.listRecords())).map(toHex).sort(), Array.from({ length: 12 }, (_, i) => toHex(rid(100 + i))).sort())
    })
  })

  describe('deletes need a fresh signature by the owner\'s user key', () => {
    let aliceLocal: LocalShareStore
    const ref = testRef(60, 4)
    beforeEach(async () => {
      aliceLocal = await freshStore()
      namespaces.set(lab.alice.userId, aliceLocal)
      await aliceLocal.put(ref, seededBytes(60, 1000))
      await aliceLocal.putRecord(rid(60), seededBytes(61, 50))
    })
    afterEach(async () => { namespaces.delete(lab.alice.userId); await aliceLocal.close() })

    async function assertKept (): Promise<void> {
      assert.deepEqual(await aliceLocal.get(ref), seededBytes(60, 1000))
      assert.equal(await aliceLocal.hasRecord(rid(60)), true)
    }

    it('a valid signature deletes', async () => {
      const a = client(lab.aliceDevice, lab.persister, lab.alice)
      await a.delete(ref)
      await a.deleteRecord(rid(60))
      assert.equal(await aliceLocal.has(ref), false)
      assert.equal(await aliceLocal.hasRecord(rid(60)), false)
    })

    it('a signature by another key is refused and the share stays', async () => {
      const forged = client(lab.aliceDevice, lab.persister, lab.alice, { signDelete: signer(lab.mallory) })
      await rejectsWithCode(forged.delete(ref), 'ERR_REFUSED')
      await rejectsWithCode(forged.deleteRecord(rid(60)), 'ERR_REFUSED')
      await assertKept()
    })

    it("the device's own libp2p key is not enough", async () => {
      const ts = Date.now()
      const message = deleteMessage({ kind: 'share', owner: lab.alice.signPublicKey, persister: lab.persister.peerId.toMultihash().bytes, id: ref.pack, index: ref.index }, ts)
      const devKey = await newDeviceKey()
      const sig = Buffer.from(await devKey.sign(message)).toString('base64')
      assert.equal((await raw(lab.aliceDevice, lab.persister, { op: 'delete', pack: toHex(ref.pack), index: ref.index, ts, sig })).status, 'REFUSED')
      await assertKept()
    })

    it('a stale or future timestamp is refused, even with a valid signature', async () => {
      for (const skew of [-(DELETE_MAX_SKEW_MS + 60_000), DELETE_MAX_SKEW_MS + 60_000]) {
        const a = client(lab.aliceDevice, lab.persister, lab.alice, { now: () => Date.now() + skew })
        await rejectsWithCode(a.delete(ref), 'ERR_REFUSED')
        await rejectsWithCode(a.deleteRecord(rid(60)), 'ERR_REFUSED')
      }
      await assertKept()
    })

    it('a signature over another share, index or persister is refused (no replay)', async () => {
      const ts = Date.now()
      const sign = signer(lab.alice)
      const target = { owner: lab.alice.signPublicKey, persister: lab.persister.peerId.toMultihash().bytes }
      const other = [
        deleteMessage({ ...target, kind: 'share', id: ref.pack, index: ref.index + 1 }, ts),
        deleteMessage({ ...target, kind: 'share', id: testRef(61).pack, index: ref.index }, ts),
        deleteMessage({ ...target, kind: 'record', id: ref.pack }, ts),
        deleteMessage({ ...target, kind: 'share', id: ref.pack, index: ref.index }, ts + 1),
        deleteMessage({ ...target, persister: lab.stranger.peerId.toMultihash().bytes, kind: 'share', id: ref.pack, index: ref.index }, ts)
      ]
      for (const message of other) {
        const res = await raw(lab.aliceDevice, lab.persister, { op: 'delete', pack: toHex(ref.pack), index: ref.index, ts, sig: sign(message) })
        assert.equal(res.status, 'REFUSED')
      }
      await assertKept()
    })
  })
})
