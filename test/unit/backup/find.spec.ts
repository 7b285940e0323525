/**
 * `find` across snapshots (findPaths): the hits and the snapshots named for each, and each directory
 * tree read once however many snapshots share it (issue 13, item 4: 100 snapshots of a large tree).
 */
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Archiver, findPaths } from '../../../src/backup/index.js'
import { Home } from '../../../src/node/home.js'
import type { Snapshot } from '../../../src/repo/index.js'
import type { TreeId } from '../../../src/ids.js'
import { toHex } from '../../../src/util/bytes.js'

describe('backup: find across snapshots', function () {
  this.timeout(60_000)
  let dir: string
  let home: Home
  let snaps: Snapshot[]
  const src = (...p: string[]): string => join(dir, 'src', ...p)

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-find-'))
    await Home.init({ home: join(dir, 'home'), passphrase: null, kdf: { opslimit: 1, memlimit: 8192 } })
    home = await Home.open({ home: join(dir, 'home'), passphrase: async () => null })
    mkdirSync(src('a'), { recursive: true })
    mkdirSync(src('b', 'c'), { recursive: true })
    mkdirSync(src('d'), { recursive: true })
    writeFileSync(src('a', 'x.txt'), 'x1')
    writeFileSync(src('b', 'c', 'y.txt'), 'y')
    writeFileSync(src('b', 'c', 'z.txt'), 'z')
    writeFileSync(src('d', 'report.txt'), 'r')
    const archiver = (): Archiver => new Archiver({ repo: home.repo, cdc: home.cdc })
    await archiver().run({ paths: [src()], host: 'h', program: 'test', now: () => 1_000_000_000n })
    // the second snapshot: a/x.txt edited, a/new.txt added, d/report.txt removed; b (and b/c) unchanged
    writeFileSync(src('a', 'x.txt'), 'x2, longer')
    writeFileSync(src('a', 'new.txt'), 'n')
    unlinkSync(src('d', 'report.txt'))
    await archiver().run({ paths: [src()], host: 'h', program: 'test', now: () => 2_000_000_000n })
    snaps = (await home.syncIndex()).head.snapshots
    assert.equal(snaps.length, 2)
  })
  after(async () => {
    await home.closeNow()
    rmSync(dir, { recursive: true, force: true })
  })

  const ids = (): { older: string, newer: string } => {
    const [a, b] = snaps.map(s => toHex(s.id))
    return snaps[0]?.record.time !== undefined && snaps[1] !== undefined && snaps[0].record.time < snaps[1].record.time
      ? { older: a as string, newer: b as string }
      : { older: b as string, newer: a as string }
  }

  it('names every snapshot that holds a path, newest first, and the newest as the hit\'s snapshot', async () => {
    const { older, newer } = ids()
    const hit = async (pattern: string, suffix: string): Promise<{ snapshotId: string, snapshots: string[], type: string }> => {
      const h = (await findPaths(home.repo, snaps, pattern)).find(x => x.path.endsWith(suffix))
      assert.ok(h !== undefined, `no hit ending in ${suffix} for ${pattern}`)
      return h
    }
    const y = await hit('y.txt', '/b/c/y.txt')
    assert.deepEqual(y.snapshots, [newer, older])
    assert.equal(y.snapshotId, newer)
    assert.equal(y.type, 'file')
    assert.deepEqual((await hit('x.txt', '/a/x.txt')).snapshots, [newer, older])
    assert.deepEqual((await hit('new.txt', '/a/new.txt')).snapshots, [newer])
    const r = await hit('report', '/d/report.txt')
    assert.deepEqual(r.snapshots, [older])
    assert.equal(r.snapshotId, older)
    assert.equal((await hit('src', '/src')).type, 'dir')
  })

  it('reads each directory tree once, however many snapshots share it', async () => {
    // every distinct tree of both snapshots (here each at one path only)
    const distinct = new Set<string>()
    const collect = async (tree: TreeId): Promise<void> => {
      distinct.add(toHex(tree))
      for (const n of (await home.repo.loadTree(tree)).nodes) if (n.subtree !== undefined) await collect(n.subtree)
    }
    for (const s of snaps) await collect(s.record.tree)
    const repo = home.repo
    const original = repo.loadTree.bind(repo)
    const loaded: string[] = []
    repo.loadTree = async (id: TreeId) => { loaded.push(toHex(id)); return await original(id) }
    try {
      await findPaths(repo, snaps, 'y.txt')
    } finally {
      repo.loadTree = original
    }
    // the unchanged b and b/c are shared by both snapshots: walked for the first one only
    assert.equal(new Set(loaded).size, distinct.size)
    assert.equal(loaded.length, distinct.size, 'a tree shared by both snapshots was read twice')
  })
})
