/**
 * /p2pbak/shard/1.0.0 between real libp2p nodes on 127.0.0.1, at its limits: a share sent in parts
 * lands byte-exact and through the node's rate limits; a persister refuses oversized bodies,
 * over-quota puts and malformed headers; a client fails with a typed error when its server stalls
 * or vanishes; and the signed delete message is byte-exact. Compliance, authorization, namespaces and
 * delete signatures are in shard-protocol.spec.ts; the nodes both share, in shard-protocol.fixtures.ts.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { RefusedError, errnoCode } from '../../src/errors.js'
import type { P2pNode } from '../../src/node/libp2p-node.js'
import { deleteMessage } from '../../src/protocols/shard/index.js'
import type { LocalShareStore } from '../../src/store/index.js'
import { concatBytes, fromHex, toHex } from '../../src/util/bytes.js'
import { TokenBucket } from '../../src/util/token-bucket.js'
import { collect, refKey, rejectsWithCode, seededBytes, testRef } from '../compliance/share-store.js'
import { assertSameBytes, rid, shardLab } from './shard-protocol.fixtures.js'

describe('integration: the shard protocol at its limits', function () {
  this.timeout(30_000)
  const lab = shardLab()
  const { namespaces, node, freshStore, startServer, client, raw } = lab

  describe('shares in pieces', () => {
    it('putParts: a header and a body (a k = 1 parity share) cross in parts cut from the pieces, and land byte-exact', async () => {
      const local = await freshStore()
      namespaces.set(lab.alice.userId, local)
      try {
        const store = client(lab.aliceDevice, lab.persister, lab.alice)
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
        namespaces.delete(lab.alice.userId)
        await local.close()
      }
    })
  })

  describe('rate limits (--limit-upload, --limit-download)', () => {
    it('every byte of a share sent in parts and read back goes through the node\'s buckets, at their rate', async () => {
      const local = await freshStore()
      namespaces.set(lab.alice.userId, local)
      try {
        // virtual time: a wait moves the clock, so the test checks the rate without spending it
        const clock = { t: 0, now: () => clock.t, sleep: async (ms: number) => { clock.t += ms } }
        const upload = new TokenBucket(100 * 1024, clock)
        const download = new TokenBucket(50 * 1024, clock)
        const store = client(lab.aliceDevice, lab.persister, lab.alice, { limits: { upload, download }, partBytes: 64 * 1024 })
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
        namespaces.delete(lab.alice.userId)
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
      namespaces.set(lab.alice.userId, aliceLocal)
      addCalls.length = 0
      checkCalls.length = 0
    })

    it('quota: a share sent in parts is checked at its first part and counted once, when stored', async () => {
      const a = client(lab.aliceDevice, small, lab.alice, { partBytes: 16 * 1024 })
      await a.put(testRef(75), seededBytes(75, 50_000))
      assert.deepEqual(checkCalls, [50_000])
      assert.deepEqual(addCalls, [50_000])
      assert.equal(await aliceLocal.size(testRef(75)), 50_000)
    })
    afterEach(async () => { namespaces.delete(lab.alice.userId); await aliceLocal.close() })

    it('a share over maxShareBytes is refused and nothing is stored; at the limit it is accepted', async () => {
      const a = client(lab.aliceDevice, small, lab.alice)
      await rejectsWithCode(a.put(testRef(70), new Uint8Array(64 * 1024 + 1)), 'ERR_REFUSED')
      // far beyond the frame limit the server aborts a whole put's stream: still a typed error
      const whole = client(lab.aliceDevice, small, lab.alice, { partBytes: 16 * 1024 * 1024 })
      await rejectsWithCode(whole.put(testRef(71), new Uint8Array(64 * 1024 + 2 * 1024 * 1024)), 'ERR_PROTOCOL')
      // sent in parts, the first part already says the share's size: refused at once
      await rejectsWithCode(a.put(testRef(71), new Uint8Array(64 * 1024 + 2 * 1024 * 1024)), 'ERR_REFUSED')
      assert.deepEqual(await collect(aliceLocal.list()), [])
      await a.put(testRef(72), new Uint8Array(64 * 1024))
      assert.equal(await aliceLocal.size(testRef(72)), 64 * 1024)
    })

    it('quota: refusals carry the reason; a repeat put of a held share is never refused', async () => {
      const a = client(lab.aliceDevice, small, lab.alice)
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
      const a = client(lab.aliceDevice, small, lab.alice)
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
        assert.equal((await raw(lab.aliceDevice, small, header)).status, 'INVALID', JSON.stringify(header))
      }
      assert.equal((await raw(lab.aliceDevice, small, { op: 'has', pack, index: 0 }, new Uint8Array(3))).status, 'INVALID', 'a body where none belongs')
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
      namespaces.set(lab.mallory.userId, stalled) // reached only through the user id below
      await startServer(hung, { authorize: () => ({ userId: lab.mallory.userId }), timeoutMs: 60_000 })
    })
    beforeEach(() => { getEntered = new Promise<void>((resolve) => { entered = resolve }) })

    it('a server that never answers: TimeoutError after timeoutMs', async () => {
      const c = client(lab.aliceDevice, hung, lab.mallory, { timeoutMs: 500 })
      const start = Date.now()
      await rejectsWithCode(c.get(testRef(80)), 'ERR_TIMEOUT')
      assert.ok(Date.now() - start < 3000, `took ${Date.now() - start} ms`)
      assert.equal(await c.has(testRef(80)), true, 'the connection is still usable')
    })

    it('a server that vanishes mid-get: a typed error at once, not a hang', async () => {
      const c = client(lab.aliceDevice, hung, lab.mallory, { timeoutMs: 20_000 })
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
