import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CONTINUOUS_RETENTION_MS, describePolicy, parseRetentionSettings, retentionDue } from '../../../src/node/retention-settings.js'
import { ReportBook, type JobReport, type RetentionReport } from '../../../src/node/reports.js'
import { anyKeepFlag, policyFromFlags } from '../../../src/cli/keep-options.js'
import { cliFor } from '../../helpers/cli.js'

describe('node/retention-settings: the daemon\'s retention policy', () => {
  it('reads a stored policy; prune defaults to true', () => {
    assert.deepEqual(parseRetentionSettings({ policy: { daily: 7, weekly: 5, monthly: 12 } }), { policy: { daily: 7, weekly: 5, monthly: 12 }, prune: true })
    assert.deepEqual(parseRetentionSettings({ policy: { last: -1, withinMs: 3600_000, tags: ['keep'] }, prune: false }), { policy: { last: -1, withinMs: 3600_000, tags: ['keep'] }, prune: false })
  })

  it('refuses a stored policy that is malformed or keeps nothing, saying how to set it again', () => {
    for (const raw of [
      null, 'daily 7', {}, { policy: null }, { policy: { daily: 1.5 } }, { policy: { daily: '7' } }, { policy: { withinMs: -1 } },
      { policy: { tags: [''] } }, { policy: { keep_daily: 7 } }, { policy: { daily: 7 }, prune: 'yes' }, { policy: {} }, { policy: { last: 0, daily: 0 } }
    ]) {
      assert.throws(() => parseRetentionSettings(raw), (err: Error & { code?: string }) => err.code === 'ERR_INVALID_CONFIG' && /p2pbak publish PATH/.test(err.message), JSON.stringify(raw))
    }
  })

  it('shows the policy as the options that set it', () => {
    assert.equal(describePolicy({ last: 2, daily: 7, weekly: 5, monthly: 12, withinMs: 36 * 3600_000, tags: ['a', 'b'] }), '--keep-last 2 --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --keep-within 1d12h --keep-tag a --keep-tag b')
    assert.equal(describePolicy({ daily: 7, hourly: 0 }), '--keep-daily 7')
  })

  it('runs after every scheduled backup, after a continuous-mode one at most once a day', () => {
    const t = Date.UTC(2026, 11, 5)
    assert.equal(retentionDue('scheduled', t, t + 1), true)
    assert.equal(retentionDue('continuous', undefined, t), true)
    assert.equal(retentionDue('continuous', t, t + CONTINUOUS_RETENTION_MS - 1), false)
    assert.equal(retentionDue('continuous', t, t + CONTINUOUS_RETENTION_MS), true)
    assert.equal(retentionDue('continuous', t, t - 1000), true, 'a clock set back does not stop it for good')
  })

  it('takes forget\'s options: one grammar for both', () => {
    const none = { keepTag: [] }
    assert.equal(anyKeepFlag(none), false)
    assert.equal(anyKeepFlag({ keepLast: '0', keepTag: [] }), true)
    assert.deepEqual(policyFromFlags({ keepDaily: '7', keepWeekly: '5', keepMonthly: '12', keepWithin: '1y2m', keepTag: ['x'] }), { daily: 7, weekly: 5, monthly: 12, withinMs: Math.round(14 * 365.25 * 24 * 3600_000 / 12), tags: ['x'] })
    for (const bad of [{ keepDaily: 'seven' }, { keepLast: '1.5' }, { keepWithin: '10x' }, { keepLast: '' }]) {
      assert.throws(() => policyFromFlags({ ...bad, keepTag: [] }), (err: Error & { code?: string }) => err.code === 'ERR_INVALID_ARGUMENT', JSON.stringify(bad))
    }
  })
})

describe('node/ReportBook.addRetention', () => {
  it('adds the retention section to a report written earlier', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'p2pbak-reports-'))
    try {
      const book = new ReportBook(dir)
      const now = new Date().toISOString()
      const report: JobReport = {
        version: 1, job: 'publish', startedAt: now, finishedAt: now, durationMs: 1, outcome: 'success', error: null, host: 'h', paths: ['/src'],
        snapshotId: 'ab'.repeat(32), files: null, bytes: null, itemErrors: [], changedDuringBackup: [], placement: null, canLose: null, hooks: { pre: null, post: null }, retention: null
      }
      const path = await book.write(report)
      const retention: RetentionReport = { policy: { daily: 7 }, prune: true, startedAt: now, durationMs: 5, considered: 3, kept: 2, forgotten: ['cd'.repeat(32)], pruned: { packsCondemned: 1, packsWaiting: 1, packsDeleted: 0, packsRevived: 0, bytesDeleted: 0, graceMs: 86_400_000 }, error: null }
      await book.addRetention(path, retention)
      assert.deepEqual((JSON.parse(readFileSync(path, 'utf8')) as JobReport).retention, retention)
      assert.deepEqual((await book.last(1)).reports[0]?.retention, retention)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('cli: publish --keep-…', function () {
  this.timeout(60_000)
  let dir: string
  before(() => { dir = mkdtempSync(join(tmpdir(), 'p2pbak-publish-retention-')) })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  it('stores the policy with the publish job, and refuses one that keeps nothing', async () => {
    const home = join(dir, 'home')
    const cli = cliFor(home, 'pw')
    assert.equal((await cli('init')).code, 0)
    const set = await cli('publish', dir, '--every', '1d', '--keep-daily', '7', '--keep-weekly', '5', '--keep-monthly', '12', '--no-prune', '--json')
    assert.equal(set.code, 0, set.stderr)
    const stored = (): unknown => (JSON.parse(readFileSync(join(home, 'group.json'), 'utf8')) as { roles: { publish: { retention?: unknown } } }).roles.publish.retention
    assert.deepEqual(stored(), { policy: { daily: 7, weekly: 5, monthly: 12 }, prune: false })
    const text = await cli('publish', dir, '--every', '1d', '--keep-last', '3')
    assert.match(text.stdout, /applies `forget --keep-last 3 --prune` to this host's snapshots of these folders/)
    assert.deepEqual(stored(), { policy: { last: 3 }, prune: true })
    for (const [args, message] of [
      [['--keep-last', '0'], /keeps nothing/],
      [['--keep-daily', 'x'], /--keep-daily takes a whole number/],
      [['--keep-within', '10x'], /10x/],
      [['--no-prune'], /--no-prune goes with a retention policy/]
    ] as const) {
      const r = await cli('publish', dir, ...args)
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, message)
    }
    assert.deepEqual(stored(), { policy: { last: 3 }, prune: true }, 'a refused policy changes nothing')
    const plain = await cli('publish', dir, '--every', '1d')
    assert.match(plain.stdout, /no retention policy: every snapshot is kept/)
    assert.equal(stored(), undefined)
  })
})
