/**
 * /p2pbak/shard/1.0.0 between real libp2p nodes on 127.0.0.1: the ShareStore compliance suite run
 * against a RemoteShareStore (the same suite the local store passes), then what a persister must
 * refuse: strangers, other people's namespaces, unsigned or stale deletes, oversized bodies and
 * malformed headers; and a client that fails with a typed error when its server stalls or vanishes.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { deriveIdentity, loadBackend } from '../../src/crypto/index.js'
import type { Identity, SodiumBackend } from '../../src/crypto/index.js'
import { RefusedError, errnoCode } from '../../src/errors.js'
import { createP2pNode, newDeviceKey } from '../../src/node/libp2p-node.js'
import type { P2pNode } from '../../src/node/libp2p-node.js'
import { exchange } from '../../src/protocols/framing.js'
import {
  DELETE_MAX_SKEW_MS, RemoteShareStore, SHARD_PROTOCOL, deleteMessage, shardServer
} from '../../src/protocols/shard/index.js'
import type { RemoteShareStoreInit, ShardServer, ShardServerInit } from '../../src/protocols/shard/index.js'
import { LocalShareStore } from '../../src/store/index.js'
import type { ShareStore } from '../../src/store/index.js'
import { concatBytes, fromHex, toHex } from '../../src/util/bytes.js'
import { TokenBucket } from '../../src/util/token-bucket.js'
import { collect, refKey, rejectsWithCode, seededBytes, shareStoreCompliance, testRef } from '../compliance/share-store.js'

/** Byte equality that ignores Buffer vs Uint8Array. */
function assertSameBytes (actual: Uint8Array, expected: Uint8Array): void { assert.equal(toHex(actual), toHex(expected)) }

const seed = (n: number): Uint8Array => new Uint8Array(32).fill(n)
const rid = (n: number): Uint8Array => seededBytes(0x7ec0 + n, 32)

