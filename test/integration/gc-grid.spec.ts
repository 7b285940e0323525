/**
 * Several devices of one person on the fault grid (real node services, real persisters, one manual
 * clock): a device asleep across one to three grace periods while another forgets and prunes; three
 * devices, two of them pruning, under the group's default retention policy, whose refused deletes go
 * out once the policy allows them. Every run: every snapshot of every device restores byte-exact on
 * every device, and check --read-data passes on each. docs/gc.md.
 */
import assert from 'node:assert/strict'
import { cpSync, mkdirSync, utimesSync, writeFileSync as write } from 'node:fs'
import { basename, join } from 'node:path'
import { Grid } from '../helpers/grid.js'
import { bytesUnder, filesUnder } from '../helpers/daemons.js'
import { compareTrees } from '../helpers/tree-compare.js'
import { Rng } from '../helpers/seeded.js'

const DAY = 24 * 3600_000
const GRACE = DAY
const KiB = 1024

/** Writes a file with a whole-second mtime, so that the copy kept for comparison has the same mtime. */
function writeFileSync (path: string, bytes: Buffer): void {
  write(path, bytes)
  const t = Math.floor(Date.now() / 1000)
  utimesSync(path, t, t)
}

interface Snap { id: string, host: string, paths: string[] }

/** Backs up `src` on `device` as host `host`; keeps a copy of what was backed up, to compare restores with. */
async function backup (grid: Grid, expected: Map<string, string>, device: string, host: string, src: string): Promise<string> {
  let r = await grid.cli(device, 'backup', src, '--host', host, '--json')
  // a pack it relied on was deleted by another device while it ran: nothing was written; run again
  if (r.code !== 0 && r.stdout.includes('ERR_PACKS_GONE')) r = await grid.cli(device, 'backup', src, '--host', host, '--json')
  assert.equal(r.code, 0, `${device}: backup exited ${r.code}: ${r.stderr}${r.stdout}`)
  const id = r.json<{ snapshotId: string }>().snapshotId
  const copy = join(grid.dir, 'expected', id)
  cpSync(src, copy, { recursive: true, preserveTimestamps: true })
  expected.set(id, copy)
  return id
}

/** Every expected snapshot is listed (with its host) and restores byte-exact on every device; check --read-data passes. */
async function verifyAll (grid: Grid, devices: string[], expected: Map<string, string>, hosts: Map<string, string>): Promise<void> {
  for (const d of devices) {
    const snaps = (await grid.ok(d, 'snapshots', '--json')).json<Snap[]>()
    assert.deepEqual(snaps.map(s => s.id).sort(), [...expected.keys()].sort(), `${d} lists every device's snapshots`)
    for (const s of snaps) {
      assert.equal(s.host, hosts.get(s.id))
      const target = join(grid.dir, 'restore', d, s.id)
      await grid.ok(d, 'restore', s.id, '--target', target)
      const src = s.paths[0] as string
      assert.deepEqual(compareTrees(expected.get(s.id) as string, join(target, src), { mtimeResolutionNs: 1000n }), [], `${d} restores ${s.id.slice(0, 8)}`)
    }
    const check = await grid.cli(d, 'check', '--read-data', '--json')
    assert.equal(check.code, 0, `${d}: ${check.stdout}`)
  }
}

