/**
 * The daemon unlocks the keys once (issue 13, item 5): the commands handed to it over daemon.sock use
 * its open home, so none of them asks for the passphrase, runs Argon2id or derives the identity again.
 * The daemon runs in this process (as in daemon-guard.spec.ts); the libsodium backend it shares with
 * the test counts those calls. The clients are main() without a daemon, as a user's CLI is.
 */
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { loadBackend, type SodiumBackend } from '../../src/crypto/index.js'
import { IDENTITY_KDF_CONTEXT } from '../../src/crypto/identity.js'
import { Home } from '../../src/node/home.js'
import { NodeService } from '../../src/node/service.js'
import { main } from '../../src/cli/main.js'

describe('integration: the daemon derives the keys once, not per command it runs', function () {
  this.timeout(60_000)
  let dir: string
  let home: string
  let data: string
  let sodium: SodiumBackend
  let realPwhash: SodiumBackend['pwhash']
  let realPwhashAsync: SodiumBackend['pwhashAsync']
  let realKdfDerive: SodiumBackend['kdfDerive']
  const counts = { passphrase: 0, pwhash: 0, identity: 0 }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-keys-'))
    home = join(dir, 'home')
    data = join(dir, 'data')
    mkdirSync(join(data, 'docs'), { recursive: true })
    writeFileSync(join(data, 'docs', 'note.txt'), 'the one small file\n')
    writeFileSync(join(data, 'other.bin'), Buffer.alloc(100_000, 7))
    await Home.init({ home, passphrase: 'pw', kdf: { opslimit: 1, memlimit: 8192 } })
    // the backend Home.open loads is this one (one instance per backend name)
    sodium = await loadBackend('sodium-native')
    realPwhash = sodium.pwhash
    realPwhashAsync = sodium.pwhashAsync
    realKdfDerive = sodium.kdfDerive
    // Argon2id runs, either way (a home opens with the asynchronous one)
    sodium.pwhash = (...args) => { counts.pwhash++; return realPwhash.apply(sodium, args) }
    sodium.pwhashAsync = async (...args) => { counts.pwhash++; return await realPwhashAsync.apply(sodium, args) }
    sodium.kdfDerive = (key, id, context, length) => {
      if (context === IDENTITY_KDF_CONTEXT) counts.identity++
      return realKdfDerive.call(sodium, key, id, context, length)
    }
  })

  after(() => {
    sodium.pwhash = realPwhash
    sodium.pwhashAsync = realPwhashAsync
    sodium.kdfDerive = realKdfDerive
    rmSync(dir, { recursive: true, force: true })
  })

  const cli = async (...argv: string[]): Promise<{ code: number, stdout: string, stderr: string }> => {
    const stdout = new PassThrough()
    const stderr = new PassThrough()
    const out: Buffer[] = []
    const err: Buffer[] = []
    stdout.on('data', (b: Buffer) => out.push(b))
    stderr.on('data', (b: Buffer) => err.push(b))
    // a wrong passphrase: a command that opened the home again would fail with exit 12
    const code = await main(argv, { stdout, stderr, stdin: new PassThrough(), env: { P2PBAK_HOME: home, P2PBAK_PASSPHRASE: 'not the passphrase' } })
    return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }
  }

  it('unlocks once at start; backup, snapshots, ls, find, restore, dump and check add no derivation', async () => {
    const service = await NodeService.start({
      home: { home, passphrase: async () => { counts.passphrase++; return 'pw' } },
      network: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      refreshMs: 3_600_000,
      runCommand: async (argv, io, services) => await main(argv, { ...io, env: { ...io.env, P2PBAK_HOME: home } }, services)
    })
    try {
      assert.equal(counts.passphrase, 1)
      assert.equal(counts.pwhash, 1)
      const identityAtStart = counts.identity
      assert.ok(identityAtStart > 0, 'the counter does not see the identity being derived')

      const target = join(dir, 'restored')
      for (const argv of [
        ['backup', data],
        ['snapshots'],
        ['ls', 'latest'],
        ['find', 'note'],
        ['restore', 'latest', '--target', target, '--include', join(data, 'docs', 'note.txt')],
        ['dump', 'latest', join(data, 'docs', 'note.txt')],
        ['check']
      ]) {
        const r = await cli(...argv)
        assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`)
      }
      assert.equal(readFileSync(join(target, data, 'docs', 'note.txt'), 'utf8'), 'the one small file\n')
      assert.deepEqual(counts, { passphrase: 1, pwhash: 1, identity: identityAtStart })
    } finally {
      await service.stop()
    }
  })
})
