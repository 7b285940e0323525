/**
 * Repair in a group where every other person holds a share of every stripe (docs/placement-and-repair.md
 * §5 P7, §9): the daemon's ErasurePackStore, Auditor and Repairer on in-memory holders and a virtual
 * clock, with candidates filtered by mayReceiveShares as src/node/network.ts filters them.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { contentHash } from '../../../src/crypto/index.js'
import { NotFoundError, TimeoutError } from '../../../src/errors.js'
import { asPackId, type PackId } from '../../../src/ids.js'
import { proveShare, ShareGoneError } from '../../../src/protocols/audit.js'
import { ErasurePackStore } from '../../../src/repo/index.js'
import { Auditor, RELIABILITY_THRESHOLD, Repairer, mayReceiveShares, recordProbes, reliabilityOf, scoreAudit } from '../../../src/repair/index.js'
import { newPeerRecord } from '../../../src/store/index.js'
import { IndexDb, MemoryShareStore, type ShareRef, type ShareStore } from '../../../src/store/index.js'
import { SHARE_HEADER_BYTES } from '../../../src/format/share.js'
import { toHex } from '../../../src/util/bytes.js'

const HOUR = 3600_000
const INTERVAL = 6 * HOUR

interface Holder { id: string, store: MemoryShareStore, online: boolean, puts: number, liar: boolean }

describe('repair/small group: every other person holds a share (P7)', function () {
  this.timeout(30_000)
  let dir: string
  let index: IndexDb
  let now: number
  let holders: Holder[]
  let group: ErasurePackStore
  let auditor: Auditor
  let repairer: Repairer
  const packs: PackId[] = []

  const holder = (id: string): Holder => holders.find(h => h.id === id) as Holder
  const step = async (): Promise<void> => {
    now += HOUR / 4
    await recordProbes(index.audit, new Map(holders.map(h => [h.id, h.online])), now)
    await auditor.round()
    await repairer.round()
  }
  /** intact shares of every pack on the holders the placement names */
  const health = async (): Promise<number[]> => await Promise.all(packs.map(async (pack) => {
    let n = 0
    for (const [i, h] of index.getPlacement(pack) ?? new Map<number, string>()) {
      if (await holder(h.slice(5)).store.has({ pack, index: i })) n++
    }
    return n
  }))

  /** a publisher and holders `ids`, all online, 12 packs placed with `scheme` and audited once */
  async function setup (ids: string[], scheme: { k: number, m: number }): Promise<void> {
    dir = await mkdtemp(join(tmpdir(), 'p2pbak-small-group-'))
    index = IndexDb.open(dir)
    now = Date.UTC(2026, 0, 1)
    holders = ids.map(id => ({ id, store: new MemoryShareStore(id), online: true, puts: 0, liar: false }))
    const storeFor = (id: string): ShareStore => {
      const h = holder(id)
      return new Proxy(h.store, {
        get: (t, k, r) => {
          const v: unknown = Reflect.get(t, k, r)
          if (typeof v !== 'function') return v
          if (!h.online) return async () => { throw new TimeoutError(`${id} does not answer`) }
          if (k !== 'put') return v.bind(t)
          return async (ref: ShareRef, data: Uint8Array) => {
            h.puts++
            await t.put(ref, data)
            // a liar keeps a damaged copy of whatever it is given
            if (h.liar) t.corrupt(ref, SHARE_HEADER_BYTES)
          }
        }
      })
    }
    group = new ErasurePackStore(new MemoryShareStore('local'), {
      ownPersonId: 'me',
      // as network.ts: peers that may not receive shares are not candidates at all
      candidates: () => holders.filter(h => mayReceiveShares(index.audit.getPeer(h.id)))
        .map(h => ({ peerId: h.id, personId: `person-${h.id}`, online: h.online, freeBytes: 1e9, reliability: reliabilityOf(index.audit.getPeer(h.id)) })),
      storeFor
    }, index, { scheme, now: () => now })
    auditor = new Auditor(index, {
      online: (peer) => holder(peer).online,
      prove: async (peer, ref, nonce, count) => {
        if (!holder(peer).online) throw new TimeoutError(`${peer} does not answer`)
        try {
          return await proveShare(holder(peer).store, undefined, 'me', ref, nonce, count)
        } catch (err: unknown) {
          if (err instanceof NotFoundError && !(err instanceof ShareGoneError)) throw new ShareGoneError(err.message, false)
          throw err
        }
      },
      damaged: async () => []
    }, { policy: { intervalMs: INTERVAL }, now: () => now })
    repairer = new Repairer(group, { online: (peer) => holder(peer).online, isMember: () => true }, { now: () => now })
    packs.length = 0
    for (let i = 0; i < 12; i++) {
      const bytes = new Uint8Array(randomBytes(8_000 + i * 500))
      const pack = asPackId(contentHash(bytes))
      await index.addPack({ id: pack, size: bytes.byteLength, blobs: 1, k: scheme.k, m: scheme.m, time: now, kind: 0 }, [])
      await group.putPack(pack, bytes)
      packs.push(pack)
      // placed over an interval, so that their challenges fall due in different rounds
      now += INTERVAL / 12
    }
    // every share passes its first challenge
    for (let i = 0; i < 8; i++) await step()
    assert.deepEqual(await health(), packs.map(() => scheme.k + scheme.m))
    for (const h of holders) h.puts = 0
  }
  afterEach(async () => {
    await index.close()
    await rm(dir, { recursive: true, force: true })
  })

  for (const [people, k, m] of [[3, 1, 1], [4, 1, 2], [5, 2, 2], [6, 2, 3]] as const) {
    it(`${people} people, ${k}+${m}: a persister that lost all its shares has them back within two audit intervals`, async () => {
      const ids = Array.from({ length: people - 1 }, (_, i) => `p${i + 1}`)
      await setup(ids, { k, m })
      const wiped = holder('p1')
      wiped.store = new MemoryShareStore('p1-new-disk')
      const started = now
      while (now - started < 2 * INTERVAL && !(await health()).every(n => n === k + m)) await step()
      assert.deepEqual(await health(), packs.map(() => k + m), `after ${(now - started) / HOUR} h`)
      assert.equal(wiped.puts, packs.length)
    })
  }

  describe('four holders, 2+2', () => {
    beforeEach(async () => { await setup(['p1', 'p2', 'p3', 'p4'], { k: 2, m: 2 }) })

    it('a persister whose folder is wiped gets its own shares back within two audit intervals, keeps them, and stays eligible', async () => {
      const wiped = holder('p2')
      wiped.store = new MemoryShareStore('p2-new-disk')
      const started = now
      let full = -1
      while (now - started < 2 * INTERVAL) {
        await step()
        if ((await health()).every(n => n === 4)) { full = now - started; break }
      }
      assert.ok(full >= 0, `health is ${(await health()).join(',')} after two audit intervals`)
      assert.equal(wiped.puts, packs.length, 'each lost share is put back exactly once')
      // the shares went back to p2: nobody else could take them
      for (const pack of packs) assert.ok([...(index.getPlacement(pack)?.values() ?? [])].includes('peer:p2'))
      // no release is queued for the shares p2 holds again
      assert.deepEqual([...index.audit.pendingReleases()].filter(([peer]) => peer === 'p2').flatMap(([, refs]) => refs), [])
      // the re-seeded shares are challenged again and pass; p2 remains a candidate
      for (let i = 0; i < 8; i++) await step()
      for (const pack of packs) for (let i = 0; i < 4; i++) assert.equal(index.audit.getShare(pack, i)?.state, 'ok', `${toHex(pack).slice(0, 8)}.${i}`)
      assert.ok(mayReceiveShares(index.audit.getPeer('p2')), `p2 record ${JSON.stringify(index.audit.getPeer('p2'))}`)
      assert.equal(wiped.puts, packs.length, 'nothing is uploaded again')
    })

    it('a persister that keeps failing the challenges of the shares it is given back drops out and is not re-seeded forever', async () => {
      const liar = holder('p3')
      liar.liar = true
      for (const pack of packs) {
        const i = [...(index.getPlacement(pack) ?? [])].find(([, h]) => h === 'peer:p3')?.[0] as number
        liar.store.corrupt({ pack, index: i }, SHARE_HEADER_BYTES)
      }
      for (let i = 0; i < 2 * INTERVAL / (HOUR / 4); i++) await step()
      assert.ok(!mayReceiveShares(index.audit.getPeer('p3')), `p3 record ${JSON.stringify(index.audit.getPeer('p3'))}`)
      // at most two rounds of re-seeding before it fell below the threshold
      assert.ok(liar.puts <= 2 * packs.length, `${liar.puts} puts to the liar`)
      const puts = liar.puts
      for (let i = 0; i < 8; i++) await step()
      assert.equal(liar.puts, puts)
      // the others still hold three good shares of every pack
      assert.ok((await health()).every(n => n >= 3))
    })

    it('a laptop (online a third of the time) whose folder is wiped takes its shares back too', async () => {
      const laptop = holder('p2')
      let tick = 0
      const sleepy = async (): Promise<void> => { laptop.online = tick++ % 12 < 4; await step() }
      // a day of its habits first, so that its uptime is measured
      for (let i = 0; i < 96; i++) await sleepy()
      laptop.store = new MemoryShareStore('p2-new-disk')
      laptop.puts = 0
      const started = now
      while (now - started < 3 * INTERVAL && !(await health()).every(n => n === 4)) await sleepy()
      assert.deepEqual(await health(), packs.map(() => 4), 'back to full within three audit intervals')
      assert.equal(laptop.puts, packs.length)
      assert.ok(mayReceiveShares(index.audit.getPeer('p2')), JSON.stringify(index.audit.getPeer('p2')))
    })

    it('packs that cannot be repaired (a holder gone for good) do not starve the others of the round\'s budget', async () => {
      const rr = new Repairer(group, { online: (peer) => holder(peer).online, isMember: () => true }, { policy: { maxPacksPerRound: 2, offlineGraceMs: HOUR }, now: () => now })
      const tick = async (): Promise<void> => {
        now += HOUR / 4
        await recordProbes(index.audit, new Map(holders.map(h => [h.id, h.online])), now)
        await auditor.round()
        await rr.round()
      }
      // p4 is gone for good: each of its shares needs repair and nobody can take it
      holder('p4').online = false
      for (let i = 0; i < 8; i++) await tick()
      assert.equal(rr.plan().length, packs.length)
      const wiped = holder('p2')
      wiped.store = new MemoryShareStore('p2-new-disk')
      const back = async (): Promise<number> => (await Promise.all(packs.map(async pack => {
        const i = [...(index.getPlacement(pack) ?? [])].find(([, h]) => h === 'peer:p2')?.[0]
        return i !== undefined && await wiped.store.has({ pack, index: i })
      }))).filter(Boolean).length
      const started = now
      while (now - started < 2 * INTERVAL && await back() < packs.length) await tick()
      assert.equal(await back(), packs.length, 'every share p2 lost is back on p2')
    })

    it('a previous holder that is away is not waited for by the others: nothing is placed, nothing is downloaded for nothing', async () => {
      const gone = holder('p4')
      gone.store = new MemoryShareStore('p4-new-disk')
      // fail its shares while it answers, then it goes away
      for (let i = 0; i < INTERVAL / (HOUR / 4) && packs.some(p => index.audit.getShare(p, [...(index.getPlacement(p) ?? [])].find(([, h]) => h === 'peer:p4')?.[0] ?? 0)?.state !== 'failed'); i++) {
        now += HOUR / 4
        await auditor.round()
      }
      gone.online = false
      const r = await repairer.round()
      assert.equal(r.repairedShares, 0)
      assert.equal(r.failed.length, packs.length)
      assert.match(r.failed[0]?.error ?? '', /only 0 eligible/)
      gone.online = true
      await step()
      assert.deepEqual(await health(), packs.map(() => 4))
    })
  })
})

