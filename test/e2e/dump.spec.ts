/**
 * `dump SNAP PATH` as a user meets it: the real binary (bin/p2pbak.js, run `npm run build` first) piped
 * into the system's tar, and in-process for the error paths. A folder comes back from `tar -x` byte-exact
 * with modes, mtimes, owners, symlinks, hardlinks, a FIFO, odd and non-UTF-8 names and paths longer than
 * the 100 bytes of a ustar header; a file comes out byte-exact; Ctrl-C stops a dump blocked on its reader.
 */
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { spawn, spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { cliFor, TEST_ENV } from '../helpers/cli.js'
import { compareTrees } from '../helpers/tree-compare.js'
import { makeAwkwardTree } from '../helpers/awkward-tree.js'
import { nativeAvailable } from '../../src/backup/fsx.js'
import { main } from '../../src/cli/main.js'

const BIN = fileURLToPath(new URL('../../bin/p2pbak.js', import.meta.url))

interface Piped { code: number | null, signal: string | null, tarCode: number | null, stderr: string, tarStderr: string }

/** `p2pbak dump ARGS | tar TARARGS`, both real processes. */
async function dumpInto (env: NodeJS.ProcessEnv, args: string[], tarArgs: string[]): Promise<Piped> {
  const dump = spawn(process.execPath, [BIN, 'dump', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  const tar = spawn('tar', tarArgs, { stdio: ['pipe', 'ignore', 'pipe'] })
  dump.stdout.pipe(tar.stdin)
  let stderr = ''
  let tarStderr = ''
  dump.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
  tar.stderr.on('data', (b: Buffer) => { tarStderr += b.toString() })
  const [d, t] = await Promise.all([
    new Promise<[number | null, string | null]>(resolve => dump.on('close', (code, signal) => resolve([code, signal]))),
    new Promise<number | null>(resolve => tar.on('close', code => resolve(code)))
  ])
  return { code: d[0], signal: d[1], tarCode: t, stderr, tarStderr }
}

describe('e2e: dump', function () {
  this.timeout(180_000)
  let dir: string
  let home: string
  let src: string
  let env: NodeJS.ProcessEnv
  let cli: ReturnType<typeof cliFor>
  const mtimeResolutionNs = nativeAvailable ? 1n : 1000n
  /** a file whose path inside the archive is far beyond 100 bytes, with a non-UTF-8 name on the way */
  let longDir: Buffer

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-dump-'))
    home = join(dir, 'home')
    src = join(dir, 'src')
    makeAwkwardTree(src)
    longDir = Buffer.concat([Buffer.from(`${src}/long-${'d'.repeat(60)}/`), Buffer.from([0x6e, 0xe9, 0xff]), Buffer.from(`-${'e'.repeat(80)}`)])
    mkdirSync(longDir, { recursive: true })
    writeFileSync(Buffer.concat([longDir, Buffer.from(`/${'f'.repeat(120)}.txt`)]), 'at the end of a long path\n')
    cli = cliFor(home)
    env = { ...process.env, ...TEST_ENV, P2PBAK_HOME: home, P2PBAK_PASSPHRASE: 'correct horse' }
    assert.equal((await cli('init')).code, 0)
    const b = await cli('backup', src, '--json')
    assert.equal(b.code, 0, b.stderr)
  })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  it('dump of a folder | tar -x gives the tree back byte-exact (modes, mtimes, owners, symlinks, hardlinks, long and non-UTF-8 names)', async () => {
    const out = join(dir, 'untar')
    mkdirSync(out)
    const r = await dumpInto(env, ['latest', src], ['-x', '-p', '-f', '-', '-C', out])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.tarCode, 0, r.tarStderr)
    // GNU tar remarks on the tree's times before 1970 and after now; nothing else
    assert.deepEqual(r.tarStderr.split('\n').filter(l => l !== '' && !/time stamp/.test(l)), [])
    assert.equal(r.stderr, '')
    assert.deepEqual(compareTrees(src, join(out, src), { mtimeResolutionNs, owners: true }), [])
  })

  it('names a path longer than 100 bytes in full (pax), as tar -t lists it', async () => {
    const listing = spawnSync('sh', ['-c', `"${process.execPath}" "${BIN}" dump latest "${src}" | tar -t --quoting-style=literal`], { env, maxBuffer: 1 << 26 })
    assert.equal(listing.status, 0, listing.stderr.toString())
    const names = listing.stdout.toString('latin1').split('\n')
    const want = Buffer.concat([longDir, Buffer.from(`/${'f'.repeat(120)}.txt`)]).subarray(1).toString('latin1')
    assert.ok(want.length > 250)
    assert.ok(names.includes(want), 'the long path is listed whole')
  })

  it('dump of one file writes its bytes and nothing else', async () => {
    const r = spawnSync(process.execPath, [BIN, 'dump', 'latest', join(src, 'random.bin')], { env, maxBuffer: 1 << 26 })
    assert.equal(r.status, 0, r.stderr.toString())
    assert.ok(r.stdout.equals(readFileSync(join(src, 'random.bin'))))
    const empty = spawnSync(process.execPath, [BIN, 'dump', 'latest', join(src, 'empty')], { env })
    assert.equal(empty.status, 0, empty.stderr.toString())
    assert.equal(empty.stdout.length, 0)
    // a name that is not UTF-8 arrives in argv decoded (as `ls` prints it): it is still found
    const odd = spawnSync(process.execPath, [BIN, 'dump', 'latest', `${src}/latin\ufffd\ufffd`], { env })
    assert.equal(odd.status, 0, odd.stderr.toString())
    assert.equal(odd.stdout.toString(), 'not UTF-8')
  })

  it('--tar wraps a single file in an archive; a symlink is an archive of one entry', async () => {
    const out = join(dir, 'one')
    mkdirSync(out)
    const r = await dumpInto(env, ['latest', join(src, 'plain.txt'), '--tar'], ['-x', '-f', '-', '-C', out])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.tarCode, 0, r.tarStderr)
    assert.equal(readFileSync(join(out, src, 'plain.txt'), 'utf8'), 'hello world\n')
    const l = await dumpInto(env, ['latest', join(src, 'link-rel')], ['-x', '-f', '-', '-C', out])
    assert.equal(l.code, 0, l.stderr)
    assert.equal(spawnSync('readlink', [join(out, src, 'link-rel')]).stdout.toString().trim(), 'plain.txt')
  })

  it('a missing path, or a path through a file, is a clear error with exit 1 and no output', async () => {
    const missing = await cli('dump', 'latest', join(src, 'no-such-file'))
    assert.equal(missing.code, 1)
    assert.equal(missing.stdout, '')
    assert.match(missing.stderr, /no-such-file is not in this snapshot/)
    const through = await cli('dump', 'latest', join(src, 'plain.txt', 'x'))
    assert.equal(through.code, 1)
    assert.match(through.stderr, /plain\.txt is not a directory/)
    const json = await cli('dump', 'latest', join(src, 'nope'), '--json')
    assert.equal(json.json<{ error: { code: string } }>().error.code, 'ERR_NOT_FOUND')
    const snap = await cli('dump', 'ffffffff', '/')
    assert.equal(snap.code, 1)
    assert.match(snap.stderr, /ffffffff/)
  })

  it('refuses to write an archive to a terminal (exit 2), but writes a file there', async () => {
    const run = async (path: string): Promise<{ code: number, out: string, err: string }> => {
      const stdout = Object.assign(new PassThrough(), { isTTY: true })
      const stderr = new PassThrough()
      let out = ''
      let err = ''
      stdout.on('data', (b: Buffer) => { out += b.toString() })
      stderr.on('data', (b: Buffer) => { err += b.toString() })
      const code = await main(['dump', 'latest', path], { stdout, stderr, stdin: new PassThrough(), env: { ...TEST_ENV, P2PBAK_HOME: home, P2PBAK_PASSPHRASE: 'correct horse' } })
      return { code, out, err }
    }
    const folder = await run(src)
    assert.equal(folder.code, 2)
    assert.equal(folder.out, '')
    assert.match(folder.err, /tar archive.*pipe it/)
    const file = await run(join(src, 'plain.txt'))
    assert.equal(file.code, 0, file.err)
    assert.equal(file.out, 'hello world\n')
  })

  it('Ctrl-C stops a dump blocked on a reader that stopped reading; it exits 130 once the reader goes too', async () => {
    const child = spawn(process.execPath, [BIN, 'dump', 'latest', src], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
    const exited = new Promise<number | null>(resolve => child.on('exit', c => resolve(c)))
    // read the first bytes, then stop reading: the pipe fills and dump waits for it to drain
    await new Promise<void>(resolve => child.stdout.once('data', () => { child.stdout.pause(); resolve() }))
    await new Promise(resolve => setTimeout(resolve, 300))
    child.kill('SIGINT')
    // the command stops at once, though the bytes already queued keep the pipe busy
    for (let i = 0; i < 100 && !/cancelled/.test(stderr); i++) await new Promise(resolve => setTimeout(resolve, 50))
    assert.match(stderr, /p2pbak: dump cancelled/)
    // a terminal's Ctrl-C reaches the whole pipeline: the reader goes away too
    child.stdout.destroy()
    assert.equal(await exited, 130, stderr)
    assert.doesNotMatch(stderr, /EPIPE|unexpected/)
  })
})
