/**
 * A prune acts only on a head that shows every snapshot (docs/gc.md §4.4): the records of a person's
 * other devices are on friends only, so a friend's listing that fails or is cut off, or no friend
 * answering at all, postpones it. The grid test (test/integration/gc-grid.spec.ts, "friends do not
 * answer…") shows what it prevents: before, such a prune condemned and then deleted the other
 * device's newest snapshot.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { deriveIdentity, loadBackend, type Identity, type SodiumBackend } from '../../../src/crypto/index.js'
import { IndexDb, MemoryShareStore, type ShareStore } from '../../../src/store/index.js'
import { ErasurePackStore, headDoubt, readHead } from '../../../src/repo/index.js'
import type { Candidate } from '../../../src/placement/index.js'

const PEERS = ['A', 'B', 'C']
const cand = (peerId: string): Candidate => ({ peerId, personId: `person-${peerId}`, online: true, freeBytes: 1 << 30, reliability: 1 })

describe('repo/prune: a head every friend listed in full, or no prune', () => {
  let sodium: SodiumBackend
  let identity: Identity
  let dir: string
  let index: IndexDb
  before(async () => {
    sodium = await loadBackend()
    identity = deriveIdentity(sodium, new Uint8Array(32).fill(3))
  })
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-prune-head-'))
    index = IndexDb.open(join(dir, 'index'))
  })
  afterEach(async () => {
    await index.close()
    rmSync(dir, { recursive: true, force: true })
  })

  /** A group store over three friends; `failing` lists records up to an error, `online` who is connected. */
  function group (opts: { failing?: string, online?: string[], otherDevices?: boolean }): ErasurePackStore {
    const stores = new Map(PEERS.map(p => [p, new MemoryShareStore(p)]))
    const storeFor = (p: string): ShareStore => {
      const s = stores.get(p) as MemoryShareStore
      if (p !== opts.failing) return s
      return new Proxy(s, {
        get (target, prop, receiver) {
          if (prop !== 'listRecords') return Reflect.get(target, prop, receiver) as unknown
          return async function * () { yield new Uint8Array(32); throw new Error('stream reset') }
        }
      })
    }
    const online = opts.online ?? PEERS
    return new ErasurePackStore(new MemoryShareStore('local'), {
      ownPersonId: 'me',
      candidates: () => PEERS.map(p => ({ ...cand(p), online: online.includes(p) })),
      storeFor,
      hasOtherDevices: () => opts.otherDevices ?? true
    }, index, { listBounds: { budgetMs: 2000 } })
  }

  it('every friend listed in full: no doubt', async () => {
    const head = await readHead(group({}), sodium, identity)
    assert.deepEqual(head.listing, { asked: 3, answered: 3, incomplete: [], otherDevices: true })
    assert.equal(headDoubt(head), undefined)
  })

  it('a friend whose listing breaks off: the prune waits, and says which friend and why', async () => {
    const head = await readHead(group({ failing: 'B' }), sodium, identity)
    assert.equal(head.listing?.answered, 2)
    assert.match(headDoubt(head) ?? '', /the snapshot records on 1 of 3 friend\(s\) could not be listed in full \(B: failed: stream reset\)/)
  })

  it('no friend connected: the prune waits when the person has other devices, not when this is their only one', async () => {
    assert.match(headDoubt(await readHead(group({ online: [] }), sodium, identity)) ?? '', /no friend holding the snapshot records answered/)
    assert.equal(headDoubt(await readHead(group({ online: [], otherDevices: false }), sodium, identity)), undefined)
    assert.equal(headDoubt(await readHead(group({ online: ['C'] }), sodium, identity)), undefined, 'one friend that lists in full is enough')
  })
})
