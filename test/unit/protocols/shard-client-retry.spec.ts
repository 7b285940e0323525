/**
 * RemoteShareStore retries transient failures on a fresh connection, between two real libp2p nodes
 * on 127.0.0.1: the persister cuts every connection at chosen moments — after its store acted, so
 * the answer is lost (the case that must not turn into an "overwrite" refusal or a failed delete) —
 * or is gone for good. Answers (refusals) are never retried. Retry delays are shortened by the policy.
 */
import assert from 'node:assert/strict'
import type { PeerId } from '@libp2p/interface'
import { deriveIdentity, loadBackend } from '../../../src/crypto/index.js'
import type { Identity, SodiumBackend } from '../../../src/crypto/index.js'
import { errnoCode } from '../../../src/errors.js'
import { createP2pNode, newDeviceKey } from '../../../src/node/libp2p-node.js'
import type { P2pNode } from '../../../src/node/libp2p-node.js'
import { RemoteShareStore, shardServer } from '../../../src/protocols/shard/index.js'
import type { ShardServer } from '../../../src/protocols/shard/index.js'
import { MemoryShareStore } from '../../../src/store/index.js'
import type { ShareStore } from '../../../src/store/index.js'
import { fromHex } from '../../../src/util/bytes.js'
import { seededBytes, testRef } from '../../compliance/share-store.js'

const FAST = { baseDelayMs: 20, maxDelayMs: 100 }

