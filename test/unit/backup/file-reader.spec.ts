/**
 * A file the walk listed as regular and that is swapped for a FIFO before it is opened must not block
 * the process (a daemon's whole event loop, its control socket with it): it is reported unreadable
 * and skipped. Run in a child over dist/ (build first) with a deadline, since a blocked open would
 * also block mocha's own timers.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const DIST_READER = fileURLToPath(new URL('../../../dist/backup/file-reader.js', import.meta.url))

describe('backup: reading one file', function () {
  this.timeout(30_000)

  it('a path that is a FIFO when it is opened is reported unreadable at once, not waited on', function () {
    if (process.platform === 'win32') this.skip()
    const dir = mkdtempSync(join(tmpdir(), 'p2pbak-fifo-'))
    try {
      const fifo = join(dir, 'was-a-file')
      assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo')
      const script = `
        const { readFileChunks } = await import(${JSON.stringify(DIST_READER)})
        try {
          await readFileChunks(Buffer.from(${JSON.stringify(fifo)}), null, null, new Uint8Array(16))
          process.stdout.write('read')
        } catch (err) {
          process.stdout.write(err.code + ': ' + err.message)
        }`
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 15_000 })
      assert.equal(r.signal, null, 'the open blocked until the deadline (the FIFO had no writer)')
      assert.match(r.stdout, /^ERR_SOURCE_UNREADABLE: it was replaced by something other than a regular file/, r.stdout + r.stderr)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('a file whose stat says 0 bytes (/proc) is read to its end, not to its size at open', function () {
    if (process.platform !== 'linux') this.skip()
    const cdcModule = JSON.stringify(fileURLToPath(new URL('../../../dist/chunking/index.js', import.meta.url)))
    const script = `
      const { readFileChunks } = await import(${JSON.stringify(DIST_READER)})
      const { FastCdc } = await import(${cdcModule})
      const chunks = []
      const repo = { saveChunk: async (d) => { chunks.push(Buffer.from(d)); return { id: new Uint8Array(32) } } }
      const cdc = new FastCdc(new Uint32Array(256).map((_, i) => i * 2654435761))
      const r = await readFileChunks(Buffer.from('/proc/version'), repo, cdc, new Uint8Array(2 * cdc.params.maxSize))
      process.stdout.write(JSON.stringify({ size: Number(r.before.size), bytesRead: r.bytesRead, text: Buffer.concat(chunks).toString() }))`
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 15_000 })
    assert.equal(r.status, 0, r.stderr)
    const out = JSON.parse(r.stdout) as { size: number, bytesRead: number, text: string }
    assert.equal(out.size, 0, '/proc/version should say 0 bytes')
    assert.equal(out.text, readFileSync('/proc/version', 'utf8'))
    assert.equal(out.bytesRead, Buffer.byteLength(out.text))
  })
})
