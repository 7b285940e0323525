/**
 * Alerts as a user meets them (issue 14, item 4): `notify --command` with a real shell command; a
 * failing job and unreadable items each raise one alert however often they repeat, and a clean run
 * clears it; a friend gone past the offline grace raises one alert in the daemon's rounds and clears
 * when it answers again.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cliFor } from '../helpers/cli.js'
import { cliAt, startDaemon, stopDaemon, waitFor, type DaemonNode } from '../helpers/daemons.js'

/** The events file: one `state|kind|message` line per alert sent; the last alert's JSON beside it. */
function notifier (dir: string): { command: string, events: () => string[], lastJson: () => { state: string, kind: string, detail: unknown } } {
  const events = join(dir, 'events.txt')
  const json = join(dir, 'last.json')
  return {
    command: `printf '%s|%s|%s\\n' "$P2PBAK_ALERT_STATE" "$P2PBAK_ALERT_KIND" "$P2PBAK_ALERT_MESSAGE" >> '${events}'; cat > '${json}'`,
    events: () => existsSync(events) ? readFileSync(events, 'utf8').split('\n').filter(l => l !== '') : [],
    lastJson: () => JSON.parse(readFileSync(json, 'utf8')) as { state: string, kind: string, detail: unknown }
  }
}

describe('e2e: alerts', function () {
  this.timeout(180_000)
  let dir: string
  before(() => { dir = mkdtempSync(join(tmpdir(), 'p2pbak-alerts-')) })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  it('a failing job and unreadable items each alert once, and say when they clear', async () => {
    const home = join(dir, 'local')
    const src = join(dir, 'src')
    mkdirSync(src)
    writeFileSync(join(src, 'a.txt'), 'a\n')
    const cli = cliFor(home, 'pw')
    assert.equal((await cli('init')).code, 0)
    const n = notifier(dir)
    const set = await cli('notify', '--command', n.command, '--json')
    assert.equal(set.code, 0, set.stderr)
    assert.equal(set.json<{ notify: { command: string, noBackupDays: number, minCanLose: number } }>().notify.noBackupDays, 3)
    const test = await cli('notify', '--test')
    assert.match(test.stdout, /test alert: the command exited 0/)
    assert.equal(n.events().length, 1)

    // the same failure three times: one alert
    for (let i = 0; i < 3; i++) assert.equal((await cli('backup', src, '--pre-hook', 'exit 4')).code, 1)
    assert.deepEqual(n.events().slice(1).map(l => l.split('|').slice(0, 2).join('|')), ['raised|job-failed'])
    assert.match(n.events()[1] ?? '', /the backup of .* failed: the pre-hook exited 4/)
    const raised = n.lastJson()
    assert.equal(raised.kind, 'job-failed')
    assert.equal((raised.detail as { outcome: string }).outcome, 'failed')
    const active = await cli('notify', '--json')
    assert.equal(active.json<{ active: unknown[] }>().active.length, 1)

    // a clean run clears it, once
    assert.equal((await cli('backup', src)).code, 0)
    assert.equal((await cli('backup', src)).code, 0)
    assert.deepEqual(n.events().slice(1).map(l => l.split('|').slice(0, 2).join('|')), ['raised|job-failed', 'cleared|job-failed'])

    // an item that cannot be read (a path that is gone): one alert, cleared by a complete run
    const gone = join(dir, 'gone')
    for (let i = 0; i < 2; i++) assert.equal((await cli('backup', src, gone)).code, 3)
    assert.equal((await cli('backup', src)).code, 0, 'another path set is another job: this does not clear it')
    mkdirSync(gone)
    assert.equal((await cli('backup', src, gone)).code, 0)
    assert.deepEqual(n.events().slice(3).map(l => l.split('|').slice(0, 2).join('|')), ['raised|items-unreadable', 'cleared|items-unreadable'])
    assert.match(n.events()[3] ?? '', /could not read 1 item\(s\), e\.g\. .*gone/)

    assert.equal((await cli('notify', '--off')).code, 0)
    assert.equal((await cli('backup', src, '--pre-hook', 'exit 4')).code, 1)
    assert.equal(n.events().length, 5, 'alerts are off')
  })

  it('a friend gone past the offline grace alerts once, and clears when it answers again', async () => {
    const ann: DaemonNode = { name: 'ann', home: join(dir, 'ann'), userId: '' }
    const bob: DaemonNode = { name: 'bob', home: join(dir, 'bob'), userId: '' }
    for (const node of [ann, bob]) assert.equal((await cliAt(node, 'init')).code, 0)
    const sub = join(dir, 'group-notify')
    mkdirSync(sub)
    const n = notifier(sub)
    const unreachable = (): string[] => n.events().filter(l => l.includes('|friend-unreachable|')).map(l => l.split('|')[0] as string)
    await startDaemon(ann, ['--offline-grace', '3s'])
    await startDaemon(bob)
    try {
      assert.equal((await cliAt(ann, 'group', 'create', 'two')).code, 0)
      assert.equal((await cliAt(bob, 'contribute', '1G')).code, 0)
      const inv = await cliAt(ann, 'group', 'invite', '--json')
      assert.equal((await cliAt(bob, 'join', inv.json<{ invite: string }>().invite)).code, 0)
      const src = join(dir, 'group-src')
      mkdirSync(src)
      writeFileSync(join(src, 'f.txt'), 'shared with bob\n')
      const b = await cliAt(ann, 'backup', src, '--json')
      assert.equal(b.code, 0, b.stderr)
      assert.equal(b.json<{ placement: { people: number } }>().placement.people, 1, `a share is on bob: ${b.stdout}`)
      assert.equal((await cliAt(ann, 'notify', '--command', n.command)).code, 0)

      await stopDaemon(bob)
      await waitFor('the alert that bob is unreachable', () => unreachable().length > 0, 60_000)
      const raisedAt = Date.now()
      // rounds go on (an alert check every 5 s with --refresh 500): none of them sends it again
      await waitFor('two more alert checks', async () => {
        const s = await cliAt(ann, 'status', '--json')
        const at = s.json<{ lastRound: { at: string } | null }>().lastRound?.at
        return at !== undefined && Date.parse(at) > raisedAt + 11_000
      }, 60_000)
      assert.deepEqual(unreachable(), ['raised'])
      assert.match(n.events().find(l => l.includes('friend-unreachable')) ?? '', /has not been reachable for \d+ s/)

      await startDaemon(bob)
      await waitFor('the alert to clear', () => unreachable().length === 2, 60_000)
      assert.deepEqual(unreachable(), ['raised', 'cleared'])
    } finally {
      await stopDaemon(ann)
      await stopDaemon(bob)
    }
  })
})
