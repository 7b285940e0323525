/**
 * A V8 flag set while the process runs still holds after a worker thread started (util/v8-flags.ts):
 * Node 20 puts the flags back as they were at start-up while a worker starts, and a backup's young
 * generation then grew to 32 MiB. Runs over dist/ (build first) in a child, whose young generation has
 * not been grown by earlier tests.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const DIST = pathToFileURL(fileURLToPath(new URL('../../../dist/', import.meta.url))).href

/** The child: sets the flag (or not), starts a compression worker, then allocates what survives a few scavenges; prints its young generation's size in MiB. */
function youngGenerationAfterWorker (setFlag: boolean): number {
  const script = `
    import v8 from 'node:v8'
    import { setV8Flag } from '${DIST}util/v8-flags.js'
    import { CompressPool } from '${DIST}repo/compress-pool.js'
    if (${String(setFlag)}) setV8Flag('--semi-space-growth-factor=1')
    const pool = new CompressPool(1, 3)
    const c = await pool.compress(new Uint8Array(1 << 20).fill(7))
    c.release?.()
    const keep = []
    for (let r = 0; r < 300; r++) { const a = []; for (let i = 0; i < 20000; i++) a.push({ i, s: 'x' + i }); keep.push(a); if (keep.length > 5) keep.shift() }
    await pool.close()
    const s = v8.getHeapSpaceStatistics().find(x => x.space_name === 'new_space')
    process.stdout.write(String(s.space_size / 1048576))
  `
  const dir = mkdtempSync(join(tmpdir(), 'p2pbak-v8flags-'))
  try {
    const file = join(dir, 'child.mjs')
    writeFileSync(file, script)
    const env = { ...process.env }
    delete env.NODE_OPTIONS // the test runner's loader is not needed over dist/
    // V8 sizes the largest semi-space from the machine's memory: 16 MiB makes the control grow on any host
    return Number(execFileSync(process.execPath, ['--max-semi-space-size=16', file], { encoding: 'utf8', env }))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

describe('util/v8-flags: a flag set at run time survives a worker\'s start', function () {
  this.timeout(60_000)

  it('the young generation stays small after the compression worker started', () => {
    const without = youngGenerationAfterWorker(false)
    const withFlag = youngGenerationAfterWorker(true)
    assert.ok(without >= 16, `without the flag it grows (the allocation is enough to show it): ${without} MiB`)
    assert.ok(withFlag <= 4, `with the flag it stays at most 4 MiB: ${withFlag} MiB`)
  })
})
