/**
 * A walk of unchanged files lets the event loop turn between directories (issue 13, item 4): its calls
 * are synchronous and its awaits already settled, so without a turn the native memory of the buffers
 * native modules return is freed only at the end (a no-change backup of a million files peaked at 786
 * MiB instead of 474).
 */
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Archiver, Restorer } from '../../../src/backup/index.js'
import { Home } from '../../../src/node/home.js'

describe('backup: a no-change walk lets the event loop turn', function () {
  this.timeout(60_000)
  let dir: string
  let home: Home
  let tree: Awaited<ReturnType<Archiver['run']>>['tree']
  const src = (...p: string[]): string => join(dir, 'src', ...p)

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-loop-'))
    await Home.init({ home: join(dir, 'home'), passphrase: null, kdf: { opslimit: 1, memlimit: 8192 } })
    home = await Home.open({ home: join(dir, 'home'), passphrase: async () => null })
    for (const d of ['a', 'b', 'c']) {
      mkdirSync(src(d), { recursive: true })
      for (let i = 0; i < 40; i++) writeFileSync(src(d, `f${i}`), `${d}${i}`)
    }
    tree = (await new Archiver({ repo: home.repo, cdc: home.cdc }).run({ paths: [src()], host: 'h', program: 'test' })).tree
  })
  after(async () => {
    await home.closeNow()
    rmSync(dir, { recursive: true, force: true })
  })

  it('a callback of the loop runs before the walk of 120 unchanged files ends', async () => {
    let done = 0
    let turnedAt: number | undefined
    let scheduled = false
    const s = await new Archiver({ repo: home.repo, cdc: home.cdc }).run({
      paths: [src()],
      host: 'h',
      program: 'test',
      onProgress: (p) => {
        done = p.filesDone
        if (!scheduled && p.filesDone === 1) {
          scheduled = true
          setImmediate(() => { turnedAt = done })
        }
      }
    })
    assert.equal(s.filesUnchanged, 120)
    assert.ok(turnedAt !== undefined && turnedAt < 120, `the loop first turned after ${String(turnedAt)} of 120 files`)
  })

  it('so does a restore of those files', async () => {
    let done = 0
    let turnedAt: number | undefined
    let scheduled = false
    const r = await new Restorer(home.repo, home.cdc).run(tree, {
      target: join(dir, 'restore'),
      onProgress: (p) => {
        done = p.filesDone
        if (!scheduled && p.filesDone === 1) {
          scheduled = true
          setImmediate(() => { turnedAt = done })
        }
      }
    })
    assert.equal(r.files, 120)
    assert.ok(turnedAt !== undefined && turnedAt < 120, `the loop first turned after ${String(turnedAt)} of 120 files`)
  })
})
