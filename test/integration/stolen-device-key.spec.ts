/**
 * Issue 11, finding 3: a stolen device key (the libp2p key of a member's full device, without the
 * owner's user key) must not wipe old history by putting other bytes over shares and records that a
 * persister holds (docs/protocols/shard.md §7.3). Real libp2p nodes on 127.0.0.1, the real shard
 * server over real LocalShareStores: one persister applies a 30-day retention policy, the other none.
 *   - the thief's put of other bytes over an old share (past the retention age), whole or in parts,
 *     and over a record, is REFUSED with a reason; the held bytes stay
 *   - a forged signature (the device key's, or the owner's over other bytes) does not help
 *   - identical bytes (retries) are still accepted without any signature
 *   - the owner's full device replaces a damaged copy: its client signs the replace with the user key
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, utimes } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { contentHash, deriveIdentity, loadBackend } from '../../src/crypto/index.js'
import type { Identity, SodiumBackend } from '../../src/crypto/index.js'
import { OtherStripeError, RefusedError, errnoCode } from '../../src/errors.js'
import { createP2pNode, newDeviceKey } from '../../src/node/libp2p-node.js'
import type { P2pNode } from '../../src/node/libp2p-node.js'
import { exchange } from '../../src/protocols/framing.js'
import { encodeShareHeader } from '../../src/format/share.js'
import { RemoteShareStore, SHARD_PROTOCOL, shardServer } from '../../src/protocols/shard/index.js'
import type { ShardServer } from '../../src/protocols/shard/index.js'
import { replaceMessage } from '../../src/protocols/shard/wire.js'
import { LocalShareStore } from '../../src/store/index.js'
import type { ShareRef } from '../../src/store/index.js'
import { fromHex, toHex } from '../../src/util/bytes.js'
import { seededBytes, testRef } from '../compliance/share-store.js'

const DAY = 86_400_000

describe('integration: a stolen device key cannot overwrite what persisters hold (issue 11, finding 3)', function () {
  this.timeout(30_000)
  let sodium: SodiumBackend
  let alice: Identity
  const nodes: P2pNode[] = []
  const servers: ShardServer[] = []
  const dirs: string[] = []
  /** keeps shares 30 days (the default policy) */
  let keeper: P2pNode
  /** a group whose policy is 0: no minimum age */
  let plain: P2pNode
  let aliceDevice: P2pNode
  let held: { keeper: LocalShareStore, plain: LocalShareStore }

  const userSigner = (message: Uint8Array): string => Buffer.from(sodium.sign(message, alice.signSecretKey as Uint8Array)).toString('base64')
  /** what a thief with only device.key has: no user key to sign with */
  const noUserKey = (): string => { throw new RefusedError('no user key on this device') }

  async function node (): Promise<P2pNode> {
    const n = await createP2pNode({ privateKey: await newDeviceKey(), dht: false })
    nodes.push(n)
    return n
  }

  async function serve (on: P2pNode, minShareAgeMs: number, store: () => LocalShareStore): Promise<void> {
    const server = shardServer({
      node: on,
      storeFor: async () => store(),
      authorize: (peer: PeerId) => peer.equals(aliceDevice.peerId) ? { userId: alice.userId } : undefined,
      verifyDeleteSignature: (userId, message, sig) => sodium.verify(Buffer.from(sig, 'base64'), message, fromHex(userId)),
      minShareAgeMs: () => minShareAgeMs
    })
    await server.start()
    servers.push(server)
  }

  function client (to: P2pNode, signDelete: (m: Uint8Array) => string, partBytes?: number): RemoteShareStore {
    return new RemoteShareStore({
      node: aliceDevice, peer: to.peerId, addrs: to.getMultiaddrs(), ownerUserId: alice.userId, signDelete, timeoutMs: 10_000,
      ...(partBytes !== undefined ? { partBytes } : {})
    })
  }

  async function raw (to: P2pNode, header: object, body: Uint8Array): Promise<Record<string, unknown>> {
    const res = await exchange(aliceDevice, multiaddr(to.getMultiaddrs()[0]?.toString() ?? ''), SHARD_PROTOCOL, header, body, { timeoutMs: 10_000 })
    return res.header
  }

  async function freshStore (): Promise<LocalShareStore> {
    const dir = await mkdtemp(join(tmpdir(), 'p2pbak-stolen-'))
    dirs.push(dir)
    return await LocalShareStore.open(dir)
  }

  /** A share stored `days` ago on `store` (its file's time is what the retention policy reads). */
  async function oldShare (store: LocalShareStore, ref: ShareRef, data: Uint8Array, days: number): Promise<void> {
    await store.put(ref, data)
    const hex = toHex(ref.pack)
    const file = join(store.id.replace(/^local:/, ''), 'shares', hex.slice(0, 2), `${hex}.${ref.index}`)
    const t = new Date(Date.now() - days * DAY)
    await utimes(file, t, t)
    assert.ok(Math.abs(await store.storedAt(ref) - t.getTime()) < 1000, `the share's age was not set (${file})`)
  }

  const refusedWithReason = (err: unknown): boolean => {
    assert.equal(errnoCode(err), 'ERR_REFUSED', String(err))
    assert.match(String(err), /user key|signature/)
    return true
  }

  before(async () => {
    sodium = await loadBackend()
    alice = deriveIdentity(sodium, new Uint8Array(32).fill(1))
    keeper = await node()
    plain = await node()
    aliceDevice = await node()
    await serve(keeper, 30 * DAY, () => held.keeper)
    await serve(plain, 0, () => held.plain)
  })

  beforeEach(async () => {
    held = { keeper: await freshStore(), plain: await freshStore() }
  })

  afterEach(async () => {
    await held.keeper.close()
    await held.plain.close()
  })

  after(async () => {
    for (const s of servers) await s.stop().catch(() => {})
    await Promise.all(nodes.map(async (n) => { await n.stop() }))
    await Promise.all(dirs.map(async (d) => { await rm(d, { recursive: true, force: true }) }))
  })

  it('other bytes over an old share or a record are refused without the owner\'s signature; the held bytes stay', async () => {
    const small = testRef(1, 3)
    const large = testRef(2, 5)
    const rec = seededBytes(3, 32)
    for (const [name, to, store] of [['keeper', keeper, held.keeper], ['plain', plain, held.plain]] as const) {
      await oldShare(store, small, seededBytes(10, 3000), 31)
      await oldShare(store, large, seededBytes(11, 5000), 31)
      await store.putRecord(rec, seededBytes(12, 200))
      const thief = client(to, noUserKey, 1024)
      await assert.rejects(thief.put(small, seededBytes(20, 3000)), refusedWithReason, `${name}: a whole put`)
      await assert.rejects(thief.put(small, seededBytes(20, 10)), refusedWithReason, `${name}: a put of another size`)
      // in parts (putPart): refused at the first part that differs, so nothing is staged
      await assert.rejects(thief.put(large, seededBytes(21, 5000)), refusedWithReason, `${name}: a put in parts`)
      await assert.rejects(thief.putRecord(rec, seededBytes(22, 200)), (err: unknown) => { assert.equal(errnoCode(err), 'ERR_REFUSED'); return true }, `${name}: a record`)
      assert.deepEqual(await store.get(small), seededBytes(10, 3000), `${name}: the small share changed`)
      assert.deepEqual(await store.get(large), seededBytes(11, 5000), `${name}: the large share changed`)
      assert.deepEqual(await store.getRecord(rec), seededBytes(12, 200), `${name}: the record changed`)
      // identical bytes are a retry: accepted without any signature, whole or in parts
      await thief.put(small, seededBytes(10, 3000))
      await thief.put(large, seededBytes(11, 5000))
      await thief.putRecord(rec, seededBytes(12, 200))
    }
  })

  it('a signature by the device key, or by the owner over other bytes or another share, does not replace', async () => {
    const ref = testRef(4, 1)
    await oldShare(held.plain, ref, seededBytes(30, 2000), 31)
    const junk = seededBytes(31, 2000)
    const ts = Date.now()
    const target = { kind: 'share' as const, owner: alice.signPublicKey, persister: plain.peerId.toMultihash().bytes, id: ref.pack, index: ref.index }
    const deviceKey = await newDeviceKey()
    const forged = [
      Buffer.from(await deviceKey.sign(replaceMessage(target, contentHash(junk), ts))).toString('base64'),
      userSigner(replaceMessage(target, contentHash(seededBytes(32, 2000)), ts)),
      userSigner(replaceMessage({ ...target, index: ref.index + 1 }, contentHash(junk), ts)),
      userSigner(replaceMessage(target, contentHash(junk), ts + 1))
    ]
    for (const sig of forged) {
      const h = await raw(plain, { op: 'put', pack: toHex(ref.pack), index: ref.index, ts, sig }, junk)
      assert.equal(h.status, 'REFUSED', JSON.stringify(h))
      assert.equal(h.reason, 'REPLACE')
    }
    // a stale timestamp, even validly signed
    const stale = ts - 11 * 60_000
    const h = await raw(plain, { op: 'put', pack: toHex(ref.pack), index: ref.index, ts: stale, sig: userSigner(replaceMessage(target, contentHash(junk), stale)) }, junk)
    assert.equal(h.status, 'REFUSED')
    assert.deepEqual(await held.plain.get(ref), seededBytes(30, 2000))
  })

  it('the owner\'s full device replaces an old damaged copy by signing it; a young one stays under the policy', async () => {
    const small = testRef(5, 0)
    const large = testRef(6, 2)
    const rec = seededBytes(7, 32)
    for (const [to, store] of [[keeper, held.keeper], [plain, held.plain]] as const) {
      await oldShare(store, small, seededBytes(40, 1500), 31)
      await oldShare(store, large, seededBytes(41, 4096), 31)
      const owner = client(to, userSigner, 1024)
      await owner.put(small, seededBytes(42, 1500))
      await owner.put(large, seededBytes(43, 4096))
      assert.deepEqual(await store.get(small), seededBytes(42, 1500))
      assert.deepEqual(await store.get(large), seededBytes(43, 4096))
    }
    // records: replaced signed where no policy runs (under a policy they are never replaced)
    await held.plain.putRecord(rec, seededBytes(44, 100))
    await client(plain, userSigner).putRecord(rec, seededBytes(45, 100))
    assert.deepEqual(await held.plain.getRecord(rec), seededBytes(45, 100))
    // a share stored 2 days ago under a 30-day policy: its replace is a delete the policy forbids
    const young = testRef(8, 0)
    await oldShare(held.keeper, young, seededBytes(46, 800), 2)
    await assert.rejects(client(keeper, userSigner).put(young, seededBytes(47, 800)), (err: unknown) => { assert.equal(errnoCode(err), 'ERR_RETAINED'); return true })
    assert.deepEqual(await held.keeper.get(young), seededBytes(46, 800))
  })

  it('a share of another stripe of the same pack (another k+m) is not replaced, even by the owner; a damaged copy of the same stripe is', async () => {
    const ref = testRef(9, 1)
    /** a share of `ref`'s pack and index in a k+m stripe: its header, then `body` */
    const share = (k: number, m: number, body: Uint8Array): Uint8Array => {
      const header = encodeShareHeader({ k, m, index: ref.index, packLength: 4096, packId: ref.pack, dataHash: contentHash(body) })
      return new Uint8Array(Buffer.concat([header, body]))
    }
    const widerStripe = share(1, 2, seededBytes(51, 2000))
    const owner = client(plain, userSigner, 1024)
    // another device placed the pack 1+1: its share 1 must stay, whatever this device's stripe says
    await oldShare(held.plain, ref, share(1, 1, seededBytes(50, 2000)), 31)
    const before = await held.plain.get(ref)
    await assert.rejects(owner.put(ref, widerStripe), (err: unknown) => {
      assert.ok(err instanceof OtherStripeError, String(err))
      assert.match(err.message, /of a 1\+1 stripe, not of this 1\+2 one/)
      return true
    })
    assert.deepEqual(await held.plain.get(ref), before)
    // the same stripe with other bytes is a damaged copy: replaced, signed
    await owner.put(ref, share(1, 1, seededBytes(52, 2000)))
    assert.deepEqual(await held.plain.get(ref), share(1, 1, seededBytes(52, 2000)))
    // and bytes that are no share header at all, too
    await oldShare(held.plain, ref, seededBytes(53, 3000), 31)
    await owner.put(ref, widerStripe)
    assert.deepEqual(await held.plain.get(ref), widerStripe)
  })

  it('the replace message is byte-exact (docs/protocols/shard.md §7.3)', () => {
    const owner = fromHex('d7'.repeat(32))
    const persister = fromHex('002408011220' + 'ab'.repeat(32))
    const hash = fromHex('33'.repeat(32))
    const share = replaceMessage({ kind: 'share', owner, persister, id: fromHex('11'.repeat(32)), index: 7 }, hash, 1_700_000_000_000)
    assert.equal(toHex(share),
      toHex(Buffer.from('p2pbak replace v1\0', 'latin1')) + '01' + 'd7'.repeat(32) + '26' + '002408011220' + 'ab'.repeat(32) +
      '11'.repeat(32) + '07' + '33'.repeat(32) + '0068e5cf8b010000')
    assert.equal(share.byteLength, 18 + 1 + 32 + 1 + 38 + 32 + 1 + 32 + 8)
    const record = replaceMessage({ kind: 'record', owner, persister, id: fromHex('22'.repeat(32)) }, hash, 1)
    assert.equal(record.byteLength, 18 + 1 + 32 + 1 + 38 + 32 + 32 + 8)
  })
})
