/**
 * Holders that lie (issue 11, findings 1 and 7): one answers `get` at once with a forged share whose
 * header claims another scheme (k = 1, a tiny pack), or with garbage under the right header; one
 * lists forever, or drips its listing; one claims shares it does not hold; one answers a snapshot
 * record with garbage. Reads must still decode from the honest holders, with the index's scheme and
 * without it (recovery), listings must end, and a liar's share must count as failing so that repair
 * replaces it.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { contentHash, deriveIdentity, keyedHash, loadBackend } from '../../../src/crypto/index.js'
import { encodeShareHeader, decodeShareHeader, SHARE_HEADER_BYTES } from '../../../src/format/share.js'
import { MemoryShareStore, IndexDb, type ShareStore, type ShareRef } from '../../../src/store/index.js'
import { ErasurePackStore, MAX_SOLE_CLAIM_FAILURES, Repository, rebuildIndex } from '../../../src/repo/index.js'
import { ClaimDistrust } from '../../../src/repo/distrust.js'
import { BlobType } from '../../../src/format/pack.js'
import type { Candidate } from '../../../src/placement/index.js'
import { asPackId, type PackId } from '../../../src/ids.js'
import { concatBytes } from '../../../src/util/bytes.js'

const PEERS = ['A', 'B', 'C', 'D', 'E']
const cand = (peerId: string): Candidate => ({ peerId, personId: `person-${peerId}`, online: true, freeBytes: 1 << 30, reliability: 1 })

/** What a lying store does instead of answering honestly (undefined: answer honestly). */
interface Lies {
  get?: (ref: ShareRef, real: Uint8Array) => Uint8Array | undefined
  list?: (real: AsyncIterable<ShareRef>) => AsyncIterable<ShareRef>
  getRecord?: (id: Uint8Array) => Uint8Array
}

/** A store whose `get` answers `lies.get(ref)` at once when it returns bytes; honest answers come 20 ms later. */
function lying (inner: MemoryShareStore, lies: Lies): ShareStore {
  return new Proxy(inner, {
    get (target, prop, receiver) {
      if (prop === 'list' && lies.list !== undefined) return (options?: { signal?: AbortSignal }) => (lies.list as NonNullable<Lies['list']>)(target.list(options))
      if (prop === 'getRecord' && lies.getRecord !== undefined) return async (id: Uint8Array) => (lies.getRecord as NonNullable<Lies['getRecord']>)(id)
      if (prop !== 'get') return Reflect.get(target, prop, receiver) as unknown
      return async (ref: ShareRef, options?: { signal?: AbortSignal }): Promise<Uint8Array> => {
        const real = await target.get(ref, options).catch(() => new Uint8Array(0))
        const forged = lies.get?.(ref, real)
        if (forged !== undefined) return forged
        await new Promise(resolve => setTimeout(resolve, 20))
        return real
      }
    }
  })
}

/** A share of `id` at `index` that claims k = 1 and an 8-byte pack. */
function tinyForgery (id: PackId, index: number): Uint8Array {
  const data = randomBytes(8)
  return concatBytes([encodeShareHeader({ k: 1, m: Math.max(1, index), index, packLength: 8, packId: id, dataHash: contentHash(data) }), data])
}

/** The real header over garbage of the same length (dataHash recomputed: it verifies on its own). */
function garbageUnderHeader (real: Uint8Array): Uint8Array {
  const h = decodeShareHeader(real)
  const data = randomBytes(real.byteLength - SHARE_HEADER_BYTES)
  return concatBytes([encodeShareHeader({ ...h, dataHash: contentHash(data) }), data])
}

