/**
 * The daemon's retention policy as a user meets it (issue 14, item 6): `publish PATH --every D
 * --keep-…` and the daemon, after each scheduled backup, forgets this host's old snapshots of those
 * folders and prunes. Real node services on the fault grid (test/helpers/grid.ts): commands go
 * through each daemon's control socket as a user's do, and the daemons' rounds run on one manual
 * clock, so the schedule and the prune's grace period pass without real waiting.
 *
 *   1. One person and two friends: several scheduled backups; the snapshots listed are what the
 *      policy keeps, the data of the forgotten ones is deleted on friends after the grace period,
 *      `check --read-data` passes, the latest restores byte-exact, `report` and `status` show the
 *      policy's runs; a policy that keeps nothing alerts once and clears once.
 *   2. Two devices of one person, each with its own policy, their rounds running at the same time
 *      with shared data between them: every snapshot either lists restores byte-exact on both.
 */
import assert from 'node:assert/strict'
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync as write } from 'node:fs'
import { join } from 'node:path'
import { Grid } from '../helpers/grid.js'
import { compareTrees } from '../helpers/tree-compare.js'
import { Rng } from '../helpers/seeded.js'
import type { JobReport } from '../../src/node/reports.js'

const HOUR = 3600_000
const DAY = 24 * HOUR
const KiB = 1024

interface Snap { id: string, time: string, host: string, paths: string[] }

/** A file with a whole-second mtime, so that the copy kept for comparison has the same one. */
function writeFileSync (path: string, bytes: Buffer | string): void {
  write(path, bytes)
  const t = Math.floor(Date.now() / 1000)
  utimesSync(path, t, t)
}

/**
 * What `--keep-last N --keep-daily/-weekly/-monthly (more than there are buckets)` keeps, computed
 * here independently: the N newest, and the newest of each local day, Monday-based week and month.
 */
function expectedKept (snaps: Snap[], last: number): string[] {
  const newest = [...snaps].sort((a, b) => Date.parse(b.time) - Date.parse(a.time))
  const keep = new Set(newest.slice(0, last).map(s => s.id))
  const bucket = (d: Date, kind: 'day' | 'week' | 'month'): string => {
    if (kind === 'month') return `${d.getFullYear()}-${d.getMonth()}`
    const day = new Date(d.getFullYear(), d.getMonth(), d.getDate() - (kind === 'week' ? (d.getDay() + 6) % 7 : 0))
    return `${day.getFullYear()}-${day.getMonth()}-${day.getDate()}`
  }
  for (const kind of ['day', 'week', 'month'] as const) {
    const seen = new Set<string>()
    for (const s of newest) {
      const b = bucket(new Date(s.time), kind)
      if (!seen.has(b)) { seen.add(b); keep.add(s.id) }
    }
  }
  return [...keep].sort()
}

function notifier (dir: string): { command: string, events: () => string[] } {
  const events = join(dir, 'events.txt')
  return {
    command: `printf '%s|%s\\n' "$P2PBAK_ALERT_STATE" "$P2PBAK_ALERT_KIND" >> '${events}'`,
    events: () => existsSync(events) ? readFileSync(events, 'utf8').split('\n').filter(l => l !== '') : []
  }
}

