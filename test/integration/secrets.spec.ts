/**
 * The seed's protection at rest and the passphrase in memory (issue 11, finding 10), through the CLI
 * in-process: P2PBAK_KDF cannot weaken Argon2id below the floor (outside tests, which say so with
 * P2PBAK_INSECURE_TEST_KDF=1); a script's `init` without a passphrase stores the seed in clear only
 * with --insecure-no-passphrase; the daemon removes the passphrase from its environment once it has
 * unlocked the keys.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { main } from '../../src/cli/main.js'
import { runCli } from '../helpers/cli.js'
import { waitFor } from '../helpers/daemons.js'

describe('integration: secrets (KDF floor, explicit no-passphrase, scrubbed environment)', function () {
  this.timeout(60_000)
  let dir: string
  let n = 0
  const fresh = (): string => join(dir, `h${n++}`)
  const kdfOf = (home: string): { opslimit: number, memlimit: number } | null =>
    (JSON.parse(readFileSync(join(home, 'identity.json'), 'utf8')) as { kdf: { opslimit: number, memlimit: number } | null }).kdf
  before(() => { dir = mkdtempSync(join(tmpdir(), 'p2pbak-secrets-')) })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  it('P2PBAK_KDF below the floor is refused outside tests; at or above it, it is used', async () => {
    const weak = fresh()
    const r = await runCli(['init'], { P2PBAK_HOME: weak, P2PBAK_PASSPHRASE: 'pw', P2PBAK_KDF: '1,8388608', P2PBAK_INSECURE_TEST_KDF: undefined })
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /below the floor/)
    assert.equal(existsSync(join(weak, 'identity.json')), false)
    const floor = fresh()
    assert.equal((await runCli(['init'], { P2PBAK_HOME: floor, P2PBAK_PASSPHRASE: 'pw', P2PBAK_KDF: '2,67108864', P2PBAK_INSECURE_TEST_KDF: undefined })).code, 0)
    assert.deepEqual({ ...kdfOf(floor) }, { ...kdfOf(floor), opslimit: 2, memlimit: 67108864 })
    assert.equal((await runCli(['init'], { P2PBAK_HOME: fresh(), P2PBAK_PASSPHRASE: 'pw', P2PBAK_KDF: 'fast', P2PBAK_INSECURE_TEST_KDF: undefined })).code, 2)
  })

  it('a non-interactive init without a passphrase is refused unless --insecure-no-passphrase', async () => {
    for (const env of [{}, { P2PBAK_PASSPHRASE: '' }]) {
      const home = fresh()
      const r = await runCli(['init'], { P2PBAK_HOME: home, ...env })
      assert.equal(r.code, 2, r.stderr)
      assert.match(r.stderr, /--insecure-no-passphrase/)
      assert.equal(existsSync(join(home, 'identity.json')), false)
    }
    const home = fresh()
    const ok = await runCli(['init', '--insecure-no-passphrase', '--json'], { P2PBAK_HOME: home })
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal(ok.json<{ encrypted: boolean }>().encrypted, false)
    assert.equal(kdfOf(home), null)
    // a passphrase from a file counts as one
    const file = join(dir, 'pass')
    const { writeFileSync } = await import('node:fs')
    writeFileSync(file, 'from a file\n', { mode: 0o600 })
    const viaFile = fresh()
    const f = await runCli(['init', '--json'], { P2PBAK_HOME: viaFile, P2PBAK_PASSPHRASE_FILE: file })
    assert.equal(f.code, 0, f.stderr)
    assert.equal(f.json<{ encrypted: boolean }>().encrypted, true)
  })

  it('the daemon drops P2PBAK_PASSPHRASE from its environment once the keys are unlocked', async () => {
    const home = fresh()
    assert.equal((await runCli(['init'], { P2PBAK_HOME: home, P2PBAK_PASSPHRASE: 'secret pw' })).code, 0)
    // the environment object the daemon gets is the process's own in bin/p2pbak.js
    const env: Record<string, string | undefined> = { P2PBAK_HOME: home, P2PBAK_PASSPHRASE: 'secret pw' }
    const stop = new AbortController()
    const out = new PassThrough()
    out.resume()
    const running = main(['daemon', '--listen', '/ip4/127.0.0.1/tcp/0', '--refresh', '3600000'], { stdout: out, stderr: out, stdin: new PassThrough(), env, signal: stop.signal })
    try {
      await waitFor('the daemon', () => existsSync(join(home, 'daemon.sock')), 30_000)
      await waitFor('the passphrase to leave the environment', () => !('P2PBAK_PASSPHRASE' in env), 10_000)
      assert.equal(env.P2PBAK_HOME, home)
    } finally {
      stop.abort()
      assert.equal(await running, 0)
    }
  })
})