describe('ErasurePackStore: a holder that forges shares on read', () => {
  let dir: string
  let index: IndexDb
  let stores: Map<string, MemoryShareStore>
  let liar: string | undefined
  let forge: (id: PackId, ref: ShareRef, real: Uint8Array) => Uint8Array
  let lies: Lies = {}
  const open = (ix: IndexDb, local = new MemoryShareStore('local')): ErasurePackStore => new ErasurePackStore(local, {
    ownPersonId: 'me',
    candidates: () => PEERS.map(cand),
    storeFor: (p: string) => {
      const s = stores.get(p) as MemoryShareStore
      return lying(s, p === liar ? { get: (ref, real) => forge(asPackId(ref.pack), ref, real), ...lies } : {})
    }
  }, ix, { scheme: { k: 2, m: 3 }, listBounds: { budgetMs: 300, maxEntries: 5000 } })

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-forged-'))
    index = IndexDb.open(join(dir, 'index'))
    stores = new Map(PEERS.map(p => [p, new MemoryShareStore(p)]))
    liar = undefined
    lies = {}
  })
  afterEach(async () => {
    await index.close()
    rmSync(dir, { recursive: true, force: true })
  })

  async function placed (store: ErasurePackStore): Promise<{ id: PackId, pack: Uint8Array, liarIndex: number }> {
    const pack = randomBytes(200_000)
    const id = asPackId(contentHash(pack))
    assert.deepEqual(await store.putPack(id, pack), { k: 2, m: 3 })
    await index.addPack({ id, size: pack.byteLength, blobs: 1, k: 2, m: 3, time: Date.now(), kind: 0 }, [])
    const placement = index.getPlacement(id) as Map<number, string>
    const [liarIndex, holder] = [...placement][0] as [number, string]
    liar = holder.replace(/^peer:/, '')
    return { id, pack, liarIndex }
  }

  it('a forged header (k = 1, 8 bytes) answered first does not block the read; the liar\'s share is failed', async () => {
    const store = open(index)
    forge = (id, ref) => tinyForgery(id, ref.index)
    const { id, pack, liarIndex } = await placed(store)
    store.dropCaches()
    assert.deepEqual(Buffer.from(await store.getPack(id)), Buffer.from(pack))
    assert.equal(index.audit.getShare(id, liarIndex)?.state, 'failed')
    // the honest holders' shares are untouched
    for (const [i] of index.getPlacement(id) as Map<number, string>) if (i !== liarIndex) assert.notEqual(index.audit.getShare(id, i)?.state, 'failed')
  })

  it('recovery (an empty index) still reads the pack: answers are grouped by the scheme they state', async () => {
    const store = open(index)
    forge = (id, ref) => tinyForgery(id, ref.index)
    const { id, pack } = await placed(store)
    const fresh = IndexDb.open(join(dir, 'index-recovered'))
    try {
      const recovered = open(fresh)
      const listed: string[] = []
      for await (const p of recovered.listPacks()) listed.push(Buffer.from(p).toString('hex'))
      assert.ok(listed.includes(Buffer.from(id).toString('hex')))
      assert.deepEqual(Buffer.from(await recovered.getPack(id)), Buffer.from(pack))
      assert.deepEqual(recovered.packScheme(id), { k: 2, m: 3 })
      assert.equal(await recovered.packSize(id), pack.byteLength)
    } finally {
      await fresh.close()
    }
  })

  it('garbage under the right header: another k-subset decodes, and the liar is found by re-encoding', async () => {
    const store = open(index)
    forge = (_id, _ref, real) => garbageUnderHeader(real)
    const { id, pack, liarIndex } = await placed(store)
    store.dropCaches()
    assert.deepEqual(Buffer.from(await store.getPack(id)), Buffer.from(pack))
    assert.equal(index.audit.getShare(id, liarIndex)?.state, 'failed')
  })

  it('too few honest shares: a clear error, not a hang', async () => {
    const store = open(index)
    forge = (id, ref) => tinyForgery(id, ref.index)
    const { id } = await placed(store)
    store.dropCaches()
    // four of five holders gone: one honest share and one forged one are all that answer
    const placement = index.getPlacement(id) as Map<number, string>
    const keep = new Set([liar, ([...placement][1] as [number, string])[1].replace(/^peer:/, '')])
    for (const p of PEERS) if (!keep.has(p)) stores.set(p, new MemoryShareStore(p))
    await assert.rejects(store.getPack(id), /ERR_NOT_ENOUGH_SHARES|shares could be read|decodes to the pack/)
  })

  it('a peer that lists forever, or drips its listing, cannot hang a command: the others are listed', async () => {
    const store = open(index)
    forge = (_id, _ref, real) => real
    const { id } = await placed(store)
    const fresh = IndexDb.open(join(dir, 'index-endless'))
    try {
      lies = {
        async * list () { while (true) yield { pack: asPackId(randomBytes(32)), index: 0 } }
      }
      const endless = open(fresh)
      const listed = new Set<string>()
      for await (const p of endless.listPacks()) listed.add(Buffer.from(p).toString('hex'))
      assert.ok(listed.has(Buffer.from(id).toString('hex')), 'the honest holders\' pack is listed')
      assert.ok(listed.size <= 5001 + 1, `at most the bound of the liar's entries, got ${listed.size}`)
      lies = {
        async * list () { yield { pack: asPackId(randomBytes(32)), index: 0 }; await new Promise(() => {}) }
      }
      const drip = open(fresh)
      const started = Date.now()
      const dripped = new Set<string>()
      for await (const p of drip.listPacks()) dripped.add(Buffer.from(p).toString('hex'))
      assert.ok(dripped.has(Buffer.from(id).toString('hex')))
      assert.ok(Date.now() - started < 5_000, 'the stalled listing was cut off at its budget')
    } finally {
      await fresh.close()
    }
  })

  it('a peer that claims every share of a pack it does not hold cannot hide it (recovery)', async () => {
    const store = open(index)
    forge = (_id, _ref, real) => real
    const { id, pack } = await placed(store)
    // the liar lists every index of the pack and answers each with garbage under a right-looking header
    const real = await (stores.get(liar as string) as MemoryShareStore).get({ pack: id, index: [...(index.getPlacement(id) as Map<number, string>)][0]?.[0] as number })
    const h = decodeShareHeader(real)
    lies = {
      async * list (honest) { for await (const r of honest) yield r; for (let i = 0; i < 5; i++) yield { pack: id, index: i } }
    }
    forge = (fid, ref) => {
      const data = randomBytes(real.byteLength - SHARE_HEADER_BYTES)
      return concatBytes([encodeShareHeader({ ...h, packId: fid, index: ref.index, dataHash: contentHash(data) }), data])
    }
    const fresh = IndexDb.open(join(dir, 'index-claims'))
    try {
      const recovered = open(fresh)
      for await (const _ of recovered.listPacks()) { /* discover holders */ }
      assert.deepEqual(Buffer.from(await recovered.getPack(id)), Buffer.from(pack))
      // the placement recorded is the honest holders'
      for (const [, holder] of fresh.getPlacement(id) as Map<number, string>) assert.notEqual(holder, `peer:${liar as string}`)
    } finally {
      await fresh.close()
    }
  })

  it('a peer that answers a snapshot record with garbage cannot hide it: the next holder is asked', async () => {
    const local = new MemoryShareStore('local')
    const store = open(index, local)
    forge = (_id, _ref, real) => real
    await placed(store)
    const record = randomBytes(300)
    const rid = contentHash(record)
    await store.putRecord(rid, record)
    await local.deleteRecord(rid)
    lies = { getRecord: () => randomBytes(300) }
    const again = open(index, local)
    assert.deepEqual(Buffer.from(await again.getRecord(rid)), Buffer.from(record))
  })

  it('hedged reads: with the scheme known, only k holders are asked while they answer; a stalled one is replaced after the hedge delay', async () => {
    const store = open(index)
    forge = (_id, _ref, real) => real
    const { id, pack } = await placed(store)
    liar = undefined
    // count the gets each peer answers
    const gets = new Map<string, number>()
    for (const [name, inner] of stores) {
      const orig = inner.get.bind(inner)
      inner.get = async (ref, options) => { gets.set(name, (gets.get(name) ?? 0) + 1); return await orig(ref, options) }
    }
    store.dropCaches()
    assert.deepEqual(Buffer.from(await store.getPack(id)), Buffer.from(pack))
    assert.equal([...gets.values()].reduce((a, b) => a + b, 0), 2, `k = 2 gets, got ${JSON.stringify([...gets])}`)
    // the holder of share 0 stalls: after the hedge delay the others are asked and the read completes
    const placement = index.getPlacement(id) as Map<number, string>
    const stalled = (placement.get(0) as string).replace(/^peer:/, '')
    const inner = stores.get(stalled) as MemoryShareStore
    inner.get = async (_ref, options) => await new Promise((_resolve, reject) => { options?.signal?.addEventListener('abort', () => reject(new Error('aborted'))) })
    store.dropCaches()
    const started = Date.now()
    assert.deepEqual(Buffer.from(await store.getPack(id)), Buffer.from(pack))
    assert.ok(Date.now() - started < 10_000)
  })
})