describe('e2e: the daemon\'s retention policy (publish --keep-…)', function () {
  this.timeout(300_000)
  let grid: Grid | undefined
  afterEach(async () => { await grid?.stop(); grid = undefined })

  it('after each scheduled backup the daemon keeps what the policy says, prunes, and reports it', async () => {
    const g = grid = await Grid.start(['ann', 'bob', 'cid'])
    await g.formGroup('friends')
    const startedOn = new Date().toDateString()
    const rng = new Rng(61)
    const src = join(g.dir, 'photos')
    mkdirSync(src)
    writeFileSync(join(src, 'album.bin'), rng.bytes(200 * KiB))
    const n = notifier(g.dir)
    await g.ok('ann', 'notify', '--command', n.command)
    const set = await g.ok('ann', 'publish', src, '--every', '1d', '--keep-last', '2', '--keep-daily', '7', '--keep-weekly', '5', '--keep-monthly', '12', '--json')
    assert.deepEqual(set.json<{ publish: { retention: unknown } }>().publish.retention, { policy: { last: 2, daily: 7, weekly: 5, monthly: 12 }, prune: true })

    // backups of another folder, by hand: the policy is the published folders', it leaves these alone
    const other = join(g.dir, 'notes')
    mkdirSync(other)
    writeFileSync(join(other, 'n.txt'), 'notes\n')
    for (let i = 0; i < 3; i++) await g.ok('ann', 'backup', other)

    const retentions: Array<NonNullable<JobReport['retention']>> = []
    for (let i = 0; i < 5; i++) {
      // each day one new file, and the one before goes: a forgotten snapshot's data is its own
      writeFileSync(join(src, `day${i}.bin`), rng.bytes(150 * KiB))
      if (i > 0) rmSync(join(src, `day${i - 1}.bin`))
      g.clock.advance(DAY)
      const round = await g.round('ann')
      assert.equal(round.publish?.exitCode, 0, JSON.stringify(round))
      assert.equal(round.retention?.error, null, JSON.stringify(round))
      const report = (await g.ok('ann', 'report', '--last', '1', '--json')).json<JobReport[]>()[0]
      assert.equal(report?.job, 'publish')
      assert.ok(report.retention != null, 'the job\'s report has the retention section')
      retentions.push(report.retention)
    }
    const listed = (await g.ok('ann', 'snapshots', '--json')).json<Snap[]>()
    assert.equal(listed.filter(s => s.paths[0] === other).length, 3, 'another path set is not the policy\'s')
    const snaps = listed.filter(s => s.paths[0] === src)
    const all = [...new Set(retentions.flatMap(r => r.forgotten)), ...snaps.map(s => s.id)]
    assert.equal(all.length, 5, 'every backup is either listed or was forgotten')
    assert.deepEqual(snaps.map(s => s.id).sort(), expectedKept(snaps, 2), 'the snapshots listed are those the policy keeps')
    // the snapshots' times are the real clock's: all on one day unless the test ran across midnight
    const oneDay = new Date().toDateString() === startedOn
    if (oneDay) assert.equal(snaps.length, 2, 'in one day: the two newest')
    if (oneDay) assert.deepEqual([retentions.at(-1)?.considered, retentions.at(-1)?.kept], [3, 2])
    // a day's grace later, the packs of what was forgotten are deleted on friends
    const deleted = retentions.reduce((s, r) => s + (r.pruned?.packsDeleted ?? 0), 0)
    assert.ok(deleted > 0, `packs were deleted: ${JSON.stringify(retentions.map(r => r.pruned))}`)
    assert.ok(retentions.some(r => (r.pruned?.packsCondemned ?? 0) > 0))

    assert.equal((await g.cli('ann', 'check', '--read-data')).code, 0)
    const target = join(g.dir, 'restore')
    await g.ok('ann', 'restore', 'latest', '--target', target)
    assert.deepEqual(compareTrees(src, join(target, src), { mtimeResolutionNs: 1000n }), [])

    const text = (await g.ok('ann', 'report', '--last', '1')).stdout
    assert.match(text, /retention \(--keep-last 2 --keep-daily 7 --keep-weekly 5 --keep-monthly 12\): forgot \d of \d snapshot\(s\)/)
    assert.match(text, /prune: \d+ pack\(s\) deleted/)
    const status = (await g.ok('ann', 'status', '--json')).json<{ publish: { retention: { policy: unknown }, lastRetention: { forgotten: number, error: string | null } } }>()
    assert.deepEqual(status.publish.retention.policy, { last: 2, daily: 7, weekly: 5, monthly: 12 })
    assert.equal(status.publish.lastRetention.forgotten, retentions.at(-1)?.forgotten.length)
    assert.equal(status.publish.lastRetention.error, null)
    assert.match((await g.ok('ann', 'status')).stdout, /retention policy: --keep-last 2 --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --prune; last run .*: forgot \d snapshot/)

    // a policy that keeps none of them (a tag the scheduled backups do not carry) is refused at each
    // run: one alert, however many runs; a policy that works clears it once
    await g.ok('ann', 'publish', src, '--every', '1d', '--keep-tag', 'never-used')
    for (let i = 0; i < 2; i++) {
      g.clock.advance(DAY)
      const round = await g.round('ann')
      assert.equal(round.publish?.exitCode, 0)
      assert.match(round.retention?.error ?? '', /keeps none of the/)
    }
    assert.equal((await g.ok('ann', 'snapshots', '--json')).json<Snap[]>().length, listed.length + 2, 'nothing was forgotten')
    assert.match((await g.ok('ann', 'report', '--last', '1')).stdout, /retention \(--keep-tag never-used, prune\) failed: the policy keeps none/)
    await g.ok('ann', 'publish', src, '--every', '1d', '--keep-last', '1')
    g.clock.advance(DAY)
    assert.equal((await g.round('ann')).retention?.error, null)
    assert.equal((await g.ok('ann', 'snapshots', '--json')).json<Snap[]>().filter(s => s.paths[0] === src).length, 1)
    assert.deepEqual(n.events(), ['raised|retention-failed', 'cleared|retention-failed'])
  })

  // Before docs/gc.md §4.3 (2026-12-06) one run in three lost the root tree of a snapshot both devices
  // list: two sweeps at once each deleted a pack relying on the copy of a live blob in the pack the
  // other deleted.
  it('two devices of one person, each with its own policy, rounds at the same time: nothing either lists is lost', async () => {
    const g = grid = await Grid.start(['ann', 'bob', 'cid'])
    await g.formGroup('friends')
    await g.addDevice('ann2', 'ann')
    const rng = new Rng(62)
    const devices = [{ name: 'ann', src: join(g.dir, 'laptop') }, { name: 'ann2', src: join(g.dir, 'desktop') }]
    const common = rng.bytes(120 * KiB) // the same file on both: deduplicated across the devices
    for (const d of devices) {
      mkdirSync(d.src)
      writeFileSync(join(d.src, 'common.bin'), common)
      await g.ok(d.name, 'publish', d.src, '--every', '1d', '--keep-last', '2')
    }
    const expected = new Map<string, string>() // snapshot id → a copy of what it backed up
    let deleted = 0
    for (let i = 0; i < 4; i++) {
      for (const d of devices) {
        writeFileSync(join(d.src, `step${i}.bin`), rng.bytes(100 * KiB))
        if (i > 0) rmSync(join(d.src, `step${i - 1}.bin`))
        if (i % 2 === 1) writeFileSync(join(d.src, `shared${i}.bin`), common.subarray(0, 30 * KiB * (i + 1)))
      }
      // a day and an hour: each prune deletes what the one before condemned (the grace period is a day)
      g.clock.advance(DAY + HOUR)
      // both daemons back up, forget and prune at once
      const rounds = await Promise.all(devices.map(async d => await g.round(d.name)))
      for (const r of rounds) {
        assert.equal(r.publish?.exitCode, 0, JSON.stringify(r))
        assert.equal(r.retention?.error, null, JSON.stringify(r))
        deleted += r.retention?.packsDeleted ?? 0
      }
      const snaps = (await g.ok('ann', 'snapshots', '--json')).json<Snap[]>()
      for (const d of devices) {
        const newest = snaps.filter(s => s.paths[0] === d.src).sort((a, b) => Date.parse(b.time) - Date.parse(a.time))[0]
        assert.ok(newest !== undefined && !expected.has(newest.id), `${d.name}'s backup of step ${i} is listed`)
        const copy = join(g.dir, 'expected', newest.id)
        cpSync(d.src, copy, { recursive: true, preserveTimestamps: true })
        expected.set(newest.id, copy)
      }
    }
    assert.ok(deleted > 0, 'the prunes deleted packs of forgotten snapshots')
    for (const who of ['ann', 'ann2']) {
      const snaps = (await g.ok(who, 'snapshots', '--json')).json<Snap[]>()
      for (const d of devices) assert.equal(snaps.filter(s => s.paths[0] === d.src).length, 2, `${who} lists the two newest of ${d.name}`)
      for (const s of snaps) {
        const target = join(g.dir, 'restore', who, s.id)
        await g.ok(who, 'restore', s.id, '--target', target)
        assert.deepEqual(compareTrees(expected.get(s.id) as string, join(target, s.paths[0] as string), { mtimeResolutionNs: 1000n }), [], `${who} restores ${s.id.slice(0, 8)} byte-exact`)
      }
      const check = await g.cli(who, 'check', '--read-data', '--json')
      assert.equal(check.code, 0, `${who}: ${check.stdout}`)
    }
  })
})
