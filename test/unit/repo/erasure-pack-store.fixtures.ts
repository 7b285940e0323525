/** What the ErasurePackStore specs share: a fresh index per test, candidates, and friends' stores that go away or refuse. */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { contentHash } from '../../../src/crypto/index.js'
import { MemoryShareStore, IndexDb, type AbortOptions, type ShareRef } from '../../../src/store/index.js'
import { ProtocolError, RefusedError } from '../../../src/errors.js'
import type { ErasurePackStore } from '../../../src/repo/index.js'
import type { Candidate } from '../../../src/placement/index.js'
import { asPackId, type PackId } from '../../../src/ids.js'

/** A fresh index in a temporary folder for each test (`use` gets it), closed and removed after. */
export function tempIndex (use: (index: IndexDb) => void): void {
  let dir: string
  let index: IndexDb
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-eps-'))
    index = IndexDb.open(join(dir, 'index'))
    use(index)
  })
  afterEach(async () => {
    await index.close()
    rmSync(dir, { recursive: true, force: true })
  })
}

export const cand = (peerId: string): Candidate => ({ peerId, personId: `person-${peerId}`, online: true, freeBytes: 1 << 30, reliability: 1 })

/** A pack put while only two friends answered: 1+1 with a copy on this disk, and indexed. */
export async function putNarrow (store: ErasurePackStore, index: IndexDb, time = Date.now()): Promise<{ pack: Buffer, id: PackId }> {
  const pack = randomBytes(5000)
  const id = asPackId(contentHash(pack))
  assert.deepEqual(await store.putPack(id, pack), { k: 1, m: 1, ownCopy: true })
  await index.addPack({ id, size: pack.byteLength, blobs: 1, k: 1, m: 1, time, kind: 0 }, [])
  return { pack, id }
}

/** A friend's store that went away: every put fails as a refused connection would. */
export class GoneStore extends MemoryShareStore {
  gone = true
  override async put (ref: ShareRef, data: Uint8Array, options?: AbortOptions): Promise<void> {
    if (this.gone) throw new ProtocolError(`connect ECONNREFUSED (${this.id})`, { transport: 'unreachable' })
    await super.put(ref, data, options)
  }
}

/** A persister's store as the shard server keeps it: other bytes over a held share are refused (a replace needs the owner's signature). */
export class PersisterStore extends MemoryShareStore {
  override async put (ref: ShareRef, data: Uint8Array, options?: AbortOptions): Promise<void> {
    if (await this.has(ref) && !Buffer.from(await this.get(ref)).equals(Buffer.from(data))) {
      throw new RefusedError('this persister holds the share with other bytes: replacing them needs the owner\'s user-key signature')
    }
    await super.put(ref, data, options)
  }
}
