/**
 * The memory settings of the daemon and of a command that moves pack data (src/cli/process-memory.ts, docs/benchmarks.md "Where a persister's
 * memory goes"): V8's young generation stays small, and on glibc the addon's allocator calls work.
 * The young generation is checked in a child process over dist/ (build first): a V8 flag set here
 * would change mocha's own process for every later test.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { TEST_ENV } from '../../helpers/cli.js'
import { nativeAvailable, nativeMemory } from '../../../src/backup/fsx.js'

const DIST_MODULE = fileURLToPath(new URL('../../../dist/cli/process-memory.js', import.meta.url))
const BIN = fileURLToPath(new URL('../../../bin/p2pbak.js', import.meta.url))
const HEAP_AT_EXIT = fileURLToPath(new URL('../../fixtures/heap-at-exit.cjs', import.meta.url))
const MiB = 1024 * 1024

/** Runs the real CLI (dist/) in a child; returns its new_space capacity (bytes) at exit. */
function cliYoungGeneration (home: string, argv: string[]): number {
  const out = join(home, `heap-${Date.now()}.json`)
  const env = { ...process.env, ...TEST_ENV, P2PBAK_HOME: join(home, 'home'), P2PBAK_PASSPHRASE: 'not secret', HEAP_AT_EXIT: out }
  const r = spawnSync(process.execPath, ['--require', HEAP_AT_EXIT, BIN, ...argv], { encoding: 'utf8', env })
  assert.equal(r.status, 0, `${argv.join(' ')}: ${r.stderr}`)
  return (JSON.parse(readFileSync(out, 'utf8')) as { newSpace: number }).newSpace
}

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

describe('process memory', function () {
  this.timeout(60_000)

  it('keeps V8\'s young generation at its start size (without it, it grows)', () => {
    assert.ok(youngGenerationAfterBurst(true) <= 4 * MiB, 'limited: at most 2 MiB per semi-space')
    assert.ok(youngGenerationAfterBurst(false) > 4 * MiB, 'the control: V8 grows it when nothing limits it')
  })

  it('a backup and a restore run by the CLI keep the young generation small too', () => {
    const dir = mkdtempSync(join(tmpdir(), 'p2pbak-memory-'))
    try {
      // many small files: a walk whose objects survive scavenges (without the setting V8 grows new space)
      const src = join(dir, 'src')
      for (let d = 0; d < 30; d++) {
        mkdirSync(join(src, `d${d}`), { recursive: true })
        for (let f = 0; f < 100; f++) writeFileSync(join(src, `d${d}`, `file-${f}.txt`), `file ${d}/${f} `.repeat(50 + f))
      }
      cliYoungGeneration(dir, ['init'])
      assert.ok(cliYoungGeneration(dir, ['backup', src]) <= 4 * MiB, 'backup: at most 2 MiB per semi-space')
      mkdirSync(join(dir, 'out'))
      assert.ok(cliYoungGeneration(dir, ['restore', 'latest', '--target', join(dir, 'out')]) <= 4 * MiB, 'restore: at most 2 MiB per semi-space')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('has the allocator calls when the addon is built, on glibc', function () {
    const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime
    if (!nativeAvailable || glibc === undefined) this.skip()
    assert.ok(nativeMemory !== undefined, 'an addon built from native/ has mallocTune and mallocTrim (rebuild it: npx node-gyp rebuild)')
    assert.equal(nativeMemory.mallocTune(128 * 1024), true)
    assert.equal(typeof nativeMemory.mallocTrim(), 'boolean')
  })
})
