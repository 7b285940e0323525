/**
 * The daemon's own guards (issue 11, finding 9): it refuses a home that others may write, its
 * control socket is its owner's alone, and it never runs a command that must not run inside it,
 * whoever sends it.
 */
import assert from 'node:assert/strict'
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { Home } from '../../src/node/home.js'
import { NodeService } from '../../src/node/service.js'
import { forwardToDaemon } from '../../src/node/control.js'
import { main } from '../../src/cli/main.js'

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
})
