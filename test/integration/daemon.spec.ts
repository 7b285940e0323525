/**
 * One daemon on its own. `--announce` addresses are what it tells friends (node.json, invites).
 * Ctrl-C reaches a command that runs in the daemon: a real `p2pbak daemon` child on its embedded
 * store; the client is the CLI's main() in this process (its SIGINT signal is an AbortController) or a
 * real CLI child killed outright. The cancelled backup stops, writes no snapshot, leaves the
 * repository consistent, and the next backup completes. Waits poll the store with deadlines.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { main } from '../../src/cli/main.js'
import { TEST_ENV } from '../helpers/cli.js'
import { bytesUnder, cliAt, startDaemon, stopDaemon, waitFor, type DaemonNode } from '../helpers/daemons.js'

const BIN = fileURLToPath(new URL('../../bin/p2pbak.js', import.meta.url))
const FILES = 48
const FILE_BYTES = 8 << 20
const ANNOUNCE = '/ip4/198.51.100.7/tcp/4737'

describe('integration: one daemon: announced addresses, cancelling its commands', function () {
  this.timeout(120_000)
  let dir: string
  let data: string
  const node: DaemonNode = { name: 'solo', home: '', userId: '' }
  const stored = (): number => bytesUnder(join(node.home, 'store'))
  const snapshotCount = async (): Promise<number> => (await cliAt(node, 'snapshots', '--json')).json<unknown[]>().length

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-cancel-'))
    node.home = join(dir, 'home')
    data = join(dir, 'data')
    mkdirSync(data)
    // incompressible, so the backup takes a few seconds of real work
    for (let i = 0; i < FILES; i++) writeFileSync(join(data, `f${i}.bin`), randomBytes(FILE_BYTES))
    assert.equal((await cliAt(node, 'init', '--json')).code, 0)
    await startDaemon(node, ['--announce', ANNOUNCE])
  })

  after(async () => {
    await stopDaemon(node)
    rmSync(dir, { recursive: true, force: true })
  })

  it('Ctrl-C in the client cancels the backup in the daemon: exit 130, no snapshot', async () => {
    const before = stored()
    const ctrlC = new AbortController()
    const err: Buffer[] = []
    const stderr = new PassThrough()
    stderr.on('data', (b: Buffer) => err.push(b))
    const running = main(['backup', data], {
      stdout: new PassThrough(), stderr, stdin: new PassThrough(), signal: ctrlC.signal,
      env: { ...process.env, ...TEST_ENV, P2PBAK_HOME: node.home, P2PBAK_PASSPHRASE: 'pw' }
    })
    await waitFor('the daemon to start writing packs', () => stored() > before + (1 << 20), 60_000)
    ctrlC.abort()
    const code = await running
    assert.equal(code, 130, Buffer.concat(err).toString())
    assert.match(Buffer.concat(err).toString(), /cancelled/)
    assert.ok(stored() - before < 0.8 * FILES * FILE_BYTES, 'the backup ran to its end')
    assert.equal(await snapshotCount(), 0)
  })

  it('a client that goes away (killed) cancels its command; the daemon takes the next one', async () => {
    const before = stored()
    const child = spawn(process.execPath, [BIN, 'backup', data], {
      env: { ...process.env, ...TEST_ENV, P2PBAK_HOME: node.home, P2PBAK_PASSPHRASE: 'pw' }, stdio: 'ignore'
    })
    const exited = new Promise(resolve => child.once('exit', resolve))
    await waitFor('the daemon to start writing packs', () => stored() > before + (1 << 20), 60_000)
    child.kill('SIGKILL')
    await exited
    // the daemon stops the orphaned backup: its store stops growing well before the data is in
    let last = -1
    await waitFor('the store to stop growing', async () => {
      const now = stored()
      const still = now === last
      last = now
      if (!still) await new Promise(resolve => setTimeout(resolve, 300))
      return still
    }, 60_000)
    assert.equal(await snapshotCount(), 0)
  })

  it('after the cancellations a backup completes and the repository checks clean', async () => {
    const b = await cliAt(node, 'backup', data, '--json')
    assert.equal(b.code, 0, b.stderr)
    assert.equal(await snapshotCount(), 1)
    const c = await cliAt(node, 'check', '--read-data')
    assert.equal(c.code, 0, c.stdout + c.stderr)
  })

  it('--announce: node.json and invites carry the announced address, not the listen one', async () => {
    const nodeJson = JSON.parse(readFileSync(join(node.home, 'node.json'), 'utf8')) as { addrs: string[] }
    assert.deepEqual(nodeJson.addrs.map(a => a.split('/p2p/')[0]), [ANNOUNCE])
    assert.equal((await cliAt(node, 'group', 'create', 'solo')).code, 0)
    const inv = await cliAt(node, 'group', 'invite', '--json')
    assert.equal(inv.code, 0, inv.stderr)
    const code = inv.json<{ invite: string }>().invite
    const payload = JSON.parse(Buffer.from(code.slice('p2pbak1-'.length), 'base64url').toString('utf8')) as { addrs: string[] }
    assert.deepEqual(payload.addrs.map(a => a.split('/p2p/')[0]), [ANNOUNCE])
    const bad = await cliAt(node, 'daemon', '--announce', 'not-an-address')
    assert.equal(bad.code, 2, bad.stderr)
    assert.match(bad.stderr, /--announce takes a multiaddr/)
  })

  it('--limit-upload and --limit-download take a positive number of KiB per second', async () => {
    for (const [flag, value] of [['--limit-upload', '0'], ['--limit-download', 'fast'], ['--limit-upload', '-5']]) {
      const bad = await cliAt(node, 'daemon', flag as string, value as string)
      assert.equal(bad.code, 2, bad.stderr)
      assert.match(bad.stderr, new RegExp(`${flag as string} takes a positive number`))
    }
  })

  it('SIGTERM (kill, docker stop, OpenRC) stops the daemon cleanly, as SIGINT does: exit 0, its socket removed, and the next start serves the same home', async () => {
    const d = node.daemon
    assert.ok(d !== undefined)
    const exited = new Promise<[number | null, NodeJS.Signals | null]>(resolve => d.once('exit', (code, signal) => { resolve([code, signal]) }))
    d.kill('SIGTERM')
    assert.deepEqual(await exited, [0, null], 'exit 0, not killed by the signal')
    node.daemon = undefined
    assert.equal(existsSync(join(node.home, 'daemon.sock')), false, 'the control socket is removed')
    await startDaemon(node)
    assert.equal(await snapshotCount(), 1)
  })
})
