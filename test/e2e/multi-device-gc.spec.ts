/**
 * Two devices of one person with real daemons (issue 10, as a user would try it): the laptop's daemon
 * is stopped with SIGSTOP in the middle of a large backup into the group, after part of it reached
 * friends; the desktop (recovered from the same phrase, joined as a second device) backs up, forgets
 * the laptop's old snapshot and prunes; the laptop's daemon gets SIGCONT and its backup finishes (or
 * says to run it again, and then does). Both devices then restore every snapshot byte-exact and pass
 * check --read-data. Once with the default retention and grace period (packs condemned, a backup
 * rescues what it relied on), once with --min-shard-age 0 and a prune told `--grace 0s` (the packs the
 * sleeping backup relied on are deleted under it). Waits poll with deadlines.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bytesUnder, cliAt, startDaemon, stopDaemon, waitFor, type DaemonNode } from '../helpers/daemons.js'
import { compareTrees } from '../helpers/tree-compare.js'
import type { CliResult } from '../helpers/cli.js'

const MiB = 1 << 20

interface Snap { id: string, host: string, paths: string[] }

function ok (r: CliResult, what: string): CliResult {
  assert.equal(r.code, 0, `${what} exited ${r.code}: ${r.stderr}${r.stdout}`)
  return r
}

for (const variant of [
  { name: 'default retention and grace period', create: [] as string[], grace: [] as string[] },
  { name: '--min-shard-age 0, a prune with --grace 0s', create: ['--min-shard-age', '0'], grace: ['--grace', '0s'] }
]) {
  describe(`e2e: a laptop suspended mid-backup while the desktop prunes (${variant.name})`, function () {
    this.timeout(900_000)
    let dir: string
    const names = ['laptop', 'bob', 'cid', 'dee', 'desktop']
    const nodes = new Map<string, DaemonNode>()
    const node = (n: string): DaemonNode => nodes.get(n) as DaemonNode

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'p2pbak-multidevice-'))
      for (const n of names) nodes.set(n, { name: n, home: join(dir, n), userId: '' })
      let phrase = ''
      for (const n of names.slice(0, 4)) {
        const r = ok(await cliAt(node(n), 'init', '--json'), `${n} init`)
        if (n === 'laptop') phrase = r.json<{ recoveryPhrase: string }>().recoveryPhrase
      }
      const phraseFile = join(dir, 'phrase.txt')
      writeFileSync(phraseFile, phrase)
      ok(await cliAt(node('desktop'), 'recover', '--phrase-file', phraseFile), 'desktop recover')
      for (const n of names) await startDaemon(node(n))
      ok(await cliAt(node('laptop'), 'group', 'create', 'friends', ...variant.create), 'group create')
      for (const n of names.slice(1)) {
        const inv = ok(await cliAt(node('laptop'), 'group', 'invite', '--json'), 'invite').json<{ invite: string }>().invite
        ok(await cliAt(node(n), 'join', inv), `${n} join`)
      }
    })

    after(async () => {
      for (const n of nodes.values()) {
        if (n.daemon !== undefined && n.daemon.exitCode === null) n.daemon.kill('SIGCONT')
        await stopDaemon(n)
      }
      rmSync(dir, { recursive: true, force: true })
    })

    it('nothing is lost: both devices restore every snapshot byte-exact and pass check --read-data', async () => {
      const laptopSrc = join(dir, 'laptop-src')
      mkdirSync(laptopSrc)
      writeFileSync(join(laptopSrc, 'kept.bin'), randomBytes(2 * MiB))
      writeFileSync(join(laptopSrc, 'old.bin'), randomBytes(2 * MiB))
      const old = ok(await cliAt(node('laptop'), 'backup', laptopSrc, '--host', 'laptop', '--json'), 'first laptop backup').json<{ snapshotId: string }>().snapshotId
      // a large backup: kept.bin unchanged (deduplicated against the old snapshot's pack), much new data
      rmSync(join(laptopSrc, 'old.bin'))
      for (let i = 0; i < 8; i++) writeFileSync(join(laptopSrc, `new${i}.bin`), randomBytes(2 * MiB))
      const held = (): number => ['bob', 'cid', 'dee'].reduce((s, f) => s + bytesUnder(join(node(f).home, 'held')), 0)
      const heldBefore = held()
      const big = cliAt(node('laptop'), 'backup', laptopSrc, '--host', 'laptop', '--json')
      await waitFor('part of the large backup to reach friends', () => held() > heldBefore + 2 * MiB, 400_000)
      const laptop = node('laptop').daemon
      assert.ok(laptop !== undefined)
      laptop.kill('SIGSTOP')
      try {
        const desktopSrc = join(dir, 'desktop-src')
        mkdirSync(desktopSrc)
        writeFileSync(join(desktopSrc, 'd.bin'), randomBytes(1 * MiB))
        ok(await cliAt(node('desktop'), 'backup', desktopSrc, '--host', 'desktop'), 'desktop backup')
        const listed = ok(await cliAt(node('desktop'), 'snapshots', '--json'), 'desktop snapshots').json<Snap[]>()
        assert.deepEqual(listed.map(s => s.host).sort(), ['desktop', 'laptop'], 'the desktop sees the laptop\'s snapshot')
        ok(await cliAt(node('desktop'), 'forget', old, '--prune', ...variant.grace), 'desktop forget --prune')
      } finally {
        laptop.kill('SIGCONT')
      }
      let r = await big
      if (r.code !== 0) {
        // a pack it relied on was deleted while it slept: it wrote nothing and says to run it again
        assert.match(r.stdout + r.stderr, /ERR_PACKS_GONE/, r.stderr + r.stdout)
        r = await cliAt(node('laptop'), 'backup', laptopSrc, '--host', 'laptop', '--json')
      }
      ok(r, 'the laptop\'s backup after SIGCONT')
      for (const d of ['laptop', 'desktop']) {
        const snaps = ok(await cliAt(node(d), 'snapshots', '--json'), `${d} snapshots`).json<Snap[]>()
        assert.deepEqual(snaps.map(s => s.host).sort(), ['desktop', 'laptop'], `${d} lists both devices' snapshots, the forgotten one gone`)
        for (const s of snaps) {
          const target = join(dir, 'restore', d, s.id)
          ok(await cliAt(node(d), 'restore', s.id, '--target', target), `${d} restore ${s.host}`)
          const src = s.paths[0] as string
          const diffs = compareTrees(src, join(target, src), { mtimeResolutionNs: 1000n })
          assert.deepEqual(diffs, [], `${d} restores ${s.host}'s snapshot byte-exact`)
        }
        ok(await cliAt(node(d), 'check', '--read-data'), `${d} check --read-data`)
      }
    })
  })
}