describe('rebuildIndex: a peer that lists made-up packs', () => {
  it('costs at most a few failed reads per rebuild, and every real pack is still indexed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'p2pbak-madeup-'))
    const sodium = await loadBackend()
    const identity = deriveIdentity(sodium, new Uint8Array(32).fill(9))
    const stores = new Map(PEERS.map(p => [p, new MemoryShareStore(p)]))
    const fakes = new Set<string>()
    let fakeReads = 0
    const liar = 'E'
    const storeFor = (p: string): ShareStore => p !== liar
      ? stores.get(p) as MemoryShareStore
      : new Proxy(stores.get(p) as MemoryShareStore, {
        get (target, prop, receiver) {
          if (prop === 'list') {
            return async function * (options?: { signal?: AbortSignal }) {
              yield * target.list(options)
              for (let i = 0; i < 60; i++) {
                const pack = randomBytes(32)
                fakes.add(Buffer.from(pack).toString('hex'))
                yield { pack, index: 0 }
              }
            }
          }
          if (prop === 'get' || prop === 'getRange') {
            return async (ref: ShareRef, ...rest: unknown[]) => {
              if (fakes.has(Buffer.from(ref.pack).toString('hex'))) { fakeReads++; throw new Error('no such share') }
              return await (Reflect.get(target, prop, receiver) as (...a: unknown[]) => Promise<Uint8Array>).apply(target, [ref, ...rest])
            }
          }
          return Reflect.get(target, prop, receiver) as unknown
        }
      })
    const group = (ix: IndexDb): ErasurePackStore => new ErasurePackStore(new MemoryShareStore('local'), { ownPersonId: 'me', candidates: () => PEERS.map(cand), storeFor }, ix, { scheme: { k: 2, m: 3 } })
    const index = IndexDb.open(join(dir, 'index'))
    const fresh = IndexDb.open(join(dir, 'fresh'))
    try {
      const repo = new Repository({ sodium, identity, packs: group(index), index }, { packSize: 64 * 1024, compressWorkers: 0 })
      for (let i = 0; i < 4; i++) {
        const blob = randomBytes(80_000)
        await repo.saveBlob(BlobType.Data, keyedHash(identity.dedupKey, blob), blob)
      }
      await repo.flush()
      const real = [...index.listPacks()].length
      assert.ok(real >= 2)
      // a new machine (an empty index) rebuilds it from what the friends list
      const recovered = new Repository({ sodium, identity, packs: group(fresh), index: fresh }, { packSize: 64 * 1024, compressWorkers: 0 })
      const summary = await rebuildIndex(recovered)
      assert.equal(summary.packsAdded, real, 'every real pack is indexed')
      assert.equal(summary.damaged.length, 60, 'every made-up pack is reported')
      assert.ok(fakeReads <= MAX_SOLE_CLAIM_FAILURES, `${fakeReads} reads of made-up packs`)
    } finally {
      await index.close()
      await fresh.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('the head read: a peer that lists made-up records first', () => {
  it('cannot make the reader distrust the real records other holders list too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'p2pbak-madeup-records-'))
    const index = IndexDb.open(join(dir, 'index'))
    const stores = new Map(PEERS.map(p => [p, new MemoryShareStore(p)]))
    const liar = 'A'
    let fakeReads = 0
    const made = new Set<string>()
    const storeFor = (p: string): ShareStore => p !== liar
      ? stores.get(p) as MemoryShareStore
      : new Proxy(stores.get(p) as MemoryShareStore, {
        get (target, prop, receiver) {
          if (prop === 'listRecords') {
            return async function * (options?: { signal?: AbortSignal }) {
              // made-up ids before the real ones, so that a reader trusting the first lister would give up on the real ones
              for (let i = 0; i < 30; i++) { const id = randomBytes(32); made.add(Buffer.from(id).toString('hex')); yield id }
              yield * target.listRecords(options)
            }
          }
          if (prop === 'getRecord') {
            return async (id: Uint8Array) => {
              if (made.has(Buffer.from(id).toString('hex'))) { fakeReads++; return randomBytes(64) }
              return await target.getRecord(id)
            }
          }
          return Reflect.get(target, prop, receiver) as unknown
        }
      })
    const store = new ErasurePackStore(new MemoryShareStore('local'), { ownPersonId: 'me', candidates: () => PEERS.map(cand), storeFor }, index, { scheme: { k: 2, m: 3 } })
    try {
      const real: string[] = []
      for (let i = 0; i < 3; i++) {
        const data = randomBytes(200)
        const id = contentHash(data)
        await store.putRecord(id, data)
        real.push(Buffer.from(id).toString('hex'))
      }
      // a new machine: nothing on this disk
      const fresh = new ErasurePackStore(new MemoryShareStore('local2'), { ownPersonId: 'me', candidates: () => PEERS.map(cand), storeFor }, index, { scheme: { k: 2, m: 3 } })
      const distrust = new ClaimDistrust(fresh.recordClaimant.bind(fresh), 'record')
      const read: string[] = []
      let refused = 0
      for await (const id of fresh.listRecords()) {
        if (distrust.refusal(id) !== undefined) { refused++; continue }
        try {
          const bytes = await fresh.getRecord(id)
          const ok = Buffer.from(contentHash(bytes)).equals(Buffer.from(id))
          distrust.note(id, ok)
          if (ok) read.push(Buffer.from(id).toString('hex'))
        } catch {
          distrust.note(id, false) // a made-up id: no holder has it
        }
      }
      assert.deepEqual(read.sort(), [...real].sort(), 'every real record is read')
      assert.equal(refused, 30 - MAX_SOLE_CLAIM_FAILURES)
      assert.ok(fakeReads <= MAX_SOLE_CLAIM_FAILURES, `${fakeReads} reads of made-up records`)
    } finally {
      await index.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
