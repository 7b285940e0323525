import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { canLoseOf, ReportBook, type JobReport } from '../../../src/node/reports.js'

const DAY = 24 * 3600_000

function report (finishedAt: number, outcome: JobReport['outcome'] = 'success'): JobReport {
  return {
    version: 1, job: 'backup', startedAt: new Date(finishedAt - 1000).toISOString(), finishedAt: new Date(finishedAt).toISOString(), durationMs: 1000,
    outcome, error: null, host: 'h', paths: ['/src'], snapshotId: null, files: null, bytes: null, itemErrors: [], changedDuringBackup: [],
    placement: null, canLose: null, hooks: { pre: null, post: null }
  }
}

describe('node/ReportBook', () => {
  let dir: string
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'p2pbak-reports-')) })
  afterEach(() => { rmSync(dir, { recursive: true, force: true }) })

  it('keeps reports younger than the age limit and at most the count limit, newest first', async () => {
    let now = Date.UTC(2026, 11, 5)
    const book = new ReportBook(dir, { maxAgeMs: 10 * DAY, maxCount: 3 }, () => now)
    for (let i = 0; i < 5; i++) await book.write(report(now - (4 - i) * 1000, i % 2 === 0 ? 'success' : 'failed'))
    const { reports } = await book.last(10)
    assert.equal(reports.length, 3)
    assert.deepEqual(reports.map(r => r.finishedAt), [4, 3, 2].map(i => new Date(now - (4 - i) * 1000).toISOString()))
    // eleven days later a new job's write expires the old ones
    now += 11 * DAY
    await book.write(report(now))
    assert.equal((await book.last(10)).reports.length, 1)
  })

  it('a damaged report is named, not fatal; other files are left alone', async () => {
    const book = new ReportBook(dir)
    await book.write(report(Date.now()))
    writeFileSync(join(dir, 'reports', '20261205T000000000Z-0badf00d.json'), '{ not json')
    writeFileSync(join(dir, 'reports', 'README'), 'mine')
    const { reports, unreadable } = await book.last(10)
    assert.equal(reports.length, 1)
    assert.equal(unreadable[0]?.file, '20261205T000000000Z-0badf00d.json')
    assert.ok(readdirSync(join(dir, 'reports')).includes('README'))
  })

  it('canLose: the smallest m of the new packs; 0 when some pack stayed on this disk; null outside a group', () => {
    const placement = { packs: 3, schemes: [{ k: 1, m: 2, packs: 2 }, { k: 2, m: 1, packs: 1 }], people: 3, local: 0, localReason: null, recordPeople: 3, transfers: null, ownCopies: 0 }
    assert.equal(canLoseOf(placement, true), 1)
    assert.equal(canLoseOf({ ...placement, local: 1 }, true), 0)
    assert.equal(canLoseOf(placement, false), null)
  })
})
