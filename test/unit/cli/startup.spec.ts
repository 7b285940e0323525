/**
 * What a command loads before it runs (issue 13, item 5; docs/benchmarks.md "Start-up and small
 * commands"): `--version` and `--help` load neither libsodium, lmdb nor libp2p, a command handed to
 * the daemon loads only the control socket's client, and a local command in a home outside any group
 * loads no network stack (nor, without DEBUG, the logging library). The real bin/p2pbak.js (over dist/: build first) runs in a child whose module
 * loads a loader hook records (test/fixtures/load-trace.mjs). Nothing here is timed.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startControlServer } from '../../../src/node/control.js'
import { TEST_ENV, runCli } from '../../helpers/cli.js'

const BIN = fileURLToPath(new URL('../../../bin/p2pbak.js', import.meta.url))
const TRACE = fileURLToPath(new URL('../../fixtures/load-trace.mjs', import.meta.url))

/** Packages whose loading costs the most, and that only some commands need. */
const HEAVY = /^(sodium-native|libsodium-wrappers(-sumo)?|lmdb|zstd-napi|libp2p|@libp2p\/.*|@chainsafe\/.*|@multiformats\/.*|multiformats|cli-progress|@leeoniya\/ufuzzy)$/
/** The recovery phrase's word list and its SHA-256: init, recover and the demo only. */
const PHRASE = /^(@scure\/bip39|@noble\/hashes)$/
/** The network stack (@libp2p/logger is only the logging library). */
const NETWORK = /^(libp2p|@libp2p\/(?!logger$).*|@chainsafe\/libp2p-.*|@multiformats\/multiaddr)$/
/** Our modules that pull in libsodium, lmdb, the repository or the node. */
const HEAVY_OWN = /^(node\/(session|home|service|network)|store\/index|repo\/index|crypto\/index|backup\/index|util\/log)\.js$/

interface Run { code: number | null, stdout: string, stderr: string, packages: Set<string>, own: Set<string> }

async function runTraced (argv: string[], env: Record<string, string>, dir: string): Promise<Run> {
  const trace = join(dir, `trace-${Math.random().toString(36).slice(2)}.txt`)
  writeFileSync(trace, '')
  const child = spawn(process.execPath, ['--import', TRACE, BIN, ...argv], {
    env: { PATH: process.env.PATH ?? '', ...TEST_ENV, ...env, P2PBAK_LOAD_TRACE: trace },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on('data', (b: Buffer) => out.push(b))
  child.stderr.on('data', (b: Buffer) => err.push(b))
  const code = await new Promise<number | null>(resolve => child.once('close', resolve))
  const packages = new Set<string>()
  const own = new Set<string>()
  for (const line of readFileSync(trace, 'utf8').split('\n')) {
    const pkg = /.*\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(line)
    if (pkg !== null) { packages.add(pkg[1] as string); continue }
    const mine = /\/dist\/(.+\.js)$/.exec(line)
    if (mine !== null) own.add(mine[1] as string)
  }
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), packages, own }
}

const heavyOf = (r: Run): string[] => [...r.packages].filter(p => HEAVY.test(p))
const heavyOwnOf = (r: Run): string[] => [...r.own].filter(m => HEAVY_OWN.test(m))

describe('cli start-up: each command loads only what it needs', function () {
  this.timeout(60_000)
  let dir: string
  before(() => { dir = mkdtempSync(join(tmpdir(), 'p2pbak-startup-')) })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  it('--version loads no package at all', async () => {
    const r = await runTraced(['--version'], { P2PBAK_HOME: join(dir, 'none') }, dir)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/)
    assert.deepEqual([...r.packages], [])
  })

  it('--help, a command\'s --help and a usage error load commander only: no libsodium, lmdb or libp2p', async () => {
    for (const argv of [['--help'], ['backup', '--help'], ['restore', '--help'], ['group', 'invite', '--help'], ['daemon', '--help'], ['restore', 'latest']]) {
      const r = await runTraced(argv, { P2PBAK_HOME: join(dir, 'none') }, dir)
      assert.equal(r.code, argv.includes('--help') ? 0 : 2, `${argv.join(' ')}: ${r.stderr}`)
      assert.deepEqual([...r.packages], ['commander'], argv.join(' '))
      assert.deepEqual(heavyOwnOf(r), [], argv.join(' '))
    }
  })

  it('a command handed to the daemon loads only the control socket\'s client (not even commander)', async () => {
    const home = join(dir, 'forwarded')
    mkdirSync(home, { mode: 0o700 })
    const seen: string[][] = []
    const server = await startControlServer(join(home, 'daemon.sock'), async (argv, io) => {
      seen.push(argv)
      io.stdout.write('answered by the daemon\n')
      return 0
    })
    try {
      const r = await runTraced(['find', 'report'], { P2PBAK_HOME: home }, dir)
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stdout, 'answered by the daemon\n')
      assert.deepEqual(seen, [['find', 'report']])
      assert.deepEqual([...r.packages], [])
      assert.ok(r.own.has('node/control.js'), [...r.own].join(' '))
      assert.ok(!r.own.has('cli/program.js'), 'the commander program was built')
      assert.deepEqual(heavyOwnOf(r), [])
    } finally {
      await server.close()
    }
  })

  it('a local command in a home outside any group loads libsodium and lmdb, not the network stack', async () => {
    const home = join(dir, 'local')
    const init = await runCli(['init', '--insecure-no-passphrase'], { P2PBAK_HOME: home })
    assert.equal(init.code, 0, init.stderr)
    for (const argv of [['snapshots'], ['find', 'anything']]) {
      const r = await runTraced(argv, { P2PBAK_HOME: home }, dir)
      assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`)
      // the trace sees what the command really needs (the hook would otherwise prove nothing)
      assert.ok(r.packages.has('sodium-native') && r.packages.has('lmdb'), [...r.packages].join(' '))
      assert.deepEqual([...r.packages].filter(p => NETWORK.test(p)), [], argv.join(' '))
      // nor the logging library while DEBUG is unset (src/util/log.ts)
      assert.deepEqual([...r.packages].filter(p => p === '@libp2p/logger' || p === 'multiformats'), [], argv.join(' '))
      // nor the recovery phrase's word list (src/crypto/phrase.ts)
      assert.deepEqual([...r.packages].filter(p => PHRASE.test(p)), [], argv.join(' '))
      assert.ok(!r.own.has('crypto/phrase.js'), argv.join(' '))
    }
    assert.deepEqual(heavyOf(await runTraced(['snapshots', '--help'], { P2PBAK_HOME: home }, dir)), [])
  })

  it('init and recover load the recovery phrase\'s word list (the trace sees it where it is needed)', async () => {
    const home = join(dir, 'phrase')
    const init = await runTraced(['--json', 'init', '--insecure-no-passphrase'], { P2PBAK_HOME: home }, dir)
    assert.equal(init.code, 0, init.stderr)
    assert.ok(init.own.has('crypto/phrase.js') && init.packages.has('@scure/bip39'), [...init.packages].join(' '))
    const phraseFile = join(dir, 'phrase.txt')
    writeFileSync(phraseFile, (JSON.parse(init.stdout) as { recoveryPhrase: string }).recoveryPhrase)
    const recover = await runTraced(['recover', '--phrase-file', phraseFile, '--insecure-no-passphrase'], { P2PBAK_HOME: join(dir, 'recovered') }, dir)
    assert.equal(recover.code, 0, recover.stderr)
    assert.ok(recover.own.has('crypto/phrase.js') && recover.packages.has('@scure/bip39'), [...recover.packages].join(' '))
  })
})
