/**
 * `restore --delta` (src/backup/delta.ts): the file already at the target is scanned in pieces of
 * twice the largest chunk, whatever its size, finds the chunks the new file needs wherever they sit,
 * and a chunk that changed in the old file since the scan is not used.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync, writeSync, openSync, closeSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chunkLengths, FastCdc } from '../../../src/chunking/index.js'
import { contentHash } from '../../../src/crypto/index.js'
import { dirFs, openTargetDir } from '../../../src/backup/dirfs.js'
import { openOldFile, readOldChunk } from '../../../src/backup/delta.js'
import type { TreeNode } from '../../../src/format/tree.js'
import { testGearTable } from '../chunking/fixtures.js'

describe('restore --delta: the file already at the target', () => {
  let dir: string
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'p2pbak-delta-')) })
  afterEach(() => { rmSync(dir, { recursive: true, force: true }) })

  it('finds every chunk of a file many times its scan buffer, reads each back checked, and skips one changed since', () => {
    // small chunks: a 200 KiB file is about 50 scan buffers of 4 KiB
    const cdc = new FastCdc(testGearTable(7), { minSize: 512, avgSize: 1024, maxSize: 2048, normalization: 1 })
    const data = randomBytes(200 * 1024)
    const ids: Uint8Array[] = []
    const pieces: Buffer[] = []
    let off = 0
    for (const len of chunkLengths(cdc, data)) { pieces.push(data.subarray(off, off + len)); ids.push(contentHash(data.subarray(off, off + len))); off += len }
    writeFileSync(join(dir, 'old.bin'), data)
    // the new file: its chunks in another order, and one the old file does not have
    const missing = contentHash(Buffer.from('not in the old file'))
    const node = { name: Buffer.from('old.bin'), content: [...ids].reverse().concat([missing]) } as unknown as TreeNode
    const old = openOldFile(dirFs(), openTargetDir(Buffer.from(dir)), Buffer.from(join(dir, 'old.bin')), node, cdc, contentHash)
    assert.ok(old !== undefined)
    try {
      assert.equal(old.found.size, new Set(ids.map(i => Buffer.from(i).toString('hex'))).size)
      for (let i = 0; i < ids.length; i++) assert.deepEqual(Buffer.from(readOldChunk(old, ids[i] as Uint8Array, contentHash) ?? []), pieces[i])
      assert.equal(readOldChunk(old, missing, contentHash), undefined)
      // the old file changes under the restore: that chunk is loaded from the repository instead
      const at = old.found.get(Buffer.from(ids[3] as Uint8Array).toString('hex'))
      assert.ok(at !== undefined)
      const w = openSync(join(dir, 'old.bin'), 'r+')
      writeSync(w, Buffer.from('changed'), 0, 7, at.offset)
      closeSync(w)
      assert.equal(readOldChunk(old, ids[3] as Uint8Array, contentHash), undefined)
    } finally {
      closeSync(old.fd)
    }
  })
})
