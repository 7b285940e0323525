import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AtomicFile, WRITEV_MAX_PARTS, removeTempFiles, writeFileAtomic } from '../../../src/store/index.js'
import { rejectsWithCode, seededBytes } from '../../compliance/share-store.js'
import { mountTinyTmpfs, unmountTmpfs } from '../../fixtures/tmpfs.js'

async function names (dir: string): Promise<string[]> {
  return (await readdir(dir)).sort()
}

describe('writeFileAtomic', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'p2pbak-atomic-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('writes exactly the given bytes, or a string as UTF-8, and leaves no temp file', async () => {
    await writeFileAtomic(join(dir, 'a'), seededBytes(1, 100_000))
    await writeFileAtomic(join(dir, 'b'), 'héllo')
    await writeFileAtomic(join(dir, 'c'), new Uint8Array(0))
    assert.deepEqual(new Uint8Array(await readFile(join(dir, 'a'))), seededBytes(1, 100_000))
    assert.equal(await readFile(join(dir, 'b'), 'utf8'), 'héllo')
    assert.equal((await stat(join(dir, 'c'))).size, 0)
    assert.deepEqual(await names(dir), ['a', 'b', 'c'])
  })

  it('writes data given as parts (more than one writev takes, empty ones among them) as their concatenation', async () => {
    const whole = seededBytes(3, 1300 * 97)
    const parts: Uint8Array[] = []
    for (let off = 0; off < whole.byteLength; off += 97) parts.push(whole.subarray(off, off + 97), new Uint8Array(0))
    assert.ok(parts.length > 2 * WRITEV_MAX_PARTS)
    await writeFileAtomic(join(dir, 'p'), parts)
    assert.deepEqual(new Uint8Array(await readFile(join(dir, 'p'))), whole)
    await writeFileAtomic(join(dir, 'e'), [])
    assert.equal((await stat(join(dir, 'e'))).size, 0)
    assert.deepEqual(await names(dir), ['e', 'p'])
  })

  it('replaces an existing file completely (a shorter file leaves no tail)', async () => {
    const path = join(dir, 'f')
    await writeFileAtomic(path, seededBytes(1, 5000))
    await writeFileAtomic(path, seededBytes(2, 10))
    assert.deepEqual(new Uint8Array(await readFile(path)), seededBytes(2, 10))
  })

  it('applies the requested mode', async () => {
    await writeFileAtomic(join(dir, 'm'), 'x', { mode: 0o600 })
    assert.equal((await stat(join(dir, 'm'))).mode & 0o777, 0o600)
  })

  it('concurrent writers of one path leave one complete version and no temp files', async () => {
    const path = join(dir, 'race')
    const versions = Array.from({ length: 20 }, (_, i) => seededBytes(i, 10_000 + i * 1000))
    await Promise.all(versions.map(async (v) => { await writeFileAtomic(path, v) }))
    const final = new Uint8Array(await readFile(path))
    assert.ok(versions.some((v) => Buffer.compare(v, final) === 0), 'the file mixes several writers')
    assert.deepEqual(await names(dir), ['race'])
  })

  it('fails in a missing directory without creating anything', async () => {
    await assert.rejects(writeFileAtomic(join(dir, 'nope', 'f'), 'x'), { code: 'ENOENT' })
    assert.deepEqual(await names(dir), [])
  })

  it('removes its temp file when the final rename fails', async () => {
    const target = join(dir, 'taken')
    await mkdir(target)
    await writeFile(join(target, 'keep'), 'k') // rename over a non-empty directory fails
    await assert.rejects(writeFileAtomic(target, 'x'))
    assert.deepEqual(await names(dir), ['taken'])
    assert.deepEqual(await names(target), ['keep'])
  })
})

describe('AtomicFile', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'p2pbak-atomic-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('shows nothing (or the old file) under the final name until commit, then the concatenated writes', async () => {
    const path = join(dir, 'log')
    await writeFile(path, 'old')
    const file = await AtomicFile.create(path)
    await file.write(seededBytes(1, 1000))
    await file.write(new Uint8Array(0))
    await file.write(seededBytes(2, 70_000))
    assert.equal(await readFile(path, 'utf8'), 'old')
    const temps = (await names(dir)).filter((n) => n.startsWith('.tmp-'))
    assert.equal(temps.length, 1, 'the temp file lives beside the final name')
    assert.match(temps[0] as string, new RegExp(`^\\.tmp-${process.pid}-[0-9a-f]{8}-[0-9a-f]{8}$`))
    await file.commit()
    const expected = Buffer.concat([seededBytes(1, 1000), seededBytes(2, 70_000)])
    assert.deepEqual(await readFile(path), expected)
    assert.deepEqual(await names(dir), ['log'])
  })

  it('abort removes the temp file and leaves the final name untouched; it is idempotent', async () => {
    const path = join(dir, 'x')
    const file = await AtomicFile.create(path)
    await file.write(seededBytes(1, 100))
    await file.abort()
    await file.abort()
    assert.deepEqual(await names(dir), [])
    await assert.rejects(file.write(new Uint8Array(1)))
    await assert.rejects(file.commit())
  })

  it('abort after commit keeps the committed file; write after commit is refused', async () => {
    const path = join(dir, 'y')
    const file = await AtomicFile.create(path, 0o600)
    await file.write(seededBytes(1, 10))
    await file.commit()
    await file.abort()
    assert.deepEqual(new Uint8Array(await readFile(path)), seededBytes(1, 10))
    assert.equal((await stat(path)).mode & 0o777, 0o600)
    await assert.rejects(file.write(new Uint8Array(1)))
  })
})

