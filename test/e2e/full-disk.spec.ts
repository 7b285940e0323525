/**
 * A full disk, as a user meets it (the brief: "a full disk … gets a clear error and loses nothing"),
 * with real tmpfs mounts of a few MiB (root; skipped with the reason otherwise):
 *   - the home's own disk fills during a backup: the backup fails with ERR_NO_SPACE and says what to
 *     do, the earlier snapshot still restores, nothing half-written is left, and once space is freed
 *     the next backup completes;
 *   - a friend's disk fills during a group backup (its quota is larger than its disk): the backup
 *     still exits 0 and says which packs stayed on this disk and why, the friend's daemon goes on
 *     serving, the daemon then moves those packs to the friends with room, and the snapshot restores
 *     byte-exact.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cliFor } from '../helpers/cli.js'
import { cliAt, filesUnder, startDaemon, stopDaemon, waitFor, type DaemonNode } from '../helpers/daemons.js'
import { compareTrees } from '../helpers/tree-compare.js'
import { mountTinyTmpfs, unmountTmpfs } from '../fixtures/tmpfs.js'

const MiB = 1 << 20

describe('e2e: a full disk', function () {
  this.timeout(300_000)
  let dir: string
  const mounts: string[] = []

  /** A tmpfs of `size`, or skips the test with the reason. */
  async function tinyDisk (test: Mocha.Context, size: string): Promise<string> {
    const m = await mountTinyTmpfs(size)
    if ('skipReason' in m) test.skip()
    const path = (m as { path: string }).path
    mounts.push(path)
    return path
  }

  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'p2pbak-full-disk-')) })
  afterEach(async () => {
    for (const m of mounts.splice(0)) await unmountTmpfs(m)
    rmSync(dir, { recursive: true, force: true })
  })

  it('the home\'s disk fills during a backup: ERR_NO_SPACE and what to do, the earlier snapshot restores, nothing half-written; with space again the next backup completes', async function () {
    const disk = await tinyDisk(this, '12m')
    const cli = cliFor(join(disk, 'home'))
    assert.equal((await cli('init')).code, 0)
    const small = join(dir, 'small')
    const big = join(dir, 'big')
    mkdirSync(small)
    mkdirSync(big)
    writeFileSync(join(small, 'a.bin'), randomBytes(MiB))
    writeFileSync(join(big, 'b.bin'), randomBytes(30 * MiB))
    const first = await cli('backup', small, '--json')
    assert.equal(first.code, 0, first.stderr)

    const full = await cli('backup', big)
    assert.equal(full.code, 1, full.stdout + full.stderr)
    assert.match(full.stderr, /no space left on the device .*; free some space and retry/)
    const json = await cli('backup', big, '--json')
    assert.equal(json.code, 1)
    assert.match(json.stdout + json.stderr, /ERR_NO_SPACE/)
    assert.deepEqual(filesUnder(join(disk, 'home')).filter(f => f.includes('.tmp-')), [], 'no temporary file is left')
    const snaps = (await cli('snapshots', '--json')).json<Array<{ id: string }>>()
    assert.equal(snaps.length, 1, 'the failed backups saved no snapshot')
    assert.equal((await cli('check', '--read-data')).code, 0)
    const r1 = join(dir, 'r1')
    assert.equal((await cli('restore', 'latest', '--target', r1)).code, 0)
    assert.deepEqual(compareTrees(small, join(r1, small)), [])

    execFileSync('mount', ['-o', 'remount,size=128m', disk])
    const again = await cli('backup', big)
    assert.equal(again.code, 0, again.stderr)
    const r2 = join(dir, 'r2')
    assert.equal((await cli('restore', 'latest', '--target', r2)).code, 0)
    assert.deepEqual(compareTrees(big, join(r2, big)), [])
    assert.equal((await cli('check', '--read-data')).code, 0)
  })

  it('a friend\'s disk fills during a group backup (its quota is larger than its disk): the backup exits 0, the friend goes on serving, the snapshot restores byte-exact', async function () {
    // room for one 16 MiB pack's share (and the home's own files), not for two
    const disk = await tinyDisk(this, '28m')
    const ann: DaemonNode = { name: 'ann', home: join(dir, 'ann'), userId: '' }
    const bob: DaemonNode = { name: 'bob', home: join(dir, 'bob'), userId: '' }
    const cid: DaemonNode = { name: 'cid', home: join(dir, 'cid'), userId: '' }
    const dee: DaemonNode = { name: 'dee', home: join(disk, 'dee'), userId: '' }
    const people = [ann, bob, cid, dee]
    try {
      for (const p of people) assert.equal((await cliAt(p, 'init')).code, 0, `${p.name} init`)
      // the settings a user gets; ann's rounds every 3 s, so that moving her packs later is seen soon
      for (const p of people) await startDaemon(p, p === ann ? ['--refresh', '3000'] : [], { defaults: true })
      assert.equal((await cliAt(ann, 'group', 'create', 'friends')).code, 0)
      for (const p of [bob, cid, dee]) {
        assert.equal((await cliAt(p, 'contribute', '1G')).code, 0)
        const inv = (await cliAt(ann, 'group', 'invite', '--json')).json<{ invite: string }>().invite
        const j = await cliAt(p, 'join', inv)
        assert.equal(j.code, 0, `${p.name} join: ${j.stderr}`)
      }
      const src = join(dir, 'src')
      mkdirSync(src)
      for (let i = 0; i < 3; i++) writeFileSync(join(src, `f${i}.bin`), randomBytes(15 * MiB))
      const b = await cliAt(ann, 'backup', src, '--json')
      assert.equal(b.code, 0, b.stderr + b.stdout)
      const deeStatus = await cliAt(dee, 'status', '--json')
      assert.equal(deeStatus.code, 0, 'dee\'s daemon still answers')
      const target = join(dir, 'restore')
      const r = await cliAt(ann, 'restore', 'latest', '--target', target)
      assert.equal(r.code, 0, r.stderr)
      assert.deepEqual(compareTrees(src, join(target, src)), [])
      // what dee could not take stays on ann's disk, and the summary says why
      const placement = b.json<{ placement: { local: number, localReason?: string } }>().placement
      assert.ok(placement.local >= 1, JSON.stringify(placement))
      assert.match(placement.localReason ?? '', /no room on|full/, JSON.stringify(placement))
      console.log(`      full friend: ${placement.local} pack(s) kept on ann's disk: ${placement.localReason ?? ''}`)
      // dee now offers only what her disk can take: ann's rounds move those packs to bob and cid (a
      // narrower stripe and ann's own copy, widened once dee has room)
      const t0 = Date.now()
      await waitFor('ann\'s packs to leave her disk for bob and cid', async () => {
        const s = await cliAt(ann, 'status', '--json')
        return s.code === 0 && s.json<{ snapshots: Array<{ localPacks: number }> }>().snapshots.every(x => x.localPacks === 0)
      }, 120_000)
      console.log(`      full friend: every pack on friends ${Date.now() - t0} ms later`)
    } finally {
      for (const p of people) await stopDaemon(p)
    }
  })
})