describe('integration: several devices of one person, no lock, nothing lost (fault grid)', function () {
  this.timeout(300_000)
  let grid: Grid

  afterEach(async () => { await grid?.stop() })

  for (const graces of [1, 3]) {
    it(`--min-shard-age 0: the laptop sleeps across ${graces} grace period(s) while the desktop forgets its old snapshot and prunes; all restores`, async () => {
      const rng = new Rng(40 + graces)
      grid = await Grid.start(['ann', 'bob', 'cid', 'dee'])
      await grid.formGroup('friends', ['--min-shard-age', '0'])
      await grid.addDevice('ann2', 'ann')
      const expected = new Map<string, string>()
      const hosts = new Map<string, string>()
      const srcA = join(grid.dir, 'laptop')
      mkdirSync(srcA)
      writeFileSync(join(srcA, 'a1.bin'), rng.bytes(300 * KiB))
      writeFileSync(join(srcA, 'a2.bin'), rng.bytes(300 * KiB))
      const s1 = await backup(grid, expected, 'ann', 'laptop', srcA)
      hosts.set(s1, 'laptop')
      const srcB = join(grid.dir, 'desktop')
      mkdirSync(srcB)
      writeFileSync(join(srcB, 'b1.bin'), rng.bytes(200 * KiB))
      hosts.set(await backup(grid, expected, 'ann2', 'desktop', srcB), 'desktop')
      // the laptop goes to sleep; its file a2 changes meanwhile
      await grid.stopNode('ann')
      writeFileSync(join(srcA, 'a2.bin'), rng.bytes(300 * KiB))
      const first = (await grid.ok('ann2', 'forget', s1, '--prune', '--json')).json<{ prune: { packsCondemned: number, packsDeleted: number } }>().prune
      expected.delete(s1)
      assert.ok(first.packsCondemned >= 1, JSON.stringify(first))
      assert.equal(first.packsDeleted, 0, 'nothing is deleted before a grace period has passed')
      let deleted = 0
      for (let g = 0; g < graces; g++) {
        grid.clock.advance(GRACE + 1)
        deleted += (await grid.ok('ann2', 'forget', '--prune', '--json')).json<{ prune: { packsDeleted: number } }>().prune.packsDeleted
      }
      assert.ok(deleted >= 1, 'the condemned packs went after the grace period')
      // the laptop wakes up and backs up again: a1 is unchanged, its old pack is gone
      await grid.startNode('ann')
      await grid.roundAll()
      hosts.set(await backup(grid, expected, 'ann', 'laptop', srcA), 'laptop')
      await verifyAll(grid, ['ann', 'ann2'], expected, hosts)
      const status = (await grid.ok('ann', 'status', '--json')).json<{ devices: Array<{ name: string }>, backups: Array<{ host: string, lastBackup: string }> }>()
      assert.equal(status.devices.length, 2)
      assert.deepEqual(status.backups.map(b => b.host).sort(), ['desktop', 'laptop'])
    })
  }

  // suite run 59 (2026-12-07, a loaded machine): the daemon-retention e2e lost the root tree of a
  // snapshot of the other device. A prune read a head in which no friend's listing came through, so the
  // other device's newest snapshot was missing from it (docs/gc.md §4.4)
  it('friends do not answer while the laptop prunes: the desktop\'s snapshot, which the laptop cannot see, is not condemned or deleted; all restores', async () => {
    const rng = new Rng(91)
    grid = await Grid.start(['ann', 'bob', 'cid'])
    await grid.formGroup('friends', ['--min-shard-age', '0'])
    await grid.addDevice('ann2', 'ann')
    const expected = new Map<string, string>()
    const hosts = new Map<string, string>()
    const srcB = join(grid.dir, 'desktop')
    mkdirSync(srcB)
    writeFileSync(join(srcB, 'b1.bin'), rng.bytes(200 * KiB))
    hosts.set(await backup(grid, expected, 'ann2', 'desktop', srcB), 'desktop')
    // the laptop learns the desktop's packs (its index places them), then loses its friends
    assert.equal((await grid.ok('ann', 'snapshots', '--json')).json<Snap[]>().length, 1)
    await grid.stopNode('bob')
    await grid.stopNode('cid')
    const prunes: Array<{ packsCondemned: number, packsDeleted: number, postponed: string | null }> = []
    for (let g = 0; g < 2; g++) {
      prunes.push((await grid.ok('ann', 'forget', '--prune', '--json')).json<{ prune: typeof prunes[number] }>().prune)
      grid.clock.advance(GRACE + 1)
    }
    for (const p of prunes) {
      assert.equal(p.packsCondemned, 0, `nothing condemned on a head no friend listed: ${JSON.stringify(p)}`)
      assert.equal(p.packsDeleted, 0, JSON.stringify(p))
      assert.match(p.postponed ?? '', /no friend holding the snapshot records answered/)
    }
    const text = await grid.ok('ann', 'forget', '--prune')
    assert.match(text.stdout, /prune postponed, nothing condemned or deleted now: no friend/)
    await grid.startNode('bob')
    await grid.startNode('cid')
    await grid.roundAll()
    await verifyAll(grid, ['ann', 'ann2'], expected, hosts)
    // with friends back, the laptop's prune runs in full and keeps the desktop's snapshot
    const after = (await grid.ok('ann', 'forget', '--prune', '--json')).json<{ prune: { postponed: string | null, packsCondemned: number } }>().prune
    assert.equal(after.postponed, null, JSON.stringify(after))
    assert.equal(after.packsCondemned, 0, JSON.stringify(after))
  })

  it('friends away most of a week get no new shares, yet once back the laptop lists the desktop\'s snapshot they hold and restores it from them', async () => {
    const rng = new Rng(93)
    grid = await Grid.start(['ann', 'bob', 'cid'])
    await grid.formGroup()
    await grid.addDevice('ann2', 'ann')
    const expected = new Map<string, string>()
    const hosts = new Map<string, string>()
    const src = join(grid.dir, 'desktop')
    mkdirSync(src)
    writeFileSync(join(src, 'd.bin'), rng.bytes(200 * KiB))
    hosts.set(await backup(grid, expected, 'ann2', 'desktop', src), 'desktop')
    await grid.stopNode('bob')
    await grid.stopNode('cid')
    // the laptop's rounds find them away, day after day: their uptime falls below what new shares need
    for (let d = 0; d < 6; d++) {
      grid.clock.advance(DAY)
      await grid.round('ann')
    }
    await grid.startNode('bob')
    await grid.startNode('cid')
    await grid.roundAll()
    const friends = (await grid.ok('ann', 'status', '--json')).json<{ peers: Array<{ userId: string, online: boolean, uptime: number | null }> }>().peers
      .filter(p => p.userId !== grid.node('ann').userId)
    // below 0.2, a peer gets no new shares (placement-and-repair.md §11: 0.25 + 0.75 × uptime < 0.4)
    assert.ok(friends.every(p => p.online && (p.uptime ?? 1) < 0.2), `both back, with an uptime too low for new shares: ${JSON.stringify(friends.map(p => ({ online: p.online, uptime: p.uptime })))}`)
    // the laptop never had the desktop's snapshot record: only the friends hold it
    await verifyAll(grid, ['ann'], expected, hosts)
  })

  it('three devices, default retention: the deletes friends refuse are queued, re-checked and sent once the policy allows; all restores', async () => {
    const rng = new Rng(77)
    grid = await Grid.start(['ann', 'bob', 'cid', 'dee'])
    await grid.formGroup()
    await grid.addDevice('ann2', 'ann')
    await grid.addDevice('ann3', 'ann')
    const expected = new Map<string, string>()
    const hosts = new Map<string, string>()
    const src: Record<string, string> = {}
    for (const d of ['ann', 'ann2', 'ann3']) {
      src[d] = join(grid.dir, `src-${d}`)
      mkdirSync(src[d] as string)
      writeFileSync(join(src[d] as string, 'x.bin'), rng.bytes(300 * KiB))
      hosts.set(await backup(grid, expected, d, `host-${d}`, src[d] as string), `host-${d}`)
    }
    const s1 = [...hosts].find(([, h]) => h === 'host-ann')?.[0] as string
    writeFileSync(join(src.ann as string, 'y.bin'), rng.bytes(300 * KiB))
    // ann2 forgets ann's snapshot and condemns its packs; ann backs up again (x.bin unchanged: stored
    // anew, not deduplicated against the condemned pack)
    await grid.ok('ann2', 'forget', s1, '--prune')
    expected.delete(s1)
    hosts.set(await backup(grid, expected, 'ann', 'host-ann', src.ann as string), 'host-ann')
    // ann3 sees the condemnation at its first prune, and deletes a grace period later on its own clock
    await grid.ok('ann3', 'forget', '--prune')
    grid.clock.advance(GRACE + 1)
    const held = (): number => ['bob', 'cid', 'dee'].reduce((n, f) => n + bytesUnder(join(grid.node(f).dir, 'held', grid.node('ann').userId, 'shares')), 0)
    /** the packs (hex) of which some friend holds a share (share files are named <pack>.<index>) */
    const packsHeld = (): Set<string> => new Set(['bob', 'cid', 'dee'].flatMap(f => filesUnder(join(grid.node(f).dir, 'held', grid.node('ann').userId, 'shares')).map(file => basename(file).split('.')[0] as string)))
    const before = held()
    const atSweep = packsHeld()
    const swept = (await grid.ok('ann3', 'forget', '--prune', '--json')).json<{ prune: { packsDeleted: number } }>().prune
    assert.ok(swept.packsDeleted >= 1, JSON.stringify(swept))
    // friends keep the young shares under the retention policy: no pack left their disks yet
    assert.deepEqual([...atSweep].filter(p => !packsHeld().has(p)), [])
    await verifyAll(grid, ['ann', 'ann2', 'ann3'], expected, hosts)
    // past the policy's period the queued deletes go out, after a look at every device's snapshots. A
    // persister ages shares by their files' mtimes on its own (real) clock: age them 31 days
    const old = (Date.now() - 31 * DAY) / 1000
    for (const f of ['bob', 'cid', 'dee']) for (const file of filesUnder(join(grid.node(f).dir, 'held', grid.node('ann').userId, 'shares'))) utimesSync(file, old, old)
    grid.clock.advance(400 * DAY)
    const packsBefore = packsHeld()
    for (let r = 0; r < 2; r++) await grid.roundAll()
    // judged by packs, not bytes: under load an audit may time out and repair move a share meanwhile
    // (bytes then grow), but repair never takes the last share of a pack off every friend
    const gone = [...packsBefore].filter(p => !packsHeld().has(p))
    assert.ok(gone.length >= swept.packsDeleted, `the queued deletes were sent: ${gone.length} pack(s) left the friends' disks, ${swept.packsDeleted} deleted by the sweep (bytes held ${held()}, before ${before})`)
    await verifyAll(grid, ['ann', 'ann2', 'ann3'], expected, hosts)
  })
})
