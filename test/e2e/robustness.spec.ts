/**
 * Bad things a user meets: unreadable files, damaged store bytes, a lost machine, kill -9 in the
 * middle of a backup, files that change while they are read. Each must lose nothing and say what
 * happened.
 */
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import {
  chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync, readFileSync, readdirSync, mkdirSync, statSync, openSync, writeSync, closeSync, existsSync, lstatSync, symlinkSync
} from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cliFor, runCli, TEST_ENV } from '../helpers/cli.js'
import { phraseToSeed } from '../../src/crypto/phrase.js'
import { InvalidPhraseError } from '../../src/errors.js'
import { compareTrees } from '../helpers/tree-compare.js'
import { NOBODY, runCliAsUser, type UserRunResult } from '../helpers/as-user.js'

const BIN = fileURLToPath(new URL('../../bin/p2pbak.js', import.meta.url))
/** Whether words make a phrase whose checksum is valid (then `recover` would take it: another identity). */
function isValidPhrase (words: readonly string[]): boolean {
  try { phraseToSeed(words.join(' ')); return true } catch (err: unknown) { if (err instanceof InvalidPhraseError) return false; throw err }
}
const NO_FCHMOD = fileURLToPath(new URL('../fixtures/no-fchmod.cjs', import.meta.url))
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0

function listFiles (dir: string): string[] {
  const out: string[] = []
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else out.push(p)
    }
  }
  walk(dir)
  return out
}

/**
 * The CLI as the unprivileged user nobody (65534), for what root would bypass (permissions). The
 * parent dir and a fresh home are opened up so that user can use them; the CLI itself is reached
 * through a descriptor root opens (test/helpers/as-user.ts), so this works wherever the project is
 * cloned, even under a directory nobody cannot enter.
 */
function cliAsNobody (dir: string, home: string): (...args: string[]) => UserRunResult {
  chmodSync(dir, 0o777)
  // the home is that user's own (p2pbak refuses a home another user owns or may write)
  mkdirSync(home, { mode: 0o700 })
  chownSync(home, NOBODY, NOBODY)
  const env = { P2PBAK_HOME: home, P2PBAK_PASSPHRASE: 'pw', HOME: home }
  return (...args: string[]) => runCliAsUser(args, env, NOBODY, NOBODY)
}

