/** Retention and garbage collection as a user runs them, and the writer lock. */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { cliFor } from '../helpers/cli.js'
import { compareTrees } from '../helpers/tree-compare.js'

function storeBytes (home: string): number {
  let total = 0
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name))
      else total += statSync(join(d, e.name)).size
    }
  }
  walk(join(home, 'store', 'shares'))
  return total
}

describe('e2e: forget, prune and the writer lock', function () {
  this.timeout(120_000)
  let dir: string
  let home: string
  let src: string
  let cli: ReturnType<typeof cliFor>
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-forget-'))
    home = join(dir, 'home')
    src = join(dir, 'src')
    mkdirSync(src)
    cli = cliFor(home)
    assert.equal((await cli('init')).code, 0)
    writeFileSync(join(src, 'stable.txt'), 'the same in every snapshot\n')
    // three snapshots, each with a different 6 MiB file: most of the data is unique to one snapshot
    for (let i = 0; i < 3; i++) {
      writeFileSync(join(src, 'changing.bin'), randomBytes(6 * 1024 * 1024))
      const b = await cli('backup', src, '--tag', i === 0 ? 'precious' : 'daily', '--json')
      assert.equal(b.code, 0, b.stderr)
    }
  })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  it('an empty policy is refused instead of forgetting everything', async () => {
    const r = await cli('forget')
    assert.equal(r.code, 2)
    assert.equal((await cli('snapshots', '--json')).json<unknown[]>().length, 3)
  })

  it('--dry-run reports and changes nothing', async () => {
    const before = storeBytes(home)
    const r = await cli('forget', '--keep-last', '1', '--prune', '--dry-run', '--json')
    assert.equal(r.code, 0, r.stderr)
    const j = r.json<{ forgotten: string[], prune: { packsDeleted: number } }>()
    assert.equal(j.forgotten.length, 2)
    assert.ok(j.prune.packsDeleted >= 1)
    assert.equal(storeBytes(home), before)
    assert.equal((await cli('snapshots', '--json')).json<unknown[]>().length, 3)
  })

  it('--keep-last 1 --keep-tag precious --prune frees the forgotten data; what is kept restores exactly', async () => {
    const before = storeBytes(home)
    const r = await cli('forget', '--keep-last', '1', '--keep-tag', 'precious', '--prune', '--json')
    assert.equal(r.code, 0, r.stderr)
    const j = r.json<{ forgotten: string[], kept: string[], prune: { bytesDeleted: number } }>()
    assert.equal(j.forgotten.length, 1)
    assert.equal(j.kept.length, 2)
    // the middle snapshot's 6 MiB file is gone from the store
    assert.ok(before - storeBytes(home) >= 5 * 1024 * 1024, `freed ${before - storeBytes(home)}`)
    const snaps = (await cli('snapshots', '--json')).json<Array<{ tags: string[] }>>()
    assert.deepEqual(snaps.map(s => s.tags[0]).sort(), ['daily', 'precious'])
    const check = await cli('check', '--read-data', '--json')
    assert.equal(check.code, 0, check.stdout)
    const target = join(dir, 'restore')
    assert.equal((await cli('restore', 'latest', '--target', target)).code, 0)
    assert.deepEqual(compareTrees(src, join(target, src), { mtimeResolutionNs: 1000n }), [])
  })

  it('a backup refuses to run while another writer holds the lock, and takes over a stale lock', async () => {
    const lock = join(home, 'lock')
    writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname(), time: new Date().toISOString(), purpose: 'backup' }))
    const busy = await cli('backup', src, '--json')
    assert.equal(busy.code, 11)
    assert.equal(busy.json<{ error: { code: string } }>().error.code, 'ERR_LOCKED')
    const dead = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString())
    writeFileSync(lock, JSON.stringify({ pid: dead, host: hostname(), time: new Date().toISOString(), purpose: 'backup' }))
    const ok = await cli('backup', src, '--json')
    assert.equal(ok.code, 0, ok.stderr)
  })
})

describe('e2e: prune repacks mostly dead packs', function () {
  this.timeout(120_000)
  it('live blobs move to a new pack, the old pack goes, everything kept restores exactly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'p2pbak-repack-'))
    try {
      const home = join(dir, 'home')
      const cli = cliFor(home)
      assert.equal((await cli('init')).code, 0)
      const a = join(dir, 'a')
      const b = join(dir, 'b')
      mkdirSync(a)
      mkdirSync(b)
      // one snapshot of a and b together: their data shares packs
      writeFileSync(join(a, 'small.bin'), randomBytes(300 * 1024))
      writeFileSync(join(b, 'large.bin'), randomBytes(3 * 1024 * 1024))
      assert.equal((await cli('backup', a, b, '--tag', 'both')).code, 0)
      // a second snapshot of a alone; then forget the first: b's 3 MiB become dead, a's data is live
      assert.equal((await cli('backup', a, '--tag', 'a-only')).code, 0)
      const snaps = (await cli('snapshots', '--json')).json<Array<{ id: string, tags: string[] }>>()
      const both = snaps.find(s => s.tags[0] === 'both')?.id ?? ''
      const r = await cli('forget', both, '--prune', '--json')
      assert.equal(r.code, 0, r.stderr)
      const p = r.json<{ prune: { packsRepacked: number, bytesRepacked: number } }>().prune
      assert.ok(p.packsRepacked >= 1, JSON.stringify(p))
      assert.ok(p.bytesRepacked >= 300 * 1024 && p.bytesRepacked < 1024 * 1024, JSON.stringify(p))
      assert.ok(storeBytes(home) < 2 * 1024 * 1024, `store ${storeBytes(home)}`)
      assert.equal((await cli('check', '--read-data')).code, 0)
      const target = join(dir, 'restore')
      assert.equal((await cli('restore', 'latest', '--target', target)).code, 0)
      assert.deepEqual(compareTrees(a, join(target, a), { mtimeResolutionNs: 1000n }), [])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
