/**
 * `service install|uninstall` (systemd) and the passphrase from a credential: the unit written is right,
 * `systemd-analyze verify` accepts it (when installed), it never holds the passphrase, and the daemon it
 * starts reads the passphrase from $CREDENTIALS_DIRECTORY/p2pbak-passphrase.
 */
import assert from 'node:assert/strict'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { spawn, spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.js'

const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0

/** `systemd-analyze [--user] verify UNIT`, with a private runtime dir for the user manager. */
function verify (dir: string, unit: string, user: boolean): { status: number | null, out: string } {
  const run = join(dir, 'run')
  mkdirSync(run, { recursive: true, mode: 0o700 })
  const r = spawnSync('systemd-analyze', [...(user ? ['--user'] : []), 'verify', unit], { env: { ...process.env, XDG_RUNTIME_DIR: run } })
  return { status: r.status, out: r.stdout.toString() + r.stderr.toString() }
}

/** The words of an ExecStart= line as systemd splits them (double quotes, \\ escapes, %% and $$). */
function execWords (unit: string): string[] {
  const line = unit.split('\n').find(l => l.startsWith('ExecStart=')) ?? ''
  const words: string[] = []
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g
  for (const m of line.slice('ExecStart='.length).matchAll(re)) {
    words.push((m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2] ?? '').replace(/%%/g, '%').replace(/\$\$/g, '$'))
  }
  return words
}

