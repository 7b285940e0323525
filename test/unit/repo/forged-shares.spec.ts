/**
 * A holder that lies on read (issue 11, finding 1): it answers `get` at once with a forged share
 * whose header claims another scheme (k = 1, a tiny pack), or with garbage under the right header.
 * Reads must still decode from the honest holders, with the index's scheme and without it
 * (recovery), and the liar's share must count as failing so that repair replaces it.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { contentHash } from '../../../src/crypto/index.js'
import { encodeShareHeader, decodeShareHeader, SHARE_HEADER_BYTES } from '../../../src/format/share.js'
import { MemoryShareStore, IndexDb, type ShareStore, type ShareRef } from '../../../src/store/index.js'
import { ErasurePackStore } from '../../../src/repo/index.js'
import type { Candidate } from '../../../src/placement/index.js'
import { asPackId, type PackId } from '../../../src/ids.js'
import { concatBytes } from '../../../src/util/bytes.js'

const PEERS = ['A', 'B', 'C', 'D', 'E']
const cand = (peerId: string): Candidate => ({ peerId, personId: `person-${peerId}`, online: true, freeBytes: 1 << 30, reliability: 1 })

/** A store whose `get` answers `lie(ref)` at once when it returns bytes; honest answers come 20 ms later. */
function lying (inner: MemoryShareStore, lie: (ref: ShareRef, real: Uint8Array) => Uint8Array | undefined): ShareStore {
  return new Proxy(inner, {
    get (target, prop, receiver) {
      if (prop !== 'get') return Reflect.get(target, prop, receiver) as unknown
      return async (ref: ShareRef, options?: { signal?: AbortSignal }): Promise<Uint8Array> => {
        const real = await target.get(ref, options)
        const forged = lie(ref, real)
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
  const open = (ix: IndexDb): ErasurePackStore => new ErasurePackStore(new MemoryShareStore('local'), {
    ownPersonId: 'me',
    candidates: () => PEERS.map(cand),
    storeFor: (p: string) => {
      const s = stores.get(p) as MemoryShareStore
      return lying(s, (ref, real) => (p === liar ? forge(asPackId(ref.pack), ref, real) : undefined))
    }
  }, ix, { scheme: { k: 2, m: 3 } })

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-forged-'))
    index = IndexDb.open(join(dir, 'index'))
    stores = new Map(PEERS.map(p => [p, new MemoryShareStore(p)]))
    liar = undefined
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
})