async function waitFor (what: string, fn: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

describe('e2e: robustness', function () {
  this.timeout(180_000)
  let dir: string
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'p2pbak-rob-')) })
  afterEach(() => { rmSync(dir, { recursive: true, force: true }) })

  it('an unreadable file and directory are reported, the rest is backed up, exit 3', async function () {
    const src = join(dir, 'src')
    mkdirSync(join(src, 'locked-dir'), { recursive: true })
    writeFileSync(join(src, 'ok.txt'), 'fine')
    writeFileSync(join(src, 'secret.txt'), 'no access')
    writeFileSync(join(src, 'locked-dir', 'inner.txt'), 'hidden')
    chmodSync(join(src, 'secret.txt'), 0o000)
    chmodSync(join(src, 'locked-dir'), 0o000)
    const home = join(dir, 'home')
    let result: { code: number, stdout: string }
    if (isRoot) {
      // root reads everything: run the CLI as an unprivileged user, as a real user would be
      const run = cliAsNobody(dir, home)
      const init = run('init')
      assert.equal(init.code, 0, init.stderr)
      result = run('backup', src, '--json')
    } else {
      const cli = cliFor(home, 'pw')
      assert.equal((await cli('init')).code, 0)
      result = await cli('backup', src, '--json')
    }
    assert.equal(result.code, 3)
    const s = JSON.parse(result.stdout) as { filesNew: number, errors: Array<{ path: string, code: string }> }
    assert.equal(s.filesNew, 1)
    assert.deepEqual(s.errors.map(e => e.path).sort(), [join(src, 'locked-dir'), join(src, 'secret.txt')])
    assert.ok(s.errors.every(e => e.code === 'EACCES'))
  })

  it('a backed-up path reached through a symlinked folder: that folder is restored with its target\'s mode, not the link\'s 0777', async () => {
    // /data → /mnt/disk, and the user backs up /data/photos
    const disk = join(dir, 'disk')
    mkdirSync(join(disk, 'photos'), { recursive: true, mode: 0o750 })
    chmodSync(disk, 0o750)
    writeFileSync(join(disk, 'photos', 'a.jpg'), 'jpeg')
    const data = join(dir, 'data')
    symlinkSync(disk, data)
    const cli = cliFor(join(dir, 'home'))
    assert.equal((await cli('init')).code, 0)
    const b = await cli('backup', join(data, 'photos'))
    assert.equal(b.code, 0, b.stderr)
    const target = join(dir, 'restore')
    const r = await cli('restore', 'latest', '--target', target)
    assert.equal(r.code, 0, r.stderr)
    const restored = join(target, data)
    assert.ok(lstatSync(restored).isDirectory())
    assert.equal(lstatSync(restored).mode & 0o7777, 0o750, 'the folder on the way has the mode of the directory it led to')
    assert.equal(readFileSync(join(restored, 'photos', 'a.jpg'), 'utf8'), 'jpeg')
  })

  it('a restored file whose mode cannot be set (a file system without Unix modes) is reported, and kept whole', async () => {
    const src = join(dir, 'src')
    mkdirSync(src)
    const data = randomBytes(100_000)
    writeFileSync(join(src, 'kept.bin'), data)
    const home = join(dir, 'home')
    const cli = cliFor(home)
    assert.equal((await cli('init')).code, 0)
    assert.equal((await cli('backup', src)).code, 0)
    const target = join(dir, 'restore')
    const r = spawnSync(process.execPath, ['--require', NO_FCHMOD, BIN, 'restore', 'latest', '--target', target], {
      encoding: 'utf8', env: { ...process.env, ...TEST_ENV, P2PBAK_HOME: home, P2PBAK_PASSPHRASE: 'correct horse' }
    })
    assert.equal(r.status, 1, r.stderr)
    assert.match(r.stderr, /kept\.bin.*EPERM/)
    assert.deepEqual(readFileSync(join(target, src, 'kept.bin')), data)
  })

  it('restore never writes through a symlink that is already in the target', async () => {
    const src = join(dir, 'src')
    mkdirSync(join(src, 'sub'), { recursive: true })
    writeFileSync(join(src, 'sub', 'file.txt'), 'mine')
    const home = join(dir, 'home')
    const cli = cliFor(home)
    assert.equal((await cli('init')).code, 0)
    assert.equal((await cli('backup', src)).code, 0)
    // an attacker (or an old tree) left a symlink where the snapshot has a directory
    const target = join(dir, 'restore')
    const elsewhere = join(dir, 'elsewhere')
    mkdirSync(elsewhere)
    mkdirSync(join(target, src), { recursive: true })
    spawnSync('ln', ['-s', elsewhere, join(target, src, 'sub')])
    const r = await cli('restore', 'latest', '--target', target)
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(readdirSync(elsewhere), [])
    assert.equal(statSync(elsewhere).mode & 0o7777, 0o755)
    assert.equal(readFileSync(join(target, src, 'sub', 'file.txt'), 'utf8'), 'mine')
    assert.ok(statSync(join(target, src, 'sub')).isDirectory())
  })

  it('a non-root user restores read-only directories and files completely', async function () {
    if (!isRoot) this.skip() // the scenario is built by running the CLI as another user
    const src = join(dir, 'src')
    mkdirSync(join(src, 'ro-dir', 'inner'), { recursive: true })
    writeFileSync(join(src, 'ro-dir', 'inner', 'f.txt'), 'deep')
    writeFileSync(join(src, 'ro-file'), 'read only')
    chmodSync(join(src, 'ro-file'), 0o400)
    chmodSync(join(src, 'ro-dir', 'inner'), 0o500)
    chmodSync(join(src, 'ro-dir'), 0o500)
    spawnSync('chown', ['-R', '65534:65534', src])
    const run = cliAsNobody(dir, join(dir, 'home'))
    assert.equal(run('init').code, 0)
    const b = run('backup', src)
    assert.equal(b.code, 0, b.stderr)
    const target = join(dir, 'restore')
    const r = run('restore', 'latest', '--target', target, '--json')
    assert.equal(r.code, 0, r.stderr)
    assert.equal((JSON.parse(r.stdout) as { errors: unknown[] }).errors.length, 0)
    assert.deepEqual(compareTrees(src, join(target, src), { mtimeResolutionNs: 1000n, owners: true }), [])
  })

  it('one flipped byte in the store: check --read-data names the file, the other files still restore', async () => {
    const src = join(dir, 'src')
    mkdirSync(src)
    // two files big enough to land in different packs (16 MiB each pack)
    writeFileSync(join(src, 'a.bin'), randomBytes(20 * 1024 * 1024))
    writeFileSync(join(src, 'b.txt'), 'small and precious\n')
    const home = join(dir, 'home')
    const cli = cliFor(home)
    assert.equal((await cli('init')).code, 0)
    assert.equal((await cli('backup', src)).code, 0)
    assert.equal((await cli('check', '--read-data')).code, 0)
    // flip one byte in the middle of the largest pack file (holding a.bin's data)
    const packs = listFiles(join(home, 'store', 'shares')).sort((x, y) => statSync(y).size - statSync(x).size)
    const victim = packs[0] as string
    const buf = readFileSync(victim)
    const at = Math.floor(buf.length / 2)
    const fd = openSync(victim, 'r+')
    writeSync(fd, Buffer.from([(buf[at] as number) ^ 0x01]), 0, 1, at)
    closeSync(fd)

    const check = await cli('check', '--read-data', '--json')
    assert.equal(check.code, 1)
    const report = check.json<{ ok: boolean, damagedFiles: Array<{ path: string }>, problems: Array<{ kind: string }> }>()
    assert.equal(report.ok, false)
    assert.deepEqual(report.damagedFiles.map(f => f.path), [join(src, 'a.bin')])
    assert.ok(report.problems.some(p => p.kind === 'damaged-blob'))
    const target = join(dir, 'restore')
    const r = await cli('restore', 'latest', '--target', target)
    assert.equal(r.code, 1)
    assert.match(r.stderr, /a\.bin/)
    assert.equal(readFileSync(join(target, src, 'b.txt'), 'utf8'), 'small and precious\n')
    // the file that could not be restored whole is not left cut short under its name
    assert.equal(existsSync(join(target, src, 'a.bin')), false)
  })

  it('a pack lost from the store: check names the files, the next backup stores the data again', async () => {
    const src = join(dir, 'src')
    mkdirSync(src)
    writeFileSync(join(src, 'big.bin'), randomBytes(20 * 1024 * 1024))
    writeFileSync(join(src, 'note.txt'), 'keep me')
    const home = join(dir, 'home')
    const cli = cliFor(home)
    assert.equal((await cli('init')).code, 0)
    assert.equal((await cli('backup', src)).code, 0)
    const packs = listFiles(join(home, 'store', 'shares')).sort((x, y) => statSync(y).size - statSync(x).size)
    rmSync(packs[0] as string)
    const check = await cli('check', '--json')
    assert.equal(check.code, 1)
    const report = check.json<{ problems: Array<{ kind: string }>, damagedFiles: Array<{ path: string }> }>()
    assert.ok(report.problems.some(p => p.kind === 'missing-pack'))
    assert.deepEqual(report.damagedFiles.map(f => f.path), [join(src, 'big.bin')])
    // the file still exists on disk: the next backup must not dedup against the lost pack
    const b = await cli('backup', src, '--json')
    assert.equal(b.code, 0, b.stderr)
    // the lost pack held up to 16 MiB of big.bin (less its padding): stored again, not deduplicated against
    assert.ok(b.json<{ bytesAdded: number }>().bytesAdded > 8 * 1024 * 1024, `bytes added: ${b.stdout}`)
    const target = join(dir, 'restore')
    assert.equal((await cli('restore', 'latest', '--target', target)).code, 0)
    assert.deepEqual(compareTrees(src, join(target, src), { mtimeResolutionNs: 1000n }), [])
  })

  it('a new machine with only the recovery phrase reads every snapshot', async () => {
    const src = join(dir, 'src')
    mkdirSync(src)
    writeFileSync(join(src, 'letter.txt'), 'dear future me')
    writeFileSync(join(src, 'data.bin'), randomBytes(2 * 1024 * 1024))
    const oldHome = join(dir, 'old')
    const init = await cliFor(oldHome)('init', '--json')
    const phrase = init.json<{ recoveryPhrase: string, userId: string }>()
    assert.equal((await cliFor(oldHome)('backup', src)).code, 0)
    // the new machine: no identity, no index, no config; only the store's bytes (later: friends' shards)
    const newHome = join(dir, 'new')
    mkdirSync(newHome)
    spawnSync('cp', ['-a', join(oldHome, 'store'), join(newHome, 'store')])
    const phraseFile = join(dir, 'phrase.txt')
    writeFileSync(phraseFile, `  ${phrase.recoveryPhrase.toUpperCase().split(' ').join('\n')}\n`)
    const rec = await cliFor(newHome, 'a different passphrase')('recover', '--phrase-file', phraseFile, '--json')
    assert.equal(rec.code, 0, rec.stderr)
    assert.equal(rec.json<{ userId: string }>().userId, phrase.userId)
    const cli = cliFor(newHome, 'a different passphrase')
    const snaps = (await cli('snapshots', '--json')).json<unknown[]>()
    assert.equal(snaps.length, 1)
    const target = join(dir, 'restore')
    assert.equal((await cli('restore', 'latest', '--target', target)).code, 0)
    assert.deepEqual(compareTrees(src, join(target, src), { mtimeResolutionNs: 1000n }), [])
    // a wrong phrase is refused clearly. The words reversed are a wrong phrase, but their checksum
    // is valid by chance in about one run of 256 (suite run 75): then the next rotation is taken
    const words = phrase.recoveryPhrase.split(' ')
    let wrong = [...words].reverse()
    for (let r = 1; r < words.length && isValidPhrase(wrong); r++) wrong = [...words.slice(r), ...words.slice(0, r)].reverse()
    assert.ok(!isValidPhrase(wrong), 'a phrase with a bad checksum')
    writeFileSync(phraseFile, wrong.join(' '))
    const bad = await runCli(['recover', '--phrase-file', phraseFile], { P2PBAK_HOME: join(dir, 'other'), P2PBAK_PASSPHRASE: 'x' })
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /phrase/i)
  })

  it('kill -9 during a backup leaves the store readable; the next backup completes and check passes', async () => {
    const src = join(dir, 'src')
    mkdirSync(src)
    for (let i = 0; i < 12; i++) writeFileSync(join(src, `f${i}.bin`), randomBytes(8 * 1024 * 1024))
    const home = join(dir, 'home')
    const cli = cliFor(home)
    assert.equal((await cli('init')).code, 0)
    const env = { ...process.env, ...TEST_ENV, P2PBAK_HOME: home, P2PBAK_PASSPHRASE: 'correct horse' }
    const child = spawn(process.execPath, [BIN, 'backup', src], { env, stdio: 'ignore' })
    const exited = new Promise(resolve => child.on('exit', resolve))
    // wait until the backup has stored at least two packs, then kill it hard
    await waitFor('two packs on disk', () => existsSync(join(home, 'store', 'shares')) && listFiles(join(home, 'store', 'shares')).filter(f => !f.includes('.tmp-')).length >= 2)
    child.kill('SIGKILL')
    await exited
    const snapsAfterKill = (await cli('snapshots', '--json')).json<unknown[]>()
    assert.equal(snapsAfterKill.length, 0)
    const b = await cli('backup', src, '--json')
    assert.equal(b.code, 0, b.stderr)
    const check = await cli('check', '--read-data', '--json')
    assert.equal(check.code, 0, check.stdout)
    const target = join(dir, 'restore')
    assert.equal((await cli('restore', 'latest', '--target', target)).code, 0)
    assert.deepEqual(compareTrees(src, join(target, src), { mtimeResolutionNs: 1000n }), [])
  })

  it('a file that keeps changing while it is read is recorded as changed-during-backup', async () => {
    const src = join(dir, 'src')
    mkdirSync(src)
    const busy = join(src, 'busy.log')
    writeFileSync(busy, randomBytes(24 * 1024 * 1024))
    writeFileSync(join(src, 'calm.txt'), 'calm')
    // a writer appending a line every 2 ms for the whole backup
    const writer = spawn(process.execPath, ['-e', `const fs=require('fs');setInterval(()=>fs.appendFileSync(${JSON.stringify(busy)},'tick\\n'),2)`], { stdio: 'ignore' })
    try {
      const home = join(dir, 'home')
      const cli = cliFor(home)
      assert.equal((await cli('init')).code, 0)
      const b = await cli('backup', src, '--json')
      assert.equal(b.code, 0, b.stderr)
      const s = b.json<{ changedDuringBackup: string[], filesNew: number }>()
      assert.deepEqual(s.changedDuringBackup, [busy])
      assert.equal(s.filesNew, 2)
    } finally {
      writer.kill()
    }
  })
})
