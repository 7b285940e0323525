/**
 * Restore sets owners, modes and times without following a symlink (issue 11, finding 14). A local
 * user who can write into the restore target swaps a restored name for a symlink to a victim file or
 * directory while the restore runs (here: from the progress callback, the moment the name's data is
 * written); the victim keeps its mode, and the swap is reported.
 */
import assert from 'node:assert/strict'
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Archiver, Restorer } from '../../../src/backup/index.js'
import { Home } from '../../../src/node/home.js'

describe('backup: restore never follows a symlink to set metadata', function () {
  this.timeout(60_000)
  let dir: string
  let home: Home
  let tree: Awaited<ReturnType<Archiver['run']>>['tree']
  const src = (): string => join(dir, 'src')

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-restore-race-'))
    await Home.init({ home: join(dir, 'home'), passphrase: null, kdf: { opslimit: 1, memlimit: 8192 } })
    home = await Home.open({ home: join(dir, 'home'), passphrase: async () => null })
    mkdirSync(join(src(), 'shared'), { recursive: true })
    writeFileSync(join(src(), 'shared', 'notes.txt'), 'hello\n'.repeat(1000))
    chmodSync(join(src(), 'shared', 'notes.txt'), 0o666)
    chmodSync(join(src(), 'shared'), 0o777)
    tree = (await new Archiver({ repo: home.repo, cdc: home.cdc }).run({ paths: [src()], host: 'h', program: 'test' })).tree
  })
  after(async () => {
    await home.closeNow()
    rmSync(dir, { recursive: true, force: true })
  })

  it('a restored file swapped for a symlink: the victim file keeps its mode', async () => {
    const victim = join(dir, 'secret-file')
    writeFileSync(victim, 'private key\n', { mode: 0o600 })
    const target = join(dir, 'restore-file')
    const file = join(target, src(), 'shared', 'notes.txt')
    let swapped = false
    const r = await new Restorer(home.repo, home.cdc).run(tree, {
      target,
      onProgress: (p) => {
        if (swapped || p.currentPath !== file) return
        swapped = true
        rmSync(file)
        symlinkSync(victim, file)
      }
    })
    assert.ok(swapped)
    assert.equal(statSync(victim).mode & 0o777, 0o600, 'the victim file was made world-writable through the symlink')
    assert.deepEqual(r.errors.filter(e => !e.path.endsWith('notes.txt')), [])
  })

  it('a restored directory swapped for a symlink: the victim directory keeps its mode, and the swap is reported', async () => {
    const victim = join(dir, 'secret-dir')
    mkdirSync(victim, { mode: 0o700 })
    chmodSync(victim, 0o700)
    const target = join(dir, 'restore-dir')
    const shared = join(target, src(), 'shared')
    let swapped = false
    const r = await new Restorer(home.repo, home.cdc).run(tree, {
      target,
      onProgress: (p) => {
        if (swapped || !p.currentPath.startsWith(shared)) return
        swapped = true
        renameSync(shared, shared + '.moved')
        symlinkSync(victim, shared)
      }
    })
    assert.ok(swapped)
    assert.equal(statSync(victim).mode & 0o777, 0o700, 'the victim directory was made world-writable through the symlink')
    assert.ok(r.errors.some(e => e.path === shared && /replaced by a symlink/.test(e.error)), JSON.stringify(r.errors))
  })
})
