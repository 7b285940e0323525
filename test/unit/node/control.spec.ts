/**
 * The daemon's control socket carries a command's output whole, whatever the size of one write (a
 * `dump` writes pieces of up to 4 MiB: one line of base64 past the client's line limit dropped the
 * connection, exit 1 with no output), and a command line whole, whatever its characters (a
 * character cut between two reads of the socket became U+FFFD).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { forwardToDaemon, startControlServer } from '../../../src/node/control.js'

describe('node/control: what crosses the control socket arrives whole', function () {
  this.timeout(30_000)
  let dir: string
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'p2pbak-control-')) })
  afterEach(() => { rmSync(dir, { recursive: true, force: true }) })

  it('a 4 MiB write and a long non-ASCII command line', async () => {
    const big = randomBytes(4 * 1024 * 1024 + 17)
    let received: string[] = []
    const sock = join(dir, 'daemon.sock')
    const server = await startControlServer(sock, async (argv, io) => {
      received = argv
      io.stdout.write(big)
      return 0
    })
    try {
      const out = new PassThrough()
      const chunks: Buffer[] = []
      out.on('data', (b: Buffer) => chunks.push(b))
      // ~120 KB of two-byte characters: some fall across the socket's 64 KiB reads
      const path = '/photos/' + 'été à Zürich/'.repeat(5000)
      const code = await forwardToDaemon(sock, ['backup', path], {}, out, new PassThrough())
      assert.equal(code, 0)
      assert.deepEqual(received, ['backup', path])
      assert.ok(Buffer.concat(chunks).equals(big), 'the output arrives byte for byte')
    } finally {
      await server.close()
    }
  })
})
