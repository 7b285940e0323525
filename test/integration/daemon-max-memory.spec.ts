/**
 * `daemon --max-memory SIZE` (src/cli/memory-limit.ts): a real daemon with a limit below what it
 * needs at rest collects, finds it cannot get under the limit, says so once with what to do, and goes
 * on serving; a limit too small to mean anything is refused before the daemon starts.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { TEST_ENV } from '../helpers/cli.js'
import { cliAt, stopDaemon, waitFor, type DaemonNode } from '../helpers/daemons.js'

const BIN = fileURLToPath(new URL('../../bin/p2pbak.js', import.meta.url))

describe('integration: daemon --max-memory', function () {
  this.timeout(90_000)
  let dir: string
  const node: DaemonNode = { name: 'solo', home: '', userId: '' }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-maxmem-'))
    node.home = join(dir, 'home')
    assert.equal((await cliAt(node, 'init', '--json')).code, 0)
  })

  after(async () => {
    await stopDaemon(node)
    rmSync(dir, { recursive: true, force: true })
  })

  it('refuses a limit below 64 MiB, or one that is not a size', async () => {
    for (const value of ['10MiB', 'lots']) {
      const bad = await cliAt(node, 'daemon', '--max-memory', value)
      assert.equal(bad.code, 2, bad.stderr)
      assert.match(bad.stderr, /--max-memory|size/)
    }
  })

  it('a limit below what the daemon needs at rest: it is told once, and the daemon serves on', async () => {
    let stderr = ''
    const child: ChildProcess = spawn(process.execPath, [BIN, 'daemon', '--listen', '/ip4/127.0.0.1/tcp/0', '--max-memory', '64MiB'], {
      env: { ...process.env, ...TEST_ENV, P2PBAK_HOME: node.home, P2PBAK_PASSPHRASE: 'pw' }, stdio: ['ignore', 'ignore', 'pipe']
    })
    node.daemon = child
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
    await waitFor('the warning', () => /more than --max-memory 64 MiB allows/.test(stderr))
    assert.match(stderr, /p2pbak daemon: the daemon holds \d+ MiB after freeing what it could, .*raise --max-memory, or leave it out/)
    const snapshots = await cliAt(node, 'snapshots', '--json')
    assert.equal(snapshots.code, 0, snapshots.stderr)
    assert.equal(stderr.match(/more than --max-memory/g)?.length, 1)
  })
})