describe('integration: the shard protocol', function () {
  this.timeout(30_000)
  let sodium: SodiumBackend
  let alice: Identity
  let bob: Identity
  let mallory: Identity
  const nodes: P2pNode[] = []
  const servers: ShardServer[] = []
  const dirs: string[] = []
  let persister: P2pNode
  let aliceDevice: P2pNode
  let bobDevice: P2pNode
  /** alice's write-only machine: its certificate says write-only (shard.md §7.2) */
  let aliceWriteOnly: P2pNode
  let stranger: P2pNode
  /** the persister's namespaces: user id -> store */
  const namespaces = new Map<string, ShareStore>()
  const storeForCalls: string[] = []

  const signer = (id: Identity) => (message: Uint8Array): string =>
    Buffer.from(sodium.sign(message, id.signSecretKey as Uint8Array)).toString('base64')

  async function node (): Promise<P2pNode> {
    const n = await createP2pNode({ privateKey: await newDeviceKey(), dht: false })
    nodes.push(n)
    return n
  }

  async function freshStore (): Promise<LocalShareStore> {
    const dir = await mkdtemp(join(tmpdir(), 'p2pbak-shard-'))
    dirs.push(dir)
    return await LocalShareStore.open(dir)
  }

  /** A persister node serving shards: members are aliceDevice (alice) and bobDevice (bob). */
  async function startServer (on: P2pNode, extra: Partial<ShardServerInit> = {}): Promise<void> {
    const server = shardServer({
      node: on,
      storeFor: async (userId) => {
        storeForCalls.push(userId)
        const store = namespaces.get(userId)
        if (store === undefined) throw new Error(`no namespace for ${userId}`)
        return store
      },
      authorize: (peer: PeerId) => {
        if (peer.equals(aliceDevice.peerId)) return { userId: alice.userId }
        if (peer.equals(bobDevice.peerId)) return { userId: bob.userId }
        if (peer.equals(aliceWriteOnly.peerId)) return { userId: alice.userId, writeOnly: true }
        return undefined
      },
      verifyDeleteSignature: (userId, message, sig) => sodium.verify(Buffer.from(sig, 'base64'), message, fromHex(userId)),
      ...extra
    })
    await server.start()
    servers.push(server)
  }

  function client (from: P2pNode, to: P2pNode, owner: Identity, extra: Partial<RemoteShareStoreInit> = {}): RemoteShareStore {
    return new RemoteShareStore({
      node: from,
      peer: to.peerId,
      addrs: to.getMultiaddrs(),
      ownerUserId: owner.userId,
      signDelete: signer(owner),
      timeoutMs: 10_000,
      ...extra
    })
  }

  /** A raw request, to send what a well-behaved client never would. */
  async function raw (from: P2pNode, to: P2pNode, header: object, body?: Uint8Array): Promise<{ status: unknown, body: Uint8Array }> {
    const res = await exchange(from, multiaddr(to.getMultiaddrs()[0]?.toString() ?? ''), SHARD_PROTOCOL, header, body, { timeoutMs: 10_000 })
    return { status: res.header.status, body: res.body }
  }

  before(async () => {
    sodium = await loadBackend()
    alice = deriveIdentity(sodium, seed(1))
    bob = deriveIdentity(sodium, seed(2))
    mallory = deriveIdentity(sodium, seed(3))
    persister = await node()
    aliceDevice = await node()
    bobDevice = await node()
    aliceWriteOnly = await node()
    stranger = await node()
    await startServer(persister)
  })

  after(async () => {
    for (const s of servers) await s.stop().catch(() => {})
    await Promise.all(nodes.map(async (n) => { await n.stop() }))
    for (const store of namespaces.values()) await store.close()
    await Promise.all(dirs.map(async (d) => { await rm(d, { recursive: true, force: true }) }))
  })

  shareStoreCompliance('RemoteShareStore over /p2pbak/shard/1.0.0 to a LocalShareStore', async () => {
    const local = await freshStore()
    namespaces.set(alice.userId, local)
    const store = client(aliceDevice, persister, alice)
    return {
      store,
      // closing the client closes the streams it kept for its next request
      teardown: async () => { await store.close(); namespaces.delete(alice.userId); await local.close() }
    }
  }, { refusesEmpty: true })

  describe('a write-only device (its certificate says so)', () => {
    let aliceLocal: LocalShareStore
    const ref = testRef(80)
    beforeEach(async () => {
      aliceLocal = await freshStore()
      namespaces.set(alice.userId, aliceLocal)
      await aliceLocal.put(ref, seededBytes(80, 1000))
      await aliceLocal.putRecord(rid(80), seededBytes(81, 50))
    })
    afterEach(async () => { namespaces.delete(alice.userId); await aliceLocal.close() })

    it('adds shares and records, and puts identical bytes again, into its person\'s namespace', async () => {
      // it even holds a valid signature of alice's user key: it is still only a writer
      const w = client(aliceWriteOnly, persister, alice)
      await w.put(testRef(81), seededBytes(82, 500))
      await w.put(ref, seededBytes(80, 1000))
      await w.putRecord(rid(82), seededBytes(83, 20))
      await w.putRecord(rid(80), seededBytes(81, 50))
      assertSameBytes(await aliceLocal.get(testRef(81)), seededBytes(82, 500))
      assertSameBytes(await aliceLocal.getRecord(rid(82)), seededBytes(83, 20))
    })

    it('cannot delete or overwrite a share or a record, even with a valid signature of the owner', async () => {
      const w = client(aliceWriteOnly, persister, alice)
      await rejectsWithCode(w.delete(ref), 'ERR_REFUSED')
      await rejectsWithCode(w.deleteRecord(rid(80)), 'ERR_REFUSED')
      await rejectsWithCode(w.put(ref, seededBytes(99, 1000)), 'ERR_REFUSED')
      await rejectsWithCode(w.putRecord(rid(80), seededBytes(98, 50)), 'ERR_REFUSED')
      const ts = Date.now()
      const message = deleteMessage({ kind: 'share', owner: alice.signPublicKey, persister: persister.peerId.toMultihash().bytes, id: ref.pack, index: ref.index }, ts)
      const res = await exchange(aliceWriteOnly, multiaddr(persister.getMultiaddrs()[0]?.toString() ?? ''), SHARD_PROTOCOL, { op: 'delete', pack: toHex(ref.pack), index: ref.index, ts, sig: signer(alice)(message) }, undefined, { timeoutMs: 10_000 })
      assert.equal(res.header.status, 'REFUSED')
      assert.match(String(res.header.error), /write-only/)
      assertSameBytes(await aliceLocal.get(ref), seededBytes(80, 1000))
      assertSameBytes(await aliceLocal.getRecord(rid(80)), seededBytes(81, 50))
      // the same requests from alice's full device go through
      const a = client(aliceDevice, persister, alice)
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
      namespaces.set(alice.userId, aliceLocal)
      namespaces.set(bob.userId, bobLocal)
      storeForCalls.length = 0
    })
    afterEach(async () => {
      namespaces.delete(alice.userId)
      namespaces.delete(bob.userId)
      await aliceLocal.close()
      await bobLocal.close()
    })

    it('a peer that is not a member gets NOT_MEMBER for every op, and no store is ever touched', async () => {
      await aliceLocal.put(testRef(1), seededBytes(1, 100))
      await aliceLocal.putRecord(rid(1), seededBytes(2, 10))
      // the stranger even claims to be alice: only the authenticated peer id counts
      const x = client(stranger, persister, alice)
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
        assert.equal((await raw(stranger, persister, header)).status, 'NOT_MEMBER')
      }
      assert.deepEqual(storeForCalls, [])
      assert.deepEqual((await collect(aliceLocal.list())).map(refKey), [refKey(ref)])
      assert.deepEqual(await collect(aliceLocal.listRecords()), [rid(1)])
      assert.deepEqual(await collect(bobLocal.list()), [])
    })

    it("member B can neither see, list, read nor delete member A's shares and records", async () => {
      const a = client(aliceDevice, persister, alice)
      const b = client(bobDevice, persister, bob)
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
      assert.deepEqual([...new Set(storeForCalls)].sort(), [alice.userId, bob.userId].sort())
    })

    it('lists page through the cursor: every entry exactly once at any page size', async () => {
      const a = client(aliceDevice, persister, alice, { listPageSize: 7 })
      const refs = Array.from({ length: 30 }, (_, i) => testRef(40 + (i % 11), i))
      for (const ref of refs) await aliceLocal.put(ref, seededBytes(ref.index, 5))
      for (let i = 0; i < 12; i++) await aliceLocal.putRecord(rid(100 + i), seededBytes(i, 5))
      const listed = (await collect(a.list())).map(refKey)
      assert.equal(listed.length, 30)
      assert.deepEqual([...listed].sort(), refs.map(refKey).sort())
      const one = client(aliceDevice, persister, alice, { listPageSize: 1 })
      assert.deepEqual((await collect(one.listRecords())).map(toHex).sort(), Array.from({ length: 12 }, (_, i) => toHex(rid(100 + i))).sort())
    })
  })

  describe('deletes need a fresh signature by the owner\'s user key', () => {
    let aliceLocal: LocalShareStore
    const ref = testRef(60, 4)
    beforeEach(async () => {
      aliceLocal = await freshStore()
      namespaces.set(alice.userId, aliceLocal)
      await aliceLocal.put(ref, seededBytes(60, 1000))
      await aliceLocal.putRecord(rid(60), seededBytes(61, 50))
    })
    afterEach(async () => { namespaces.delete(alice.userId); await aliceLocal.close() })

    async function assertKept (): Promise<void> {
      assert.deepEqual(await aliceLocal.get(ref), seededBytes(60, 1000))
      assert.equal(await aliceLocal.hasRecord(rid(60)), true)
    }

    it('a valid signature deletes', async () => {
      const a = client(aliceDevice, persister, alice)
      await a.delete(ref)
      await a.deleteRecord(rid(60))
      assert.equal(await aliceLocal.has(ref), false)
      assert.equal(await aliceLocal.hasRecord(rid(60)), false)
    })

    it('a signature by another key is refused and the share stays', async () => {
      const forged = client(aliceDevice, persister, alice, { signDelete: signer(mallory) })
      await rejectsWithCode(forged.delete(ref), 'ERR_REFUSED')
      await rejectsWithCode(forged.deleteRecord(rid(60)), 'ERR_REFUSED')
      await assertKept()
    })

    it("the device's own libp2p key is not enough", async () => {
      const ts = Date.now()
      const message = deleteMessage({ kind: 'share', owner: alice.signPublicKey, persister: persister.peerId.toMultihash().bytes, id: ref.pack, index: ref.index }, ts)
      const devKey = await newDeviceKey()
      const sig = Buffer.from(await devKey.sign(message)).toString('base64')
      assert.equal((await raw(aliceDevice, persister, { op: 'delete', pack: toHex(ref.pack), index: ref.index, ts, sig })).status, 'REFUSED')
      await assertKept()
    })

    it('a stale or future timestamp is refused, even with a valid signature', async () => {
      for (const skew of [-(DELETE_MAX_SKEW_MS + 60_000), DELETE_MAX_SKEW_MS + 60_000]) {
        const a = client(aliceDevice, persister, alice, { now: () => Date.now() + skew })
        await rejectsWithCode(a.delete(ref), 'ERR_REFUSED')
        await rejectsWithCode(a.deleteRecord(rid(60)), 'ERR_REFUSED')
      }
      await assertKept()
    })

    it('a signature over another share, index or persister is refused (no replay)', async () => {
      const ts = Date.now()
      const sign = signer(alice)
      const target = { owner: alice.signPublicKey, persister: persister.peerId.toMultihash().bytes }
      const other = [
        deleteMessage({ ...target, kind: 'share', id: ref.pack, index: ref.index + 1 }, ts),
        deleteMessage({ ...target, kind: 'share', id: testRef(61).pack, index: ref.index }, ts),
        deleteMessage({ ...target, kind: 'record', id: ref.pack }, ts),
        deleteMessage({ ...target, kind: 'share', id: ref.pack, index: ref.index }, ts + 1),
        deleteMessage({ ...target, persister: stranger.peerId.toMultihash().bytes, kind: 'share', id: ref.pack, index: ref.index }, ts)
      ]
      for (const message of other) {
        const res = await raw(aliceDevice, persister, { op: 'delete', pack: toHex(ref.pack), index: ref.index, ts, sig: sign(message) })
        assert.equal(res.status, 'REFUSED')
      }
      await assertKept()
    })
  })

  describe('shares in pieces', () => {
    it('putParts: a header and a body (a k = 1 parity share) cross in parts cut from the pieces, and land byte-exact', async () => {
      const local = await freshStore()
      namespaces.set(alice.userId, local)
      try {
        const store = client(aliceDevice, persister, alice)
        const body = seededBytes(91, 3 * 1024 * 1024 + 17)
        const head = seededBytes(92, 88)
        const ref = testRef(91, 2)
        await store.putParts(ref, [head, body])
        const whole = concatBytes([head, body])
        assertSameBytes(await local.get(ref), whole)
        assertSameBytes(await store.get(ref), whole)
        // a repeat of the same pieces is a plain repeat
        await store.putParts(ref, [head, body])
        assert.equal((await local.usage()).shares, 1)
      } finally {
        namespaces.delete(alice.userId)
        await local.close()
      }
    })
  })

  describe('rate limits (--limit-upload, --limit-download)', () => {
    it('every byte of a share sent in parts and read back goes through the node\'s buckets, at their rate', async () => {
      const local = await freshStore()
      namespaces.set(alice.userId, local)
      try {
        // virtual time: a wait moves the clock, so the test checks the rate without spending it
        const clock = { t: 0, now: () => clock.t, sleep: async (ms: number) => { clock.t += ms } }
        const upload = new TokenBucket(100 * 1024, clock)
        const download = new TokenBucket(50 * 1024, clock)
        const store = client(aliceDevice, persister, alice, { limits: { upload, download }, partBytes: 64 * 1024 })
        const data = seededBytes(77, 600 * 1024)
        const ref = testRef(77, 0)
        await store.put(ref, data)
        assert.equal(upload.taken, data.byteLength)
        // one second's worth goes at once, the rest at 100 KiB/s
        assert.ok(Math.abs(clock.t - 5000) <= 20, `600 KiB at 100 KiB/s took ${clock.t} ms of virtual time`)
        clock.t = 0
        assertSameBytes(await store.get(ref), data)
        assert.equal(download.taken, data.byteLength)
        assert.ok(Math.abs(clock.t - 11_000) <= 20, `600 KiB at 50 KiB/s took ${clock.t} ms of virtual time`)
      } finally {
        namespaces.delete(alice.userId)
        await local.close()
      }
    })
  })

  describe('limits and validation', () => {
    let small: P2pNode
    let aliceLocal: LocalShareStore
    const addCalls: number[] = []
    /** what the quota was asked to check only (charge false) */
    const checkCalls: number[] = []
    before(async () => {
      small = await node()
      await startServer(small, {
        maxShareBytes: 64 * 1024,
        quota: (_userId, add, _added, charge) => {
          (charge === false ? checkCalls : addCalls).push(add)
          return add > 150_000 ? { error: 'no room here', full: true } : add > 100_000 ? 'over quota' : undefined
        }
      })
    })
    beforeEach(async () => {
      aliceLocal = await freshStore()
      namespaces.set(alice.userId, aliceLocal)
      addCalls.length = 0
      checkCalls.length = 0
    })

    it('quota: a share sent in parts is checked at its first part and counted once, when stored', async () => {
      const a = client(aliceDevice, small, alice, { partBytes: 16 * 1024 })
      await a.put(testRef(75), seededBytes(75, 50_000))
      assert.deepEqual(checkCalls, [50_000])
      assert.deepEqual(addCalls, [50_000])
      assert.equal(await aliceLocal.size(testRef(75)), 50_000)
    })
    afterEach(async () => { namespaces.delete(alice.userId); await aliceLocal.close() })

    it('a share over maxShareBytes is refused and nothing is stored; at the limit it is accepted', async () => {
      const a = client(aliceDevice, small, alice)
      await rejectsWithCode(a.put(testRef(70), new Uint8Array(64 * 1024 + 1)), 'ERR_REFUSED')
      // far beyond the frame limit the server aborts a whole put's stream: still a typed error
      const whole = client(aliceDevice, small, alice, { partBytes: 16 * 1024 * 1024 })
      await rejectsWithCode(whole.put(testRef(71), new Uint8Array(64 * 1024 + 2 * 1024 * 1024)), 'ERR_PROTOCOL')
      // sent in parts, the first part already says the share's size: refused at once
      await rejectsWithCode(a.put(testRef(71), new Uint8Array(64 * 1024 + 2 * 1024 * 1024)), 'ERR_REFUSED')
      assert.deepEqual(await collect(aliceLocal.list()), [])
      await a.put(testRef(72), new Uint8Array(64 * 1024))
      assert.equal(await aliceLocal.size(testRef(72)), 64 * 1024)
    })

    it('quota: refusals carry the reason; a repeat put of a held share is never refused', async () => {
      const a = client(aliceDevice, small, alice)
      await a.putRecord(rid(70), new Uint8Array(60_000))
      await assert.rejects(a.putRecord(rid(71), new Uint8Array(100_001)), (err: unknown) => {
        assert.equal(errnoCode(err), 'ERR_REFUSED')
        assert.match(String(err), /over quota/)
        assert.equal((err as RefusedError).noRoom, false, 'a refusal the user must act on')
        return true
      })
      // for want of room: "reason":"FULL" on the wire, `noRoom` for the caller (a backup keeps the pack on its disk)
      await assert.rejects(a.putRecord(rid(74), new Uint8Array(150_001)), (err: unknown) => {
        assert.ok(err instanceof RefusedError && err.noRoom, String(err))
        assert.match(String(err), /no room here/)
        return true
      })
      addCalls.splice(addCalls.indexOf(150_001), 1)
      await a.put(testRef(73), seededBytes(73, 50_000))
      await a.put(testRef(73), seededBytes(73, 50_000))
      // the repeat put is asked with 0 added bytes: only a node that contributes nothing refuses it
      assert.deepEqual(addCalls, [60_000, 100_001, 50_000, 0])
      assert.equal(await aliceLocal.hasRecord(rid(71)), false)
    })

    it('a repeat put of identical bytes writes nothing: the stored time stands; an empty record is INVALID even over a held one', async () => {
      const a = client(aliceDevice, small, alice)
      await a.put(testRef(76), seededBytes(76, 20_000))
      const { utimes } = await import('node:fs/promises')
      // back-date the held share, as if stored a year ago
      const old = new Date(Date.now() - 365 * 86_400_000)
      const pack = toHex(testRef(76).pack)
      await utimes(join(aliceLocal.dir, 'shares', pack.slice(0, 2), `${pack}.${testRef(76).index}`), old, old)
      const before = await (aliceLocal.storedAt as NonNullable<typeof aliceLocal.storedAt>)(testRef(76))
      await a.put(testRef(76), seededBytes(76, 20_000))
      assert.equal(await (aliceLocal.storedAt as NonNullable<typeof aliceLocal.storedAt>)(testRef(76)), before)
      await a.putRecord(rid(76), new Uint8Array(10).fill(1))
      await rejectsWithCode(a.putRecord(rid(76), new Uint8Array(0)), 'ERR_PROTOCOL')
      assert.equal(await aliceLocal.hasRecord(rid(76)), true)
    })

    it('malformed headers get INVALID and touch nothing', async () => {
      await aliceLocal.put(testRef(74), seededBytes(74, 10))
      const pack = toHex(testRef(74).pack)
      const sig = Buffer.from(new Uint8Array(64)).toString('base64')
      const bad: object[] = [
        { op: 'nope' },
        {},
        { op: 'get', pack: 'zz', index: 0 },
        { op: 'get', pack: pack.toUpperCase(), index: 0 },
        { op: 'get', pack: pack.slice(2), index: 0 },
        { op: 'get', pack, index: 256 },
        { op: 'get', pack, index: -1 },
        { op: 'get', pack, index: '0' },
        { op: 'get', pack, index: 0.5 },
        { op: 'get', pack, index: 0, offset: 1 },
        { op: 'get', pack, index: 0, offset: -1, length: 1 },
        { op: 'put', pack, index: null },
        { op: 'delete', pack, index: 0 },
        { op: 'delete', pack, index: 0, ts: '1', sig },
        { op: 'delete', pack, index: 0, ts: Date.now(), sig: 'c2ln' },
        { op: 'list', cursor: 'bad' },
        { op: 'list', limit: 0 },
        { op: 'listRecords', cursor: `${pack}.0` },
        { op: 'getRecord', id: 42 }
      ]
      for (const header of bad) {
        assert.equal((await raw(aliceDevice, small, header)).status, 'INVALID', JSON.stringify(header))
      }
      assert.equal((await raw(aliceDevice, small, { op: 'has', pack, index: 0 }, new Uint8Array(3))).status, 'INVALID', 'a body where none belongs')
      assert.deepEqual((await collect(aliceLocal.list())).map(refKey), [refKey(testRef(74))])
      assert.deepEqual(addCalls, [])
    })
  })

  describe('a server that stalls or vanishes', () => {
    let hung: P2pNode
    let entered: () => void
    let getEntered: Promise<void>
    before(async () => {
      hung = await node()
      const local = await freshStore()
      await local.put(testRef(80), seededBytes(80, 100))
      const stalled = new Proxy(local, {
        get (target, prop, receiver) {
          if (prop === 'get') return async () => { entered(); return await new Promise<Uint8Array>(() => {}) }
          const v: unknown = Reflect.get(target, prop, receiver)
          return typeof v === 'function' ? v.bind(target) : v
        }
      })
      namespaces.set(mallory.userId, stalled) // reached only through the user id below
      await startServer(hung, { authorize: () => ({ userId: mallory.userId }), timeoutMs: 60_000 })
    })
    beforeEach(() => { getEntered = new Promise<void>((resolve) => { entered = resolve }) })

    it('a server that never answers: TimeoutError after timeoutMs', async () => {
      const c = client(aliceDevice, hung, mallory, { timeoutMs: 500 })
      const start = Date.now()
      await rejectsWithCode(c.get(testRef(80)), 'ERR_TIMEOUT')
      assert.ok(Date.now() - start < 3000, `took ${Date.now() - start} ms`)
      assert.equal(await c.has(testRef(80)), true, 'the connection is still usable')
    })

    it('a server that vanishes mid-get: a typed error at once, not a hang', async () => {
      const c = client(aliceDevice, hung, mallory, { timeoutMs: 20_000 })
      const start = Date.now()
      const pending = c.get(testRef(80))
      await getEntered
      await hung.stop()
      await assert.rejects(pending, (err: unknown) => {
        assert.ok(['ERR_PROTOCOL', 'ERR_TIMEOUT'].includes(errnoCode(err) ?? ''), String(err))
        return true
      })
      assert.ok(Date.now() - start < 5000, `took ${Date.now() - start} ms`)
      await rejectsWithCode(c.has(testRef(80)), 'ERR_PROTOCOL') // and the next call fails fast too
    })
  })

  it('the delete message is byte-exact (docs/protocols/shard.md)', () => {
    const owner = fromHex('d7'.repeat(32))
    const persister = fromHex('002408011220' + 'ab'.repeat(32))
    const share = deleteMessage({ kind: 'share', owner, persister, id: fromHex('11'.repeat(32)), index: 7 }, 1_700_000_000_000)
    assert.equal(toHex(share),
      toHex(Buffer.from('p2pbak delete v1\0', 'latin1')) + '01' + 'd7'.repeat(32) + '26' + '002408011220' + 'ab'.repeat(32) +
      '11'.repeat(32) + '07' + '0068e5cf8b010000')
    const record = deleteMessage({ kind: 'record', owner, persister, id: fromHex('22'.repeat(32)) }, 1)
    assert.equal(record.byteLength, 17 + 1 + 32 + 1 + 38 + 32 + 8)
    assert.equal(toHex(record.subarray(17, 18)), '02')
    assert.equal(toHex(record.subarray(-8)), '0100000000000000')
  })
})
