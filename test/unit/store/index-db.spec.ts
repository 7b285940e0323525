/**
 * The local index: file cache entries read back as written (the fast decoder and the strict one
 * agree), and the index maps its file once (issue 13, item 4): lmdb-js's default starts with a small map and
 * doubles it as the file grows, keeping every earlier map, so the pages read through several maps
 * counted several times in the backup's resident size (130 MiB resident for a 52 MB index).
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { IndexDb } from '../../../src/store/index-db.js'
import { asPackId } from '../../../src/ids.js'

describe('store: file cache entries', function () {
  let dir: string
  before(() => { dir = mkdtempSync(join(tmpdir(), 'p2pbak-index-files-')) })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  it('read back as written, at the edges of each field', async () => {
    const db = IndexDb.open(join(dir, 'index'))
    try {
      const u64 = [0n, 1n, 127n, 128n, 2n ** 28n - 1n, 2n ** 28n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n]
      const i64 = [0n, -1n, 1n, 1_733_480_000_123_456_789n, -1_733_480_000_123_456_789n, 2n ** 63n - 1n, -(2n ** 63n)]
      const sizes = [0, 1, 2 ** 28 - 1, 2 ** 28, Number.MAX_SAFE_INTEGER]
      const entries: Array<{ key: Uint8Array, entry: { size: number, mtimeNs: bigint, ctimeNs: bigint, inode: bigint, device: bigint, content: Uint8Array } }> = []
      let k = 0
      for (const inode of u64) {
        for (const mtimeNs of i64) {
          const key = new Uint8Array(32)
          key[0] = k >> 8
          key[1] = k & 0xff
          const content = new Uint8Array(32 * (k % 3)).fill(k & 0xff)
          entries.push({ key, entry: { size: sizes[k % sizes.length] as number, mtimeNs, ctimeNs: i64[(k + 2) % i64.length] as bigint, inode, device: u64[(k + 3) % u64.length] as bigint, content } })
          k++
        }
      }
      for (const { key, entry } of entries) db.putFile(key, entry)
      await db.flush()
      for (const { key, entry } of entries) {
        const got = db.getFile(key)
        assert.ok(got !== undefined)
        assert.deepEqual({ ...got, content: new Uint8Array(got.content) }, entry)
      }
    } finally {
      await db.close()
    }
  })
})

describe('store: the index is mapped once', function () {
  this.timeout(60_000)
  let dir: string
  before(function () {
    if (!existsSync('/proc/self/maps')) this.skip()
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-index-map-'))
  })
  after(() => { if (dir !== undefined) rmSync(dir, { recursive: true, force: true }) })

  it('one map of data.mdb after the index grew to several MB', async () => {
    const db = IndexDb.open(join(dir, 'index'))
    try {
      const content = new Uint8Array(64)
      for (let i = 0; i < 40_000; i++) {
        const key = new Uint8Array(32)
        new DataView(key.buffer).setUint32(0, i * 2654435761 >>> 0)
        new DataView(key.buffer).setUint32(4, i)
        db.putFile(key, { size: i, mtimeNs: BigInt(i), ctimeNs: BigInt(i), inode: BigInt(i), device: 1n, content })
      }
      await db.flush()
      const file = join(dir, 'index', 'data.mdb')
      assert.ok(readFileSync(file).byteLength > 4 << 20, 'the index did not grow past 4 MiB')
      const maps = readFileSync('/proc/self/maps', 'utf8').split('\n').filter(l => l.endsWith(file))
      assert.equal(maps.length, 1, `data.mdb is mapped ${maps.length} times:\n${maps.join('\n')}`)
    } finally {
      await db.close()
    }
  })
})

describe('store: a placement and its scheme', function () {
  let dir: string
  before(() => { dir = mkdtempSync(join(tmpdir(), 'p2pbak-index-placement-')) })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  it('are written together (a new stripe never sits beside the old k and m); without a scheme only the placement changes', async () => {
    const db = IndexDb.open(join(dir, 'index'))
    try {
      const id = asPackId(new Uint8Array(32).fill(7))
      await db.addPack({ id, size: 1000, blobs: 1, k: 1, m: 1, time: 1, kind: 0 }, [])
      await db.setPlacement(id, new Map([[0, 'peer:A'], [1, 'peer:B'], [2, 'peer:C']]), { k: 1, m: 2 })
      assert.deepEqual([...(db.getPlacement(id) ?? [])], [[0, 'peer:A'], [1, 'peer:B'], [2, 'peer:C']])
      assert.deepEqual({ k: db.getPack(id)?.k, m: db.getPack(id)?.m }, { k: 1, m: 2 })
      await db.setPlacement(id, new Map([[0, 'peer:D'], [1, 'peer:B'], [2, 'peer:C']]))
      assert.deepEqual({ k: db.getPack(id)?.k, m: db.getPack(id)?.m, holder: db.getPlacement(id)?.get(0) }, { k: 1, m: 2, holder: 'peer:D' })
      // a pack not indexed yet (a backup records it after its put): the placement alone
      const fresh = new Uint8Array(32).fill(8)
      await db.setPlacement(fresh, new Map([[0, 'peer:A']]), { k: 1, m: 0 })
      assert.equal(db.getPack(fresh), undefined)
      assert.equal(db.getPlacement(fresh)?.get(0), 'peer:A')
    } finally {
      await db.close()
    }
  })
})
