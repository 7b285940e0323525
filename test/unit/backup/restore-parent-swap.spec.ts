/**
 * Restore never writes outside its target when a local user swaps a directory of the restore for a
 * symlink (issue 11, finding 14, the parent directories). The attacker acts at fixed points, through the
 * restorer's `onDirectory` seam (a directory just made, nothing written into it yet) and its progress
 * callback (a file of the directory being written): no timing races. Each victim directory outside the
 * target holds a file named like one of the snapshot's, which the restore must neither replace nor link.
 * Run with each safe way of resolving names (dirfs.ts: the addon's *at calls, and /proc/self/fd without
 * the addon); every way, the unsafe `path` one included, must still restore an ordinary tree byte-exact.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { chmodSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Archiver, Restorer, type RestoreOptions, type RestoreSummary } from '../../../src/backup/index.js'
import type { DirAccess } from '../../../src/backup/dirfs.js'
import { Home } from '../../../src/node/home.js'
import { makeAwkwardTree } from '../../helpers/awkward-tree.js'
import { compareTrees } from '../../helpers/tree-compare.js'

describe('backup: restore never writes outside the target when a parent directory is swapped for a symlink', function () {
  this.timeout(60_000)
  let dir: string
  let home: Home
  let tree: Awaited<ReturnType<Archiver['run']>>['tree']
  let seq = 0
  const src = (): string => join(dir, 'src')

  /** A directory outside the target holding `names`, each a private file only its owner may read. */
  const makeVictim = (...names: string[]): string => {
    const v = join(dir, `victim-${seq++}`)
    mkdirSync(v, { mode: 0o700 })
    for (const n of names) writeFileSync(join(v, n), 'private\n', { mode: 0o600 })
    return v
  }
  const assertUntouched = (victim: string, ...names: string[]): void => {
    assert.deepEqual(readdirSync(victim).sort(), [...names].sort(), 'the restore wrote into a directory outside its target')
    assert.equal(statSync(victim).mode & 0o7777, 0o700)
    for (const n of names) {
      assert.equal(readFileSync(join(victim, n), 'utf8'), 'private\n', `${n} outside the target was replaced`)
      assert.equal(statSync(join(victim, n)).mode & 0o7777, 0o600)
      assert.equal(statSync(join(victim, n)).nlink, 1, `${n} outside the target was linked into the restore`)
    }
  }
  /** An attacker's swap: the directory is moved aside and a symlink to `victim` takes its name. */
  const swap = (path: string, victim: string): void => {
    renameSync(path, path + '.moved')
    symlinkSync(victim, path)
  }
  const restore = async (opts: Omit<RestoreOptions, 'target'>): Promise<{ target: string, r: RestoreSummary }> => {
    const target = join(dir, `restore-${seq++}`)
    const r = await new Restorer(home.repo, home.cdc).run(tree, { target, ...opts })
    return { target, r }
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-parent-swap-'))
    await Home.init({ home: join(dir, 'home'), passphrase: null, kdf: { opslimit: 1, memlimit: 8192 } })
    home = await Home.open({ home: join(dir, 'home'), passphrase: async () => null })
    // tree order (bytes): a-first, other, shared, z-last
    mkdirSync(join(src(), 'a-first'), { recursive: true })
    writeFileSync(join(src(), 'a-first', 'hl1'), 'linked three times\n')
    mkdirSync(join(src(), 'other'))
    writeFileSync(join(src(), 'other', 'x.txt'), 'unrelated\n')
    mkdirSync(join(src(), 'shared', 'deep'), { recursive: true })
    writeFileSync(join(src(), 'shared', 'a.txt'), 'first\n')
    writeFileSync(join(src(), 'shared', 'b.txt'), 'second\n')
    writeFileSync(join(src(), 'shared', 'notes.txt'), 'notes\n')
    writeFileSync(join(src(), 'shared', 'deep', 'inner.txt'), 'inner\n')
    linkSync(join(src(), 'a-first', 'hl1'), join(src(), 'shared', 'hl2'))
    symlinkSync('a.txt', join(src(), 'shared', 'link'))
    execFileSync('mkfifo', [join(src(), 'shared', 'pipe')])
    chmodSync(join(src(), 'shared'), 0o777)
    mkdirSync(join(src(), 'z-last'))
    linkSync(join(src(), 'a-first', 'hl1'), join(src(), 'z-last', 'hl3'))
    tree = (await new Archiver({ repo: home.repo, cdc: home.cdc }).run({ paths: [src()], host: 'h', program: 'test' })).tree
  })
  after(async () => {
    await home.closeNow()
    rmSync(dir, { recursive: true, force: true })
  })

  for (const dirAccess of ['native', 'proc'] as const) {
    describe(`names resolved by ${dirAccess === 'native' ? 'the addon\'s *at calls' : '/proc/self/fd/N/name'}`, () => {
      swapTests(dirAccess)
    })
  }

  for (const dirAccess of ['native', 'proc', 'path'] as const) {
    it(`restores an awkward tree byte-exact, names resolved by ${dirAccess}`, async () => {
      const awkward = join(dir, `awkward-${dirAccess}`)
      makeAwkwardTree(awkward)
      const t = (await new Archiver({ repo: home.repo, cdc: home.cdc }).run({ paths: [awkward], host: 'h', program: 'test' })).tree
      const target = join(dir, `restore-awkward-${dirAccess}`)
      const restorer = new Restorer(home.repo, home.cdc)
      const r = await restorer.run(t, { target, dirAccess })
      assert.equal(restorer.dirAccess, dirAccess)
      assert.deepEqual(r.errors, [])
      assert.deepEqual(compareTrees(awkward, join(target, awkward), { owners: true }), [])
      // again over the restored tree: every name exists, and is replaced
      const again = await new Restorer(home.repo, home.cdc).run(t, { target, dirAccess })
      assert.deepEqual(again.errors, [])
      assert.deepEqual(compareTrees(awkward, join(target, awkward), { owners: true }), [])
    })
  }

  it('a target that is a symlink is refused before anything is written', async () => {
    const victim = makeVictim()
    const target = join(dir, `restore-${seq++}`)
    symlinkSync(victim, target)
    await assert.rejects(new Restorer(home.repo, home.cdc).run(tree, { target }), (err: Error & { code?: string }) => err.code === 'ERR_INVALID_ARGUMENT' && /is a symlink/.test(err.message))
    assertUntouched(victim)
  })

  function swapTests (dirAccess: DirAccess): void {
  it('a directory swapped right after it is made: nothing of it is written outside, it is reported, the rest is restored', async () => {
    const victim = makeVictim('notes.txt', 'a.txt', 'hl2')
    let swapped = ''
    const { target, r } = await restore({
      dirAccess,
      onDirectory: (p) => {
        if (swapped !== '' || !p.endsWith('/shared')) return
        swapped = p
        swap(p, victim)
      }
    })
    assert.notEqual(swapped, '')
    assertUntouched(victim, 'notes.txt', 'a.txt', 'hl2')
    assert.ok(r.errors.some(e => e.path === swapped && e.code === 'ERR_RESTORE_SWAPPED'), JSON.stringify(r.errors))
    assert.equal(readFileSync(join(target, src(), 'other', 'x.txt'), 'utf8'), 'unrelated\n')
    assert.equal(readFileSync(join(target, src(), 'z-last', 'hl3'), 'utf8'), 'linked three times\n')
    assert.equal(lstatSync(join(target, src(), 'z-last', 'hl3')).ino, lstatSync(join(target, src(), 'a-first', 'hl1')).ino)
  })

  it('a directory swapped while its files are written: its later children (files, symlink, fifo, hardlink, subdirectory) stay inside', async () => {
    const victim = makeVictim('notes.txt', 'b.txt', 'hl2', 'link')
    let swapped = ''
    const { target, r } = await restore({
      dirAccess,
      onProgress: (p) => {
        if (swapped !== '' || !p.currentPath.endsWith('/shared/a.txt')) return
        swapped = p.currentPath.slice(0, -'/a.txt'.length)
        swap(swapped, victim)
      }
    })
    assert.notEqual(swapped, '')
    assertUntouched(victim, 'notes.txt', 'b.txt', 'hl2', 'link')
    assert.equal(readFileSync(join(target, src(), 'other', 'x.txt'), 'utf8'), 'unrelated\n')
    // the directory's content went where it was moved, and the name that no longer leads to it is reported
    assert.deepEqual(readdirSync(swapped + '.moved').sort(), ['a.txt', 'b.txt', 'deep', 'hl2', 'link', 'notes.txt', 'pipe'])
    assert.deepEqual(r.errors.map(e => [e.path, e.code]), [[swapped, 'ERR_RESTORE_SWAPPED']])
  })

  it('the directory of a hardlink group\'s first file swapped before the next link is made: the link is not made to the file outside', async () => {
    const victim = makeVictim('hl1')
    let swapped = ''
    const { target, r } = await restore({
      dirAccess,
      onDirectory: (p) => {
        if (swapped !== '' || !p.endsWith('/z-last')) return
        swapped = p.slice(0, -'/z-last'.length) + '/a-first'
        swap(swapped, victim)
      }
    })
    assert.notEqual(swapped, '')
    assertUntouched(victim, 'hl1')
    const hl3 = join(target, src(), 'z-last', 'hl3')
    assert.ok(!existsSync(hl3) || lstatSync(hl3).ino !== lstatSync(join(victim, 'hl1')).ino)
    assert.ok(r.errors.some(e => e.path === hl3), JSON.stringify(r.errors))
  })
  }
})
