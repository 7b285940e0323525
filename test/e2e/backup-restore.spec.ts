/**
 * The local engine as a user meets it, through the CLI (in-process): init, backup, restore
 * byte-exact with metadata, incremental backups that read nothing, and the contract's JSON.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync, readdirSync, renameSync, appendFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cliFor, runCli } from '../helpers/cli.js'
import { compareTrees } from '../helpers/tree-compare.js'
import { makeAwkwardTree } from '../helpers/awkward-tree.js'
import { nativeAvailable } from '../../src/backup/fsx.js'

interface BackupJson { snapshotId: string, filesNew: number, filesChanged: number, filesUnchanged: number, bytesRead: number, bytesAdded: number, errors: unknown[] }

describe('e2e: backup and restore on the embedded default', function () {
  this.timeout(120_000)
  let dir: string
  let home: string
  let src: string
  let cli: ReturnType<typeof cliFor>
  const mtimeResolutionNs = nativeAvailable ? 1n : 1000n

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-e2e-'))
    home = join(dir, 'home')
    src = join(dir, 'src')
    makeAwkwardTree(src)
    cli = cliFor(home)
    const init = await cli('init', '--json')
    assert.equal(init.code, 0, init.stderr)
    const j = init.json<{ recoveryPhrase: string, userId: string }>()
    assert.equal(j.recoveryPhrase.split(' ').length, 24)
    assert.match(j.userId, /^[0-9a-f]{64}$/)
  })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  it('restores an awkward tree byte-exact: content, types, modes, ns mtimes, symlinks, hardlinks, sparse, fifo', async () => {
    const b = await cli('backup', src, '--json', '--tag', 'first')
    assert.equal(b.code, 0, b.stderr)
    const summary = b.json<BackupJson>()
    assert.match(summary.snapshotId, /^[0-9a-f]{64}$/)
    assert.deepEqual(summary.errors, [])
    assert.equal(summary.filesNew, 21)

    const target = join(dir, 'restore1')
    const r = await cli('restore', 'latest', '--target', target)
    assert.equal(r.code, 0, r.stderr)
    const diffs = compareTrees(src, join(target, src), { mtimeResolutionNs, owners: true })
    assert.deepEqual(diffs, [])
  })

  it('lists snapshots with the contract fields, and ls shows odd names', async () => {
    const s = await cli('snapshots', '--json')
    assert.equal(s.code, 0, s.stderr)
    const list = s.json<Array<{ id: string, time: string, host: string, paths: string[], tags: string[] }>>()
    assert.equal(list.length, 1)
    assert.deepEqual(list[0]?.paths, [src])
    assert.deepEqual(list[0]?.tags, ['first'])
    assert.ok(!Number.isNaN(Date.parse(list[0]?.time ?? '')))
    const ls = await cli('ls', 'latest', src, '--json')
    assert.equal(ls.code, 0, ls.stderr)
    const paths = ls.json<Array<{ path: string, type: string }>>().map(e => e.path)
    assert.ok(paths.includes(`${src}/new\nline`))
    assert.ok(paths.includes(`${src}/link-dangling`))
  })

  it('a second backup of an unchanged tree reads no file content and adds (almost) nothing', async () => {
    const b = await cli('backup', src, '--json')
    assert.equal(b.code, 0, b.stderr)
    const s = b.json<BackupJson>()
    assert.equal(s.bytesRead, 0)
    assert.equal(s.filesNew, 0)
    assert.equal(s.filesChanged, 0)
    assert.ok(s.filesUnchanged >= 20)
    // at most one small tree pack (directory atimes change on every walk)
    assert.ok(s.bytesAdded <= 256 * 1024, `bytesAdded ${s.bytesAdded}`)
  })

  it('a changed file is re-read, a renamed directory costs almost nothing, diff shows both', async () => {
    appendFileSync(join(src, 'text.log'), 'one more line\n')
    renameSync(join(src, 'deep'), join(src, 'deep-renamed'))
    const b = await cli('backup', src, '--json')
    assert.equal(b.code, 0, b.stderr)
    const s = b.json<BackupJson>()
    assert.equal(s.filesChanged, 1)
    // the renamed directory's file has a new path: read again (no cache hit) but deduplicated
    assert.ok(s.bytesAdded <= 512 * 1024, `bytesAdded ${s.bytesAdded}`)
    const snaps = (await cli('snapshots', '--json')).json<Array<{ id: string }>>()
    const d = await cli('diff', snaps[1]?.id ?? '', snaps[2]?.id ?? '', '--json')
    assert.equal(d.code, 0, d.stderr)
    const changes = d.json<{ changes: Array<{ kind: string, path: string }> }>().changes
    assert.ok(changes.some(c => c.kind === 'M' && c.path === `${src}/text.log`))
    assert.ok(changes.some(c => c.kind === '-' && c.path === `${src}/deep`))
    assert.ok(changes.some(c => c.kind === '+' && c.path === `${src}/deep-renamed/level0/level1/level2/level3/level4/level5/level6/level7/level8/level9/level10/level11/level12/level13/level14/level15/level16/level17/level18/level19/level20/level21/level22/level23/level24/level25/level26/level27/level28/level29/level30/level31/level32/level33/level34/level35/level36/level37/level38/level39/bottom.txt`))
  })

  it('find: fuzzy file-name search across snapshots, best match first, typos tolerated', async () => {
    const f = await cli('find', 'botom.txt', '--json')
    assert.equal(f.code, 0, f.stderr)
    const hits = f.json<Array<{ snapshotId: string, path: string, score: number }>>()
    assert.ok(hits.length >= 1)
    assert.match(hits[0]?.path ?? '', /bottom\.txt$/)
    assert.match(hits[0]?.snapshotId ?? '', /^[0-9a-f]{64}$/)
    assert.equal(typeof hits[0]?.score, 'number')
  })

  it('restore --include restores only the named path', async () => {
    const target = join(dir, 'restore-include')
    const r = await cli('restore', 'latest', '--target', target, '--include', `${src}/ro-dir`)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(readFileSync(join(target, src, 'ro-dir', 'inside'), 'utf8'), 'in a read-only dir')
    assert.ok(!existsSync(join(target, src, 'plain.txt')))
    assert.deepEqual(readdirSync(join(target, src)), ['ro-dir'])
  })

  it('restore --delta reuses data already in the target', async () => {
    const target = join(dir, 'restore1')
    const r = await cli('restore', 'latest', '--target', target, '--delta', '--json')
    assert.equal(r.code, 0, r.stderr)
    const s = r.json<{ bytesReused: number, bytesWritten: number }>()
    assert.ok(s.bytesReused > 3 * 1024 * 1024, `reused ${s.bytesReused} ${r.stdout}`)
    // restore adds and overwrites, it never deletes: 'deep' from the first restore stays
    assert.deepEqual(compareTrees(src, join(target, src), { mtimeResolutionNs, ignore: ['deep'] }), [])
  })

  it('--exclude skips names and absolute globs', async () => {
    const b = await cli('backup', src, '--json', '--exclude', '*.bin', '--exclude', `${src}/deep-renamed`)
    assert.equal(b.code, 0, b.stderr)
    const ls = (await cli('ls', 'latest', src, '--json')).json<Array<{ path: string }>>().map(e => e.path)
    assert.ok(!ls.includes(`${src}/random.bin`))
    assert.ok(!ls.some(p => p.startsWith(`${src}/deep-renamed`)))
    assert.ok(ls.includes(`${src}/text.log`))
  })

  it('a wrong passphrase exits 12 and changes nothing', async () => {
    const before = readFileSync(join(home, 'identity.json'))
    const r = await runCli(['backup', src, '--json'], { P2PBAK_HOME: home, P2PBAK_PASSPHRASE: 'wrong' })
    assert.equal(r.code, 12)
    assert.equal(r.json<{ error: { code: string } }>().error.code, 'ERR_WRONG_PASSPHRASE')
    assert.deepEqual(readFileSync(join(home, 'identity.json')), before)
    const s = (await cli('snapshots', '--json')).json<unknown[]>()
    assert.equal(s.length, 4)
  })

  it('a home without identity exits 10 with advice', async () => {
    const r = await runCli(['snapshots'], { P2PBAK_HOME: join(dir, 'nothing-here') })
    assert.equal(r.code, 10)
    assert.match(r.stderr, /p2pbak init/)
  })

  it('init refuses to overwrite an identity', async () => {
    const r = await cli('init')
    assert.equal(r.code, 1)
    assert.match(r.stderr, /already/)
  })

  it('a source path that does not exist is reported: exit 3, snapshot still written', async () => {
    writeFileSync(join(dir, 'lonely.txt'), 'x')
    const b = await cli('backup', join(dir, 'lonely.txt'), join(dir, 'missing-path'), '--json')
    assert.equal(b.code, 3, b.stderr)
    const s = b.json<BackupJson & { errors: Array<{ path: string }> }>()
    assert.equal(s.errors.length, 1)
    assert.equal(s.errors[0]?.path, join(dir, 'missing-path'))
    assert.equal(s.filesNew, 1)
  })
})