describe('protocols/shard client: retries on a fresh connection', function () {
  this.timeout(30_000)
  let sodium: SodiumBackend
  let alice: Identity
  let persister: P2pNode
  let device: P2pNode
  let server: ShardServer
  let store: MemoryShareStore
  /** ops after which the persister drops every connection (once per entry) */
  let cutAfter: string[] = []
  let refuseAll = false

  /** The persister's store for alice: acts, then (when asked) cuts the connection before the answer goes out. */
  function faulty (target: ShareStore): ShareStore {
    return new Proxy(target, {
      get (t, prop, receiver) {
        const v: unknown = Reflect.get(t, prop, receiver)
        if (typeof v !== 'function') return v
        const cut = (): void => {
          const i = cutAfter.indexOf(String(prop))
          if (i < 0) return
          cutAfter.splice(i, 1)
          for (const c of persister.getConnections()) c.abort(new Error('test: connection reset'))
        }
        if (prop === 'list' || prop === 'listRecords') {
          return async function * (...args: unknown[]) {
            yield * (v as (...a: unknown[]) => AsyncIterable<unknown>).apply(t, args)
            cut()
          }
        }
        return async (...args: unknown[]) => {
          try {
            return await (v as (...a: unknown[]) => Promise<unknown>).apply(t, args)
          } finally {
            cut()
          }
        }
      }
    })
  }

  function client (extra: { timeoutMs?: number, partBytes?: number, maxPartBytes?: number } = {}): RemoteShareStore {
    return new RemoteShareStore({
      node: device,
      peer: persister.peerId,
      addrs: persister.getMultiaddrs(),
      ownerUserId: alice.userId,
      signDelete: (m) => Buffer.from(sodium.sign(m, alice.signSecretKey as Uint8Array)).toString('base64'),
      timeoutMs: extra.timeoutMs ?? 5000,
      retry: FAST,
      ...(extra.partBytes !== undefined ? { partBytes: extra.partBytes } : {}),
      ...(extra.maxPartBytes !== undefined ? { maxPartBytes: extra.maxPartBytes } : {})
    })
  }

  before(async () => {
    sodium = await loadBackend()
    alice = deriveIdentity(sodium, new Uint8Array(32).fill(1))
    persister = await createP2pNode({ privateKey: await newDeviceKey(), dht: false })
    device = await createP2pNode({ privateKey: await newDeviceKey(), dht: false })
    server = shardServer({
      node: persister,
      storeFor: async () => faulty(store),
      authorize: (peer: PeerId) => peer.equals(device.peerId) ? { userId: alice.userId } : undefined,
      verifyDeleteSignature: (userId, message, sig) => sodium.verify(Buffer.from(sig, 'base64'), message, fromHex(userId)),
      // retention on: a repeated put must still be accepted because its bytes are identical
      minShareAgeMs: () => 86_400_000,
      quota: () => refuseAll ? 'over quota' : undefined
    })
    await server.start()
  })
  beforeEach(() => { store = new MemoryShareStore(); cutAfter = []; refuseAll = false })
  after(async () => {
    await server.stop()
    await device.stop()
    await persister.stop()
  })

  it('a put stored just before the connection was reset is retried and accepted (identical bytes), and counted', async () => {
    const c = client()
    cutAfter = ['put']
    const data = seededBytes(1, 200_000)
    await c.put(testRef(1), data)
    assert.deepEqual(await store.get(testRef(1)), data)
    assert.deepEqual(c.stats, { attempts: 2, retries: 1, recovered: 1, gaveUp: 0 })
  })

  it('a get whose answer is lost twice succeeds on the third attempt', async () => {
    const data = seededBytes(2, 50_000)
    await store.put(testRef(2), data)
    const c = client()
    cutAfter = ['get', 'get']
    assert.deepEqual(new Uint8Array(await c.get(testRef(2))), data)
    assert.equal(c.stats.retries, 2)
    assert.equal(c.stats.recovered, 1)
  })

  it('records and pages are retried too', async () => {
    const c = client()
    cutAfter = ['putRecord', 'listRecords']
    const id = seededBytes(3, 32)
    await c.putRecord(id, seededBytes(4, 1000))
    const ids: Uint8Array[] = []
    for await (const r of c.listRecords()) ids.push(new Uint8Array(r))
    assert.deepEqual(ids, [id])
    assert.equal(c.stats.retries, 2)
  })

  it('a delete carried out before the reset is retried and succeeds (deleting an absent share succeeds)', async () => {
    await store.put(testRef(5), seededBytes(5, 100))
    const c = client()
    // the persister's store lacks storedAt, so retention does not hold this share back
    cutAfter = ['delete']
    await c.delete(testRef(5))
    assert.equal(await store.has(testRef(5)), false)
    assert.equal(c.stats.retries, 1)
  })

  it('a large share travels in parts: a reset costs one part, and a lost answer to the last part is still "stored"', async () => {
    const c = client({ partBytes: 64 * 1024, maxPartBytes: 64 * 1024 })
    const data = seededBytes(8, 300_000) // 5 parts
    // the first part's answer is lost (after the quota check reads the size), then the whole share's
    cutAfter = ['size', 'put']
    await c.put(testRef(8), data)
    assert.deepEqual(await store.get(testRef(8)), data)
    assert.equal(c.stats.retries, 2)
    assert.equal(c.stats.attempts, 5 + 2)
    // read back in parts, one part's answer lost
    cutAfter = ['getRange']
    const r = client({ partBytes: 64 * 1024, maxPartBytes: 64 * 1024 })
    assert.deepEqual(new Uint8Array(await r.get(testRef(8))), data)
    assert.equal(r.stats.retries, 1)
    assert.equal(r.stats.attempts, 5 + 1)
    // a share smaller than a part comes whole
    await store.put(testRef(9), seededBytes(9, 1000))
    assert.deepEqual(new Uint8Array(await r.get(testRef(9))), seededBytes(9, 1000))
  })

  it('parts grow while they go through at the first try, and shrink after a reset (a long round trip costs few parts, a lossy link small ones)', async () => {
    const c = client({ partBytes: 16 * 1024, maxPartBytes: 128 * 1024 })
    const data = seededBytes(10, 600_000)
    await c.put(testRef(10), data)
    assert.deepEqual(await store.get(testRef(10)), data)
    // 16, 32, 64, 128, 128, 128, 104 KiB: 7 parts where fixed 16 KiB parts take 37
    assert.equal(c.stats.attempts, 7)
    assert.deepEqual(new Uint8Array(await c.get(testRef(10))), data)
    // reading continues at the size the link allows: 16 KiB first (it says the size), then 128 KiB parts
    assert.equal(c.stats.attempts, 7 + 6)
    // a reset halves the next part
    const lossy = client({ partBytes: 16 * 1024, maxPartBytes: 128 * 1024 })
    cutAfter = ['size', 'size', 'size']
    await lossy.put(testRef(11), data)
    assert.deepEqual(await store.get(testRef(11)), data)
    assert.ok(lossy.stats.retries >= 2, `resets: ${lossy.stats.retries}`)
    const parts = lossy.stats.attempts - lossy.stats.retries
    assert.ok(parts > 7, `parts stayed smaller after the resets: ${parts} parts where a clean link took 7`)
  })

  it('a share the persister lost (a wiped folder) is stored again, even when it now goes in one part (crash suite, seed 286521091)', async () => {
    const c = client({ partBytes: 16 * 1024, maxPartBytes: 256 * 1024 })
    const data = seededBytes(12, 100_000)
    await c.put(testRef(12), data) // 16, 32 and 52 KiB: the next parts are larger
    await store.delete(testRef(12)) // under the server: its disk lost the share
    await c.put(testRef(12), data) // one part from offset 0 to the end
    assert.deepEqual(await store.get(testRef(12)), data)
  })

  it('a refusal is an answer: one attempt, no retry', async () => {
    const c = client()
    refuseAll = true
    await assert.rejects(c.put(testRef(6), seededBytes(6, 100)), (err: unknown) => errnoCode(err) === 'ERR_REFUSED')
    assert.deepEqual(c.stats, { attempts: 1, retries: 0, recovered: 0, gaveUp: 0 })
  })

  it('a persister that is gone: three attempts to reach it, then a typed error and gaveUp counted', async () => {
    const gone = await createP2pNode({ privateKey: await newDeviceKey(), dht: false })
    const addrs = gone.getMultiaddrs()
    await gone.stop()
    const c = new RemoteShareStore({
      node: device, peer: gone.peerId, addrs, ownerUserId: alice.userId, signDelete: () => '', timeoutMs: 2000, retry: FAST
    })
    const start = Date.now()
    await assert.rejects(c.has(testRef(7)), (err: unknown) => errnoCode(err) === 'ERR_PROTOCOL' && /gave up after 3 attempts/.test(String(err)))
    assert.deepEqual(c.stats, { attempts: 3, retries: 2, recovered: 0, gaveUp: 1 })
    assert.ok(Date.now() - start < 5000, `took ${Date.now() - start} ms`)
  })
})
