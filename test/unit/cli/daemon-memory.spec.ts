/**
 * The daemon's memory settings (src/cli/daemon-memory.ts, docs/benchmarks.md "Where a persister's
 * memory goes"): V8's young generation stays small, and on glibc the addon's allocator calls work.
 * The young generation is checked in a child process over dist/ (build first): a V8 flag set here
 * would change mocha's own process for every later test.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { nativeAvailable, nativeMemory } from '../../../src/backup/fsx.js'

const DIST_MODULE = fileURLToPath(new URL('../../../dist/cli/daemon-memory.js', import.meta.url))

/** new_space's capacity (bytes) after a burst of allocation that survives scavenges, in a fresh node. */
function youngGenerationAfterBurst (limit: boolean): number {
  const script = `
    import v8 from 'node:v8'
    const { limitYoungGeneration } = await import(${JSON.stringify(DIST_MODULE)})
    if (${String(limit)}) limitYoungGeneration()
    const keep = []
    for (let i = 0; i < 2e6; i++) { keep.push({ a: i, b: 'x' + i }); if (keep.length > 2e5) keep.splice(0, 1e5) }
    const ns = v8.getHeapSpaceStatistics().find(s => s.space_name === 'new_space')
    process.stdout.write(String(ns.space_size))`
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  return Number(r.stdout)
}

describe('daemon memory', function () {
  this.timeout(60_000)

  it('keeps V8\'s young generation at its start size (without it, it grows)', () => {
    const MiB = 1024 * 1024
    assert.ok(youngGenerationAfterBurst(true) <= 4 * MiB, 'limited: at most 2 MiB per semi-space')
    assert.ok(youngGenerationAfterBurst(false) > 4 * MiB, 'the control: V8 grows it when nothing limits it')
  })

  it('has the allocator calls when the addon is built, on glibc', function () {
    const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime
    if (!nativeAvailable || glibc === undefined) this.skip()
    assert.ok(nativeMemory !== undefined, 'an addon built from native/ has mallocTune and mallocTrim (rebuild it: npx node-gyp rebuild)')
    assert.equal(nativeMemory.mallocTune(128 * 1024), true)
    assert.equal(typeof nativeMemory.mallocTrim(), 'boolean')
  })
})
