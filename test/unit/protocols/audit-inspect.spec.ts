/**
 * A holder's check of a share it holds (src/protocols/audit.ts inspectShare): read range by range, it
 * finds what reading the share whole would find (the same leaves, the same verdict), also when the
 * damage lies beyond the first range.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { contentHash, shareLeaves } from '../../../src/crypto/index.js'
import { SHARE_HEADER_BYTES, decodeShareHeader } from '../../../src/format/share.js'
import { asPackId } from '../../../src/ids.js'
import { INSPECT_READ_BYTES, inspectShare } from '../../../src/protocols/audit.js'
import { encodeShares } from '../../../src/repo/index.js'
import { MemoryShareStore, type ShareRef } from '../../../src/store/index.js'
import { equalBytes } from '../../../src/util/bytes.js'

/** What reading the share whole says: its header names it and its data matches the header's hash. */
function wholeVerdict (share: Uint8Array, ref: ShareRef): boolean {
  try {
    const h = decodeShareHeader(share)
    return h.index === ref.index && equalBytes(h.packId, ref.pack) && equalBytes(contentHash(share.subarray(SHARE_HEADER_BYTES)), h.dataHash)
  } catch {
    return false // no valid header: damaged, as inspectShare says
  }
}

describe('protocols/audit inspectShare', () => {
  // pack sizes around the read size: under one range, exactly one, several with a short tail
  for (const packBytes of [10_000, INSPECT_READ_BYTES - SHARE_HEADER_BYTES, 2 * INSPECT_READ_BYTES + 12_345]) {
    it(`a share of a ${packBytes}-byte pack: the leaves of the whole share, and each kind of damage found`, async () => {
      const bytes = new Uint8Array(randomBytes(packBytes))
      const pack = asPackId(contentHash(bytes))
      const [share] = await encodeShares(pack, bytes, 1, 1) as [Uint8Array]
      const ref = { pack, index: 0 }
      const check = async (held: Uint8Array, as: ShareRef = ref): Promise<{ intact: boolean, leaves: Uint8Array[] }> => {
        const store = new MemoryShareStore()
        await store.put(as, held)
        return await inspectShare(store, as, held.byteLength)
      }
      const good = await check(share)
      assert.equal(good.intact, true)
      assert.deepEqual(good.leaves, shareLeaves(share))
      // a flipped byte in the last range, in the first range's data, in the magic, in the index
      for (const at of [share.byteLength - 1, SHARE_HEADER_BYTES + 7, 3, 11]) {
        const bad = share.slice()
        bad[at] = (bad[at] as number) ^ 0x40
        const got = await check(bad)
        assert.equal(got.intact, false, `byte ${at} flipped`)
        assert.equal(got.intact, wholeVerdict(bad, ref))
        assert.deepEqual(got.leaves, shareLeaves(bad))
      }
      // another share's name, a share cut short, a share shorter than its header
      assert.equal((await check(share, { pack, index: 1 })).intact, false)
      assert.equal((await check(share.subarray(0, share.byteLength - 1))).intact, false)
      assert.equal((await check(share.subarray(0, SHARE_HEADER_BYTES - 1))).intact, false)
    })
  }

  it('an empty share is damaged, with the one leaf of an empty segment', async () => {
    const pack = asPackId(contentHash(new Uint8Array(1)))
    const store = new MemoryShareStore()
    // the store contract allows an empty share; a persister refuses one, an older one may hold it
    await store.put({ pack, index: 0 }, new Uint8Array(0))
    const got = await inspectShare(store, { pack, index: 0 }, 0)
    assert.equal(got.intact, false)
    assert.deepEqual(got.leaves, shareLeaves(new Uint8Array(0)))
  })
})