describe('repair/small group: a partial repair', function () {
  this.timeout(30_000)
  it('places what it can and keeps the other bad share on its old holder in the placement, to be repaired later', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'p2pbak-partial-'))
    const index = IndexDb.open(dir)
    try {
      const now = Date.UTC(2026, 0, 1)
      const stores = new Map(['p1', 'p2', 'p3', 'p4'].map(id => [id, new MemoryShareStore(id)]))
      const online = new Set(['p1', 'p2', 'p3', 'p4'])
      const group = new ErasurePackStore(new MemoryShareStore('local'), {
        ownPersonId: 'me',
        candidates: () => [...stores.keys()].map(id => ({ peerId: id, personId: `person-${id}`, online: online.has(id), freeBytes: 1e9, reliability: 1 })),
        storeFor: (id) => stores.get(id) as MemoryShareStore
      }, index, { scheme: { k: 2, m: 2 }, now: () => now })
      const bytes = new Uint8Array(randomBytes(20_000))
      const pack = asPackId(contentHash(bytes))
      await index.addPack({ id: pack, size: bytes.byteLength, blobs: 1, k: 2, m: 2, time: now, kind: 0 }, [])
      await group.putPack(pack, bytes)
      const placement = index.getPlacement(pack) as Map<number, string>
      const indexOf = (peer: string): number => [...placement].find(([, h]) => h === `peer:${peer}`)?.[0] as number
      // p2 lost its share and answers; p4 lost its share and is away now
      for (const peer of ['p2', 'p4']) {
        const i = indexOf(peer)
        await stores.get(peer)?.delete({ pack, index: i })
        await index.audit.putShare(pack, i, { ...(index.audit.getShare(pack, i) as NonNullable<ReturnType<typeof index.audit.getShare>>), state: 'failed', reason: 'gone' })
      }
      online.delete('p4')
      const repairer = new Repairer(group, { online: (peer) => online.has(peer), isMember: () => true }, { now: () => now })
      const r = await repairer.round()
      assert.equal(r.repairedShares, 1)
      const after = index.getPlacement(pack) as Map<number, string>
      assert.deepEqual([...after].sort(), [...placement].sort(), 'p2 took its share back; p4 is still named for its own')
      assert.equal(index.audit.getShare(pack, indexOf('p2'))?.state, 'unknown')
      assert.equal(index.audit.getShare(pack, indexOf('p4'))?.state, 'failed')
      assert.deepEqual([...index.audit.pendingReleases()], [])
      // p4 answers again: its share goes back to it too
      online.add('p4')
      assert.equal((await repairer.round()).repairedShares, 1)
      assert.ok(await stores.get('p4')?.has({ pack, index: indexOf('p4') }))
    } finally {
      await index.close()
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('repair on a write-only machine: no releases it cannot sign', () => {
  for (const releasesOldCopies of [true, false]) {
    it(`${releasesOldCopies ? 'a full machine queues the old copy of a moved share and deletes it' : 'a write-only machine moves the share and leaves the old copy (its deletes would be refused), queuing nothing'}`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'p2pbak-release-'))
      const index = IndexDb.open(dir)
      try {
        const now = Date.UTC(2026, 0, 1)
        const stores = new Map(['p1', 'p2', 'p3', 'p4'].map(id => [id, new MemoryShareStore(id)]))
        const deletes: string[] = []
        const storeFor = (id: string): ShareStore => new Proxy(stores.get(id) as MemoryShareStore, {
          get: (t, k, r) => {
            const v: unknown = Reflect.get(t, k, r)
            if (k === 'delete') return async (ref: ShareRef) => { deletes.push(id); await t.delete(ref) }
            return typeof v === 'function' ? v.bind(t) : v
          }
        })
        const group = new ErasurePackStore(new MemoryShareStore('local'), {
          ownPersonId: 'me',
          candidates: () => [...stores.keys()].map(id => ({ peerId: id, personId: `person-${id}`, online: true, freeBytes: 1e9, reliability: 1 })),
          storeFor
        }, index, { scheme: { k: 1, m: 1 }, now: () => now, releasesOldCopies })
        const bytes = new Uint8Array(randomBytes(20_000))
        const pack = asPackId(contentHash(bytes))
        await index.addPack({ id: pack, size: bytes.byteLength, blobs: 1, k: 1, m: 1, time: now, kind: 0 }, [])
        await group.putPack(pack, bytes)
        const placement = index.getPlacement(pack) as Map<number, string>
        const [i, bad] = [...placement][0] as [number, string]
        const old = bad.slice(5)
        // its copy failed a challenge: rebuilt on someone who holds none of the stripe
        stores.get(old)?.corrupt({ pack, index: i }, SHARE_HEADER_BYTES)
        await index.audit.putShare(pack, i, { ...(index.audit.getShare(pack, i) as NonNullable<ReturnType<typeof index.audit.getShare>>), state: 'failed', reason: 'corrupt' })
        const repairer = new Repairer(group, { online: () => true, isMember: () => true }, { now: () => now })
        const r = await repairer.round()
        assert.equal(r.repairedShares, 1)
        assert.notEqual(index.getPlacement(pack)?.get(i), bad, 'moved to another holder')
        assert.deepEqual([...index.audit.pendingReleases()], [])
        assert.deepEqual(deletes, releasesOldCopies ? [old] : [], releasesOldCopies ? 'the old copy was released' : 'no delete was sent')
        assert.equal(await stores.get(old)?.has({ pack, index: i }), !releasesOldCopies)
        if (!releasesOldCopies) {
          // releases queued before (an older version): dropped, never retried
          await index.audit.addRelease(old, { pack, index: i })
          await repairer.round()
          assert.deepEqual([...index.audit.pendingReleases()], [])
          assert.deepEqual(deletes, [])
        }
      } finally {
        await index.close()
        await rm(dir, { recursive: true, force: true })
      }
    })
  }
})

describe('repair/reliability: who may receive shares', () => {
  const at = Date.UTC(2026, 0, 1)
  const probed = (uptime: number): ReturnType<typeof newPeerRecord> => ({ ...newPeerRecord(at), lastProbeMs: at, observedMs: 100 * HOUR, onlineMs: uptime * 100 * HOUR })
  it('one failure keeps a desktop and a laptop eligible, two close together do not; a peer reachable under 20 % of the time is not', () => {
    for (const uptime of [1, 0.33]) {
      const once = scoreAudit(probed(uptime), 'fail', at)
      assert.ok(mayReceiveShares(once), `uptime ${uptime}, one failure`)
      assert.ok(!mayReceiveShares(scoreAudit(once, 'fail', at)), `uptime ${uptime}, two failures`)
    }
    assert.ok(mayReceiveShares(probed(0.25)))
    assert.ok(!mayReceiveShares(probed(0.15)))
    assert.ok(mayReceiveShares(undefined))
  })
})
