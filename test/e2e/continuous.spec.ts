/**
 * Continuous mode as a user meets it (issue 14, item 1). `backup --changed-from` reads only the
 * folders where something changed and takes the rest from the last snapshot, and the result
 * restores byte-exact like a full run; `publish --watch` makes the daemon back changes up soon
 * after a folder goes quiet, without walking the whole tree.
 */
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cliFor } from '../helpers/cli.js'
import { startDaemon, stopDaemon, waitFor, type DaemonNode } from '../helpers/daemons.js'
import { compareTrees } from '../helpers/tree-compare.js'
import type { JobReport } from '../../src/node/reports.js'

/** 20 folders of 5 files, one level of subfolders. */
function makeTree (root: string): void {
  for (let d = 0; d < 20; d++) {
    mkdirSync(join(root, `d${d}`, 'sub'), { recursive: true })
    for (let f = 0; f < 5; f++) writeFileSync(join(root, `d${d}`, f === 4 ? 'sub/deep.txt' : `f${f}.txt`), `folder ${d} file ${f}\n`.repeat(50 + f))
  }
}

/** Every share file of a home's local store. */
function shareFiles (home: string): string[] {
  const root = join(home, 'store', 'shares')
  return readdirSync(root).flatMap(d => readdirSync(join(root, d)).filter(f => !f.startsWith('.')).map(f => join(root, d, f)))
}

describe('e2e: continuous mode', function () {
  this.timeout(180_000)
  let dir: string
  before(() => { dir = mkdtempSync(join(tmpdir(), 'p2pbak-watch-')) })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  it('backup --changed-from lists only the changed folders and restores byte-exact', async () => {
    const home = join(dir, 'h1')
    const src = join(dir, 'src1')
    makeTree(src)
    const cli = cliFor(home, 'pw')
    assert.equal((await cli('init')).code, 0)
    assert.equal((await cli('backup', src)).code, 0)
    // an edit, a new file in a new folder, a deletion
    writeFileSync(join(src, 'd3', 'f1.txt'), 'edited\n')
    mkdirSync(join(src, 'd7', 'sub', 'new'))
    writeFileSync(join(src, 'd7', 'sub', 'new', 'n.txt'), 'new\n')
    unlinkSync(join(src, 'd9', 'f2.txt'))
    const list = join(dir, 'changed.txt')
    writeFileSync(list, [join(src, 'd3', 'f1.txt'), join(src, 'd7', 'sub', 'new', 'n.txt'), join(src, 'd7', 'sub', 'new'), join(src, 'd9', 'f2.txt')].join('\n') + '\n')
    const b = await cli('backup', src, '--changed-from', list, '--json')
    assert.equal(b.code, 0, b.stderr)
    const out = b.json<{ dirsReused: number, filesUnchanged: number, filesChanged: number, filesNew: number }>()
    // listed: src, d3, d7, d7/sub, d7/sub/new, d9; taken unread: the 17 other folders, d3/sub and d9/sub
    assert.equal(out.dirsReused, 17 + 2, JSON.stringify(out))
    assert.equal(out.filesChanged, 1)
    assert.equal(out.filesNew, 1)
    const target = join(dir, 'r1')
    assert.equal((await cli('restore', 'latest', '--target', target)).code, 0)
    assert.deepEqual(compareTrees(src, join(target, src), { mtimeResolutionNs: 1000n }), [])
    assert.equal((await cli('check', '--read-data')).code, 0)
  })

  it('backup --changed-from after packs vanished from the store walks everything and stores that data again; the next run is incremental', async () => {
    const home = join(dir, 'h3')
    const src = join(dir, 'src3')
    makeTree(src)
    const cli = cliFor(home, 'pw')
    assert.equal((await cli('init')).code, 0)
    assert.equal((await cli('backup', src)).code, 0)
    const before = new Set(shareFiles(home))
    // a new folder whose data goes into a pack of its own
    mkdirSync(join(src, 'photos'))
    writeFileSync(join(src, 'photos', 'big.bin'), randomBytes(300_000))
    assert.equal((await cli('backup', src)).code, 0)
    // that data pack is lost (a disk error, a file deleted by hand); `check` forgets it
    const added = shareFiles(home).filter(f => !before.has(f)).sort((a, b) => statSync(b).size - statSync(a).size)
    assert.ok(added.length >= 1)
    unlinkSync(added[0] as string)
    assert.notEqual((await cli('check')).code, 0)
    // a continuous run that names only an edit elsewhere: photos/ must not be taken from the last snapshot
    writeFileSync(join(src, 'd3', 'f1.txt'), 'edited\n')
    const list = join(dir, 'changed3.txt')
    writeFileSync(list, join(src, 'd3', 'f1.txt') + '\n')
    const b = await cli('backup', src, '--changed-from', list, '--json')
    assert.equal(b.code, 0, b.stderr)
    assert.equal(b.json<{ dirsReused: number }>().dirsReused, 0, 'a full run')
    const target = join(dir, 'r3')
    const r = await cli('restore', 'latest', '--target', target)
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(compareTrees(src, join(target, src), { mtimeResolutionNs: 1000n }), [])
    // the full run is the new base: the next continuous run reuses folders again
    writeFileSync(join(src, 'd4', 'f1.txt'), 'edited too\n')
    writeFileSync(list, join(src, 'd4', 'f1.txt') + '\n')
    const next = await cli('backup', src, '--changed-from', list, '--json')
    assert.equal(next.code, 0, next.stderr)
    assert.ok(next.json<{ dirsReused: number }>().dirsReused > 0)
  })

  it('publish --watch: a file changing every 200 ms for a while is in a snapshot soon after it stops, and no run after the first walks the tree', async () => {
    const node: DaemonNode = { name: 'w', home: join(dir, 'h2'), userId: '' }
    const src = join(dir, 'src2')
    makeTree(src)
    const cli = cliFor(node.home, 'pw')
    assert.equal((await cli('init')).code, 0)
    assert.equal((await cli('group', 'create', 'solo')).code, 0)
    const p = await cli('publish', src, '--every', '1d', '--watch', '--quiet-period', '1s')
    assert.equal(p.code, 0, p.stderr)
    const reports = async (): Promise<JobReport[]> => (await cli('report', '--last', '100', '--json')).json<JobReport[]>()
    await startDaemon(node)
    try {
      // the first run is full (what changed while nobody watched is unknown)
      await waitFor('the first published snapshot', async () => (await reports()).some(r => r.job === 'publish' && r.outcome === 'success'), 60_000)
      const firstRuns = (await reports()).length
      const busy = join(src, 'd5', 'busy.log')
      let last = ''
      for (let i = 0; i < 15; i++) {
        last = `line ${i}\n`.repeat(i + 1)
        writeFileSync(busy, last)
        await new Promise(resolve => setTimeout(resolve, 200)) // the user's pace of edits, not a wait for a condition
      }
      await waitFor('the last version in the latest snapshot', async () => {
        const d = await cli('dump', 'latest', busy)
        return d.code === 0 && d.stdout === last
      }, 60_000)
      const later = (await reports()).slice(0, (await reports()).length - firstRuns)
      assert.ok(later.length >= 1)
      for (const r of later) {
        assert.equal(r.outcome, 'success', JSON.stringify(r))
        assert.ok((r.files?.dirsReused ?? 0) >= 19, `an incremental run listed only d5: ${JSON.stringify(r.files)}`)
      }
    } finally {
      await stopDaemon(node)
    }
  })
})