describe('e2e: service install (systemd)', function () {
  this.timeout(120_000)
  let dir: string
  let home: string
  let cfg: string
  let env: Record<string, string>
  const passphrase = 'correct horse'

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-service-'))
    home = join(dir, 'home')
    cfg = join(dir, 'config')
    env = { P2PBAK_HOME: home, XDG_CONFIG_HOME: cfg, PATH: process.env.PATH ?? '' }
    const init = await runCli(['init'], { ...env, P2PBAK_PASSPHRASE: passphrase })
    assert.equal(init.code, 0, init.stderr)
  })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  it('refuses to install for a passphrase-protected identity without a passphrase source, or with a file others can read', async () => {
    const none = await runCli(['service', 'install', '--user', '--no-start'], env)
    assert.equal(none.code, 2)
    assert.match(none.stderr, /--passphrase-file/)
    const loose = join(dir, 'loose')
    writeFileSync(loose, passphrase)
    chmodSync(loose, 0o644)
    const r = await runCli(['service', 'install', '--user', '--no-start', '--passphrase-file', loose], env)
    assert.equal(r.code, 2)
    assert.match(r.stderr, /chmod 600/)
    assert.equal(existsSync(join(cfg, 'systemd', 'user', 'p2pbak.service')), false)
  })

  it('--user --no-start writes a unit under XDG_CONFIG_HOME that loads the passphrase as a credential and never holds it', async () => {
    const pass = join(dir, 'passphrase')
    writeFileSync(pass, passphrase + '\n', { mode: 0o600 })
    const r = await runCli(['service', 'install', '--user', '--no-start', '--passphrase-file', pass, '--', '--listen', '/ip4/127.0.0.1/tcp/0', '--announce', '/dns4/odd name%$/tcp/1'], { ...env, P2PBAK_PASSPHRASE: passphrase })
    assert.equal(r.code, 0, r.stderr)
    const path = join(cfg, 'systemd', 'user', 'p2pbak.service')
    assert.match(r.stdout, new RegExp(`wrote ${path}`))
    assert.match(r.stdout, /systemctl --user enable --now p2pbak\.service/)
    const unit = readFileSync(path, 'utf8')
    assert.ok(!unit.includes(passphrase), 'the passphrase is not in the unit')
    assert.match(unit, new RegExp(`^LoadCredential=p2pbak-passphrase:${pass}$`, 'm'))
    assert.match(unit, /^WantedBy=default\.target$/m)
    assert.match(unit, /^KillSignal=SIGINT$/m)
    assert.doesNotMatch(unit, /network-online/)
    const words = execWords(unit)
    assert.equal(words[0], process.execPath)
    assert.match(words[1] ?? '', /bin\/p2pbak\.js$/)
    assert.deepEqual(words.slice(2), ['--home', home, 'daemon', '--listen', '/ip4/127.0.0.1/tcp/0', '--announce', '/dns4/odd name%$/tcp/1'])
    if (hasAnalyze) {
      const v = verify(dir, path, true)
      assert.equal(v.status, 0, v.out)
    }
  })

  it('a system unit (here in --unit-dir) with an environment file passes systemd-analyze verify', async function () {
    const envFile = join(dir, 'env')
    writeFileSync(envFile, `P2PBAK_PASSPHRASE=${passphrase}\n`, { mode: 0o600 })
    const r = await runCli(['service', 'install', '--unit-dir', join(dir, 'system'), '--no-start', '--env-file', envFile, '--name', 'p2pbak-test', '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    const out = r.json<{ unit: string, started: boolean, commands: string[] }>()
    assert.equal(out.unit, join(dir, 'system', 'p2pbak-test.service'))
    assert.equal(out.started, false)
    assert.deepEqual(out.commands, ['systemctl daemon-reload', 'systemctl enable --now p2pbak-test.service'])
    const unit = readFileSync(out.unit, 'utf8')
    assert.match(unit, new RegExp(`^EnvironmentFile=${envFile}$`, 'm'))
    assert.match(unit, /^WantedBy=multi-user\.target$/m)
    assert.match(unit, /^After=network-online\.target$/m)
    assert.ok(!unit.includes(passphrase))
    if (!hasAnalyze) this.skip()
    const v = verify(dir, out.unit, false)
    assert.equal(v.status, 0, v.out)
  })

  it('the daemon started as the unit says reads its passphrase from $CREDENTIALS_DIRECTORY', async () => {
    const creds = join(dir, 'creds')
    mkdirSync(creds, { mode: 0o700 })
    writeFileSync(join(creds, 'p2pbak-passphrase'), passphrase + '\n', { mode: 0o600 })
    const words = execWords(readFileSync(join(cfg, 'systemd', 'user', 'p2pbak.service'), 'utf8')).slice(0, 5)
    const childEnv: Record<string, string> = { PATH: process.env.PATH ?? '', CREDENTIALS_DIRECTORY: creds, P2PBAK_KDF: '1,8388608', P2PBAK_INSECURE_TEST_KDF: '1' }
    const child = spawn(words[0] as string, [...words.slice(1), '--listen', '/ip4/127.0.0.1/tcp/0'], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (b: Buffer) => { out += b.toString() })
    child.stderr.on('data', (b: Buffer) => { err += b.toString() })
    const exited = new Promise<number | null>(resolve => child.on('exit', c => resolve(c)))
    for (let i = 0; i < 400 && !/p2pbak daemon: peer/.test(out) && child.exitCode === null; i++) await new Promise(resolve => setTimeout(resolve, 50))
    assert.match(out, /p2pbak daemon: peer/, err)
    child.kill('SIGINT')
    assert.equal(await exited, 0, err)
    // a wrong passphrase in the credential is refused as such
    writeFileSync(join(creds, 'p2pbak-passphrase'), 'wrong\n')
    const wrong = spawnSync(words[0] as string, [...words.slice(1, 4), 'snapshots'], { env: childEnv })
    assert.equal(wrong.status, 12, wrong.stderr.toString())
  })

  it('uninstall removes the unit; a second uninstall says there is none (exit 1)', async () => {
    const r = await runCli(['service', 'uninstall', '--user', '--no-start'], env)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(existsSync(join(cfg, 'systemd', 'user', 'p2pbak.service')), false)
    const again = await runCli(['service', 'uninstall', '--user', '--no-start'], env)
    assert.equal(again.code, 1)
    assert.match(again.stderr, /there is no unit/)
  })
})