describe('removeTempFiles', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'p2pbak-atomic-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('removes only .tmp- files and counts them; a missing directory counts as empty', async () => {
    for (const n of ['.tmp-1', '.tmp-abcdef0123456789', 'keep', '.tmpx', 'tmp-2']) await writeFile(join(dir, n), 'x')
    assert.equal(await removeTempFiles(dir), 2)
    assert.deepEqual(await names(dir), ['.tmpx', 'keep', 'tmp-2'])
    assert.equal(await removeTempFiles(join(dir, 'missing')), 0)
  })

  it('keeps the temp files of a live writer and removes those of a dead one', async () => {
    const { spawn, spawnSync } = await import('node:child_process')
    // a process that has exited, and one that runs
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString()
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' })
    try {
      const live = `.tmp-${child.pid ?? 0}-0123456789abcdef`
      const gone = `.tmp-${dead}-0123456789abcdef`
      await writeFile(join(dir, live), 'x')
      await writeFile(join(dir, gone), 'x')
      assert.equal(await removeTempFiles(dir), 1)
      assert.deepEqual(await names(dir), [live])
    } finally {
      child.kill('SIGKILL')
    }
  })

  it('removes the temp files an earlier process with this process\'s pid left (a daemon restarted in a container), and keeps its own', async () => {
    const own = await AtomicFile.create(join(dir, 'f'))
    await own.write(seededBytes(3, 100))
    const ownTemp = (await names(dir))[0] as string
    // the same pid, another process: an older naming, and this naming with another process mark
    const earlier = [`.tmp-${process.pid}-0123456789abcdef`, `.tmp-${process.pid}-01234567-89abcdef`]
    for (const n of earlier) await writeFile(join(dir, n), 'x')
    assert.equal(await removeTempFiles(dir), 2)
    assert.deepEqual(await names(dir), [ownTemp])
    await own.commit()
    assert.deepEqual(await names(dir), ['f'])
  })
})

describe('atomic writes on a full disk', function () {
  let mnt: string | undefined
  before(async function () {
    const result = await mountTinyTmpfs('1m')
    if ('skipReason' in result) {
      this.test?.parent?.tests.forEach((t) => { t.title += ` (skipped: ${result.skipReason})` })
      this.skip()
    }
    mnt = result.path
  })
  after(async () => { if (mnt !== undefined) await unmountTmpfs(mnt) })

  it('writeFileAtomic raises ERR_NO_SPACE, removes its temp file and keeps the old file', async () => {
    const path = join(mnt as string, 'f')
    await writeFileAtomic(path, seededBytes(1, 300_000))
    await rejectsWithCode(writeFileAtomic(path, seededBytes(2, 900_000)), 'ERR_NO_SPACE')
    assert.deepEqual(await names(mnt as string), ['f'])
    assert.deepEqual(new Uint8Array(await readFile(path)), seededBytes(1, 300_000))
    await rm(path)
  })

  it('AtomicFile.writev raises ERR_NO_SPACE and removes its temp file, leaving nothing to commit', async () => {
    const path = join(mnt as string, 'h')
    const file = await AtomicFile.create(path)
    await rejectsWithCode(file.writev([seededBytes(1, 600_000), seededBytes(2, 600_000)]), 'ERR_NO_SPACE')
    assert.deepEqual(await names(mnt as string), [])
    await assert.rejects(file.commit())
  })

  it('AtomicFile.write raises ERR_NO_SPACE and removes its temp file, leaving nothing to commit', async () => {
    const path = join(mnt as string, 'g')
    const file = await AtomicFile.create(path)
    await file.write(seededBytes(1, 600_000))
    await rejectsWithCode(file.write(seededBytes(2, 600_000)), 'ERR_NO_SPACE')
    assert.deepEqual(await names(mnt as string), [])
    await assert.rejects(file.commit())
    await file.abort()
  })
})
