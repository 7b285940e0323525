/**
 * The local index maps its file once (issue 13, item 4): lmdb-js's default starts with a small map and
 * doubles it as the file grows, keeping every earlier map, so the pages read through several maps
 * counted several times in the backup's resident size (132 MB resident for a 52 MB index).
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { IndexDb } from '../../../src/store/index-db.js'

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
