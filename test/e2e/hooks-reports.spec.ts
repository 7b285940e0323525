/**
 * Hooks and reports as a user meets them (issue 14, items 2 and 3), with the real binary: a pre-hook
 * that dumps a "database" into the backed-up folder is in the snapshot; a post-hook learns the outcome
 * and the snapshot id; a failing or hanging pre-hook skips the backup, says so, and still runs the
 * post-hook; every job leaves a report that `p2pbak report` shows; the daemon's scheduled `publish`
 * runs its hooks and reports as the `publish` job.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cliFor } from '../helpers/cli.js'
import { startDaemon, stopDaemon, waitFor, type DaemonNode } from '../helpers/daemons.js'
import type { JobReport } from '../../src/node/reports.js'

describe('e2e: backup hooks and job reports', function () {
  this.timeout(120_000)
  let dir: string
  let home: string
  let src: string
  let cli: ReturnType<typeof cliFor>

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-hooks-'))
    home = join(dir, 'home')
    src = join(dir, 'src')
    mkdirSync(src)
    writeFileSync(join(src, 'notes.txt'), 'kept\n')
    cli = cliFor(home, 'pw')
    assert.equal((await cli('init')).code, 0)
  })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  const reports = async (n = 10): Promise<JobReport[]> => {
    const r = await cli('report', '--last', String(n), '--json')
    assert.equal(r.code, 0, r.stderr)
    return r.json<JobReport[]>()
  }

  it('a pre-hook\'s dump is in the snapshot; the post-hook learns the outcome and the snapshot id', async () => {
    const env = join(dir, 'post-env.txt')
    const b = await cli('backup', src, '--json',
      '--pre-hook', `echo "create table t (x int);" > "${join(src, 'db.sql')}" && echo dumped`,
      '--post-hook', `printf '%s\\n%s\\n%s\\n' "$P2PBAK_OUTCOME" "$P2PBAK_SNAPSHOT_ID" "$P2PBAK_PATHS" > "${env}"`)
    assert.equal(b.code, 0, b.stderr)
    const out = b.json<{ snapshotId: string, hooks: JobReport['hooks'], report: string }>()
    const [outcome, snapshotId, paths] = readFileSync(env, 'utf8').split('\n')
    assert.equal(outcome, 'success')
    assert.equal(snapshotId, out.snapshotId)
    assert.equal(paths, src)
    const ls = await cli('ls', 'latest', src, '--json')
    assert.ok(ls.stdout.includes('db.sql'), `the dump is in the snapshot: ${ls.stdout}`)
    const [last] = await reports(1)
    assert.equal(last?.outcome, 'success')
    assert.equal(last?.snapshotId, out.snapshotId)
    assert.equal(last?.hooks.pre?.output, 'dumped\n')
    assert.equal(last?.hooks.post?.exitCode, 0)
    assert.equal(last?.placement?.local, last?.placement?.packs, 'the embedded default keeps every pack on this disk')
    assert.ok(existsSync(out.report))
  })

  it('a failing pre-hook skips the backup, says why, runs the post-hook, and is reported', async () => {
    const before = (await cli('snapshots', '--json')).json<unknown[]>().length
    const env = join(dir, 'post-env-failed.txt')
    const b = await cli('backup', src, '--pre-hook', 'echo "pg_dump: connection refused" >&2; exit 3', '--post-hook', `echo "$P2PBAK_OUTCOME $P2PBAK_ERROR" > "${env}"`)
    assert.equal(b.code, 1)
    assert.match(b.stderr, /pre-hook exited 3 \(pg_dump: connection refused\): the backup was skipped/)
    assert.equal((await cli('snapshots', '--json')).json<unknown[]>().length, before, 'no snapshot was written')
    assert.match(readFileSync(env, 'utf8'), /^failed the pre-hook exited 3/)
    const [last] = await reports(1)
    assert.equal(last?.outcome, 'failed')
    assert.equal(last?.snapshotId, null)
    assert.equal(last?.hooks.pre?.exitCode, 3)
    assert.match(last?.hooks.pre?.output ?? '', /connection refused/)
    const text = await cli('report', '--last', '1')
    assert.match(text.stdout, /backup {2}failed/)
    assert.match(text.stdout, /\| pg_dump: connection refused/)
  })

  it('a pre-hook that hangs is killed at its timeout, with everything it started', async () => {
    const pidFile = join(dir, 'child.pid')
    const started = Date.now()
    const b = await cli('backup', src, '--hook-timeout', '1s', '--pre-hook', `sleep 60 & echo $! > "${pidFile}"; wait`)
    assert.equal(b.code, 1)
    assert.match(b.stderr, /pre-hook timed out after 1 s and was killed/)
    assert.ok(Date.now() - started < 30_000)
    // the whole process group went: no `sleep 60` left behind
    const pid = Number(readFileSync(pidFile, 'utf8'))
    await waitFor('the hook\'s child to be gone', () => { try { process.kill(pid, 0); return false } catch { return true } }, 10_000)
    const [last] = await reports(1)
    assert.equal(last?.hooks.pre?.timedOut, true)
  })

  it('every job leaves one report, newest first', async () => {
    const all = await reports(100)
    assert.deepEqual(all.map(r => r.outcome), ['failed', 'failed', 'success'])
    assert.equal(readdirSync(join(home, 'reports')).filter(n => n.endsWith('.json')).length, 3)
  })

  it('the daemon\'s scheduled publish runs its hooks and reports as the publish job', async () => {
    const node: DaemonNode = { name: 'pub', home, userId: '' }
    const marker = join(dir, 'published.txt')
    // `publish` is a group role: a group of one is enough to schedule it
    assert.equal((await cli('group', 'create', 'solo')).code, 0)
    assert.equal((await cli('publish', src, '--every', '1h', '--pre-hook', 'echo scheduled', '--post-hook', `echo "$P2PBAK_JOB $P2PBAK_OUTCOME" > "${marker}"`)).code, 0)
    await startDaemon(node)
    try {
      await waitFor('the scheduled backup\'s report', async () => (await reports(1))[0]?.job === 'publish', 60_000)
      const [last] = await reports(1)
      assert.equal(last?.outcome, 'success')
      assert.equal(last?.hooks.pre?.output, 'scheduled\n')
      assert.equal(readFileSync(marker, 'utf8'), 'publish success\n')
    } finally {
      await stopDaemon(node)
    }
  })
})
