import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { LocalShareStore } from '../../../src/store/index.js'
import { equalBytes } from '../../../src/util/bytes.js'
import { refKey } from '../../compliance/share-store.js'
import { crashData, crashRecord, crashRecordId, crashRef, headerIndex } from '../../fixtures/store-writer-data.js'

const REPO = fileURLToPath(new URL('../../../', import.meta.url))
const WRITER = join(REPO, 'test', 'fixtures', 'store-writer.ts')

/** Starts the writer, waits until it reports `target` completed puts, kills it with SIGKILL. */
async function runAndKill (dir: string, start: number, target: number): Promise<number[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dir, String(start)], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
  const closed = once(child, 'close')
  const done: number[] = []
  // Lines still in the pipe after the kill were printed after their puts resolved: they count.
  for await (const line of createInterface({ input: child.stdout })) {
    done.push(Number(line))
    if (done.length === target) child.kill('SIGKILL')
  }
  const [code, signal] = await closed as [number | null, string | null]
  assert.equal(signal, 'SIGKILL', `writer exited by itself (code ${String(code)}) after ${done.length} puts: ${stderr}`)
  return done
}

async function tempNames (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true })
  return entries.filter((p) => p.split('/').some((part) => part.startsWith('.tmp-')))
}

describe('LocalShareStore crash safety', function () {
  this.timeout(30_000)
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'p2pbak-crash-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('after kill -9 mid-write, every listed share and record is whole and no temp file survives reopen', async () => {
    const committed = new Set<number>()
    for (let round = 0; round < 4; round++) {
      const target = 2 + Math.floor(Math.random() * 12)
      const context = `round ${round}, killed after ${target} reported puts`
      for (const i of await runAndKill(dir, round * 1_000_000, target)) committed.add(i)
      const leftovers = await tempNames(dir) // often non-empty: three writers were mid-put

      const store = await LocalShareStore.open(dir)
      assert.deepEqual(await tempNames(dir), [], `${context}: temp files survived reopen (before: ${leftovers.join(', ')})`)
      const seen = new Set<number>()
      for await (const ref of store.list()) {
        const data = await store.get(ref)
        assert.ok(data.byteLength >= 4, `${context}: share ${refKey(ref)} is truncated to ${data.byteLength} bytes`)
        const i = headerIndex(data)
        assert.equal(refKey(ref), refKey(crashRef(i)), `${context}: share ${refKey(ref)} holds the bytes of share ${i}`)
        assert.ok(equalBytes(data, crashData(i)), `${context}: share ${i} is incomplete or altered (${data.byteLength} bytes)`)
        seen.add(i)
      }
      const seenRecords = new Set<number>()
      for await (const id of store.listRecords()) {
        const data = await store.getRecord(id)
        const i = headerIndex(data)
        assert.ok(equalBytes(id, crashRecordId(i)) && equalBytes(data, crashRecord(i)), `${context}: record ${i} is incomplete or altered`)
        seenRecords.add(i)
      }
      for (const i of committed) {
        assert.ok(seen.has(i), `${context}: share ${i} was reported stored but is missing`)
        assert.ok(seenRecords.has(i), `${context}: record ${i} was reported stored but is missing`)
      }
      await store.close()
    }
  })
})
