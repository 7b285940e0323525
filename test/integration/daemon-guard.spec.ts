/**
 * The daemon's own guards (issue 11, finding 9): it refuses a home that others may write, its
 * control socket is its owner's alone, and it never runs a command that must not run inside it,
 * whoever sends it.
 */
import assert from 'node:assert/strict'
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { Home } from '../../src/node/home.js'
import { NodeService } from '../../src/node/service.js'
import { forwardToDaemon } from '../../src/node/control.js'
import { main } from '../../src/cli/main.js'
import { runHook } from '../../src/node/hooks.js'
import { cliFor } from '../helpers/cli.js'

describe('integration: the daemon guards its home and its socket', function () {
  this.timeout(30_000)
  let dir: string
  let home: string
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-guard-'))
    home = join(dir, 'home')
    await Home.init({ home, passphrase: null, kdf: { opslimit: 1, memlimit: 8192 } })
  })
  afterEach(() => { rmSync(dir, { recursive: true, force: true }) })

  const start = async (): Promise<NodeService> => await NodeService.start({
    home: { home, passphrase: async () => null },
    network: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    refreshMs: 3_600_000,
    runCommand: async (argv, io, services) => await main(argv, { ...io, env: { ...io.env, P2PBAK_HOME: home } }, services)
  })

  it('refuses a home its group or others may write, saying what to do', async () => {
    chmodSync(home, 0o770)
    await assert.rejects(start(), (err: Error) => /writable by its group or by others/.test(err.message) && /chmod 700/.test(err.message))
  })

  it('its control socket is mode 0600, and it refuses init, recover and daemon sent to it', async () => {
    const service = await start()
    try {
      assert.equal(statSync(join(home, 'daemon.sock')).mode & 0o777, 0o600)
      for (const argv of [['init'], ['--home', home, 'recover', '--phrase-file', '/dev/null'], ['daemon']]) {
        const out = new PassThrough()
        const err = new PassThrough()
        const text: Buffer[] = []
        err.on('data', (b: Buffer) => text.push(b))
        const code = await forwardToDaemon(join(home, 'daemon.sock'), argv, {}, out, err)
        assert.equal(code, 2, argv.join(' '))
        assert.match(Buffer.concat(text).toString(), /does not run inside the daemon/)
      }
    } finally {
      await service.stop()
    }
  })

  const isRoot = process.getuid?.() === 0

  it('every command refuses a home its group or others may write, before it trusts a key or a socket there', async () => {
    chmodSync(home, 0o777)
    const r = await cliFor(home)('snapshots')
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /writable by its group or by others/)
    assert.match(r.stderr, /chmod 700/)
  })

  it('a home only readable by others is closed (0700), as init makes it', async () => {
    chmodSync(home, 0o755)
    const r = await cliFor(home)('snapshots')
    assert.equal(r.code, 0, r.stderr)
    assert.equal(statSync(home).mode & 0o777, 0o700)
    // init into a folder that exists already closes it too
    const fresh = join(dir, 'fresh')
    mkdirSync(fresh, { mode: 0o755 })
    chmodSync(fresh, 0o755)
    assert.equal((await cliFor(fresh)('init')).code, 0)
    assert.equal(statSync(fresh).mode & 0o777, 0o700)
  })

  it('a socket another user owns is never talked to; a daemon never serves a home another user owns', async function () {
    if (!isRoot) this.skip()
    // a socket planted by another user (uid 65534) where the daemon's would be
    const server = createServer(sock => { sock.end(JSON.stringify({ out: Buffer.from('snapshot 0badc0de saved\n').toString('base64') }) + '\n' + JSON.stringify({ exit: 0 }) + '\n') })
    const sockPath = join(home, 'daemon.sock')
    await new Promise<void>(resolve => server.listen(sockPath, () => resolve()))
    try {
      chownSync(sockPath, 65534, 65534)
      const r = await cliFor(home)('snapshots')
      assert.notEqual(r.code, 0)
      assert.doesNotMatch(r.stdout, /0badc0de/)
      assert.match(r.stderr, /not a socket this user owns/)
    } finally {
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
    // the whole home belongs to another user: root's commands may use it (`sudo p2pbak restore`
    // sets every file's owner), but no daemon serves it as root (it would run the owner's hooks)
    chownSync(home, 65534, 65534)
    assert.equal((await cliFor(home)('snapshots')).code, 0)
    await assert.rejects(start(), (err: Error) => /belongs to another user/.test(err.message))
  })

  it('two inits into one home at once: one wins, the other says so (never a phrase for a home it does not open)', async () => {
    const both = join(dir, 'both')
    const results = await Promise.allSettled([0, 1].map(async () => await Home.init({ home: both, passphrase: null, kdf: { opslimit: 1, memlimit: 8192 } })))
    const ok = results.filter(r => r.status === 'fulfilled')
    assert.ok(ok.length >= 1)
    assert.equal(ok.length, 1, 'exactly one init wins')
    for (const r of results) if (r.status === 'rejected') assert.match(String(r.reason), /already holds a p2pbak identity/)
    // the winner's identity is the home's, and its config names it
    const winner = (ok[0] as PromiseFulfilledResult<{ identity: { userId: string } }>).value.identity.userId
    assert.equal((JSON.parse(readFileSync(join(both, 'config.json'), 'utf8')) as { userId: string }).userId, winner)
    const opened = await Home.open({ home: both, passphrase: async () => null })
    try { assert.equal(opened.identity.userId, winner) } finally { await opened.closeNow() }
  })

  it('a hook never gets the passphrase from this process\'s environment', async () => {
    const before = process.env.P2PBAK_PASSPHRASE
    process.env.P2PBAK_PASSPHRASE = 'S3cretPW-xyz'
    try {
      const r = await runHook('pre', 'env', { env: {}, cwd: dir })
      assert.equal(r.exitCode, 0)
      assert.doesNotMatch(r.output, /S3cretPW-xyz/)
      assert.match(r.output, /PATH=/)
    } finally {
      if (before === undefined) delete process.env.P2PBAK_PASSPHRASE
      else process.env.P2PBAK_PASSPHRASE = before
    }
  })
})
