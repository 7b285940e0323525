import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AlertBook, type AlertEvent, type Deliver } from '../../../src/node/alerts.js'
import type { HookResult } from '../../../src/node/hooks.js'

const SETTINGS = { command: 'true', noBackupDays: 3, minCanLose: 1 }
const done = (exitCode: number): HookResult => ({ kind: 'notify', command: 'true', exitCode, signal: null, timedOut: false, durationMs: 1, output: '' })

describe('node/AlertBook', () => {
  let dir: string
  let sent: Array<Pick<AlertEvent, 'state'> & { key: string }>
  let failing: boolean
  const deliver: Deliver = async (e) => { sent.push({ state: e.state, key: e.alert.key }); return done(failing ? 1 : 0) }
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'p2pbak-alerts-')); sent = []; failing = false })
  afterEach(() => { rmSync(dir, { recursive: true, force: true }) })

  const cond = (key: string, message = key) => ({ key, kind: 'friend-unreachable' as const, message })
  const all = (): boolean => true

  it('raises once, keeps quiet while the condition lasts (also across restarts), clears once', async () => {
    await new AlertBook(dir, SETTINGS, Date.now, deliver).check(all, [cond('a')])
    await new AlertBook(dir, SETTINGS, Date.now, deliver).check(all, [cond('a', 'a, now worse')])
    assert.deepEqual(sent, [{ state: 'raised', key: 'a' }])
    assert.equal((await new AlertBook(dir, SETTINGS).active())[0]?.message, 'a, now worse')
    await new AlertBook(dir, SETTINGS, Date.now, deliver).check(all, [])
    await new AlertBook(dir, SETTINGS, Date.now, deliver).check(all, [])
    assert.deepEqual(sent, [{ state: 'raised', key: 'a' }, { state: 'cleared', key: 'a' }])
  })

  it('a check clears only the alerts of its scope', async () => {
    const book = new AlertBook(dir, SETTINGS, Date.now, deliver)
    await book.check(all, [cond('job:x'), cond('friend:y')])
    await book.check(key => key.startsWith('job:'), [])
    assert.deepEqual((await book.active()).map(a => a.key), ['friend:y'])
  })

  it('an alert the command failed to take is sent again at the next check; one never delivered needs no "cleared"', async () => {
    const book = new AlertBook(dir, SETTINGS, Date.now, deliver)
    failing = true
    await book.check(all, [cond('a'), cond('b')])
    failing = false
    await book.check(all, [cond('a')])
    assert.deepEqual(sent, [{ state: 'raised', key: 'a' }, { state: 'raised', key: 'b' }, { state: 'raised', key: 'a' }])
  })

  it('no settings, no alerts; a damaged alerts.json starts empty instead of failing the job', async () => {
    assert.deepEqual(await new AlertBook(dir, undefined, Date.now, deliver).check(all, [cond('a')]), [])
    writeFileSync(join(dir, 'alerts.json'), '{ broken')
    await new AlertBook(dir, SETTINGS, Date.now, deliver).check(all, [cond('a')])
    assert.deepEqual(sent, [{ state: 'raised', key: 'a' }])
  })
})
