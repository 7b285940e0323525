import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { withAncestors } from '../../../src/backup/archiver.js'
import { FolderWatcher, type WatchBatch } from '../../../src/node/watch.js'
import { waitFor } from '../../helpers/daemons.js'

describe('continuous mode: what an incremental run lists', () => {
  it('every changed path and every directory above it', () => {
    assert.deepEqual([...withAncestors(['/a/b/c.txt', '/a/d/'])].sort(), ['/', '/a', '/a/b', '/a/b/c.txt', '/a/d'])
    assert.deepEqual([...withAncestors([])], [])
  })
})

describe('node/FolderWatcher', function () {
  this.timeout(20_000)
  let dir: string
  let watcher: FolderWatcher | undefined
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'p2pbak-watch-unit-')); mkdirSync(join(dir, 'sub')) })
  afterEach(() => { watcher?.close(); rmSync(dir, { recursive: true, force: true }) })

  it('starts with a full run, then batches the changed paths after the quiet period; a batch given back joins the next', async () => {
    const batches: WatchBatch[] = []
    watcher = new FolderWatcher([dir], { quietMs: 300, onBatch: b => batches.push(b) })
    watcher.start()
    await waitFor('the first batch', () => batches.length === 1, 10_000)
    assert.equal(batches[0]?.kind, 'full')
    writeFileSync(join(dir, 'sub', 'a.txt'), 'a')
    await waitFor('a batch with sub/a.txt', () => batches.some(b => b.kind === 'changed' && b.paths.includes(join(dir, 'sub', 'a.txt'))), 10_000)
    const last = batches.at(-1) as WatchBatch
    watcher.giveBack(last)
    writeFileSync(join(dir, 'b.txt'), 'b')
    await waitFor('a batch with both', () => {
      const b = batches.at(-1)
      return b !== last && b?.kind === 'changed' && b.paths.includes(join(dir, 'sub', 'a.txt')) && b.paths.includes(join(dir, 'b.txt'))
    }, 10_000)
  })
})
