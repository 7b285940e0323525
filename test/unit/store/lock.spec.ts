/**
 * The home's write lock (src/store/lock.ts): taken and released, refused while its holder lives,
 * taken over when its holder is gone — and taken over by ONE process when several find the same
 * stale lock at the same moment (issue 11, finding 12). The race is replayed step by step: the rival's
 * takeover runs in the hook between one taker judging the lock stale and acting on it.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { LockedError } from '../../../src/errors.js'
import { acquireLock } from '../../../src/store/index.js'

/** a pid that is surely not running: a child that has exited (spawned once) */
let dead: number | undefined
function deadPid (): number {
  dead ??= Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString())
  return dead
}

function staleLock (path: string): void {
  writeFileSync(path, JSON.stringify({ pid: deadPid(), host: hostname(), time: new Date().toISOString(), purpose: 'backup' }))
}

describe('store: the home lock', function () {
  this.timeout(120_000)
  let dir: string
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'p2pbak-lock-')) })
  afterEach(() => { rmSync(dir, { recursive: true, force: true }) })

  it('is taken, refused to a second taker while held, and free again once released', () => {
    const path = join(dir, 'lock')
    const a = acquireLock(path, 'backup')
    assert.throws(() => acquireLock(path, 'forget'), (e: unknown) => e instanceof LockedError && /backup \(pid/.test(e.message))
    a.release()
    assert.equal(existsSync(path), false)
    acquireLock(path, 'forget').release()
  })

  it('a lock whose process is gone is taken over', () => {
    const path = join(dir, 'lock')
    staleLock(path)
    const l = acquireLock(path, 'backup')
    assert.equal((JSON.parse(readFileSync(path, 'utf8')) as { pid: number }).pid, process.pid)
    l.release()
  })

  it('a lock left by a crashed process whose pid is running again as another (a container restarted) is taken over; a live holder\'s is not', function () {
    if (process.platform !== 'linux') this.skip()
    const path = join(dir, 'lock')
    // this very pid, as a daemon restarted in a container gets pid 1 or 7 again: an older start time
    const pidns = readlinkSync('/proc/self/ns/pid')
    // in another pid namespace (a container sharing the host's name) that pid is another process: held
    writeFileSync(path, JSON.stringify({ pid: process.pid, host: hostname(), time: new Date().toISOString(), purpose: 'backup', start: '00000001', pidns: 'pid:[1]' }))
    assert.throws(() => acquireLock(path, 'forget'), (e: unknown) => e instanceof LockedError)
    writeFileSync(path, JSON.stringify({ pid: process.pid, host: hostname(), time: new Date().toISOString(), purpose: 'backup', start: '00000001', pidns }))
    const l = acquireLock(path, 'backup')
    assert.equal((JSON.parse(readFileSync(path, 'utf8')) as { start: string }).start !== '00000001', true)
    // held by this process now: a second taker is refused (the start marks match)
    assert.throws(() => acquireLock(path, 'forget'), (e: unknown) => e instanceof LockedError)
    l.release()
    // a lock of an older version (no start mark) held by a running pid stays held
    writeFileSync(path, JSON.stringify({ pid: process.pid, host: hostname(), time: new Date().toISOString(), purpose: 'backup' }))
    assert.throws(() => acquireLock(path, 'forget'), (e: unknown) => e instanceof LockedError)
  })

  it('two takers of one stale lock: the one that looks second does not remove the first one\'s fresh lock', () => {
    // B judges the lock stale; before B acts, A (another writer) takes it over and starts writing
    const path = join(dir, 'lock')
    staleLock(path)
    let a: ReturnType<typeof acquireLock> | undefined
    let fired = false
    const rival = (): void => {
      if (fired) return
      fired = true
      a = acquireLock(path, 'backup A')
    }
    assert.throws(() => acquireLock(path, 'backup B', { onStale: rival }), (e: unknown) => e instanceof LockedError && /backup A/.test(e.message))
    assert.ok(a !== undefined, 'A took the stale lock')
    assert.match(readFileSync(path, 'utf8'), /backup A/)
    assert.equal(existsSync(`${path}.takeover`), false)
    a.release()
  })

  it('a takeover guard left by a process that died in a takeover does not block anyone', () => {
    const path = join(dir, 'lock')
    staleLock(path)
    writeFileSync(`${path}.takeover`, JSON.stringify({ pid: deadPid(), host: hostname(), time: new Date().toISOString(), purpose: 'backup' }))
    acquireLock(path, 'backup').release()
    assert.equal(existsSync(`${path}.takeover`), false)
  })
})
