/**
 * The benchmark corpus at a small scale, as the product owner checks it: back up v1 and v2 (edits,
 * insertions, appends, deletions, a renamed directory), restore both byte-exact with types, modes,
 * owners, ns mtimes, symlink targets and hardlink groups, and check that v2 costs little after v1.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cliFor } from '../helpers/cli.js'
import { compareTrees } from '../helpers/tree-compare.js'
import { nativeAvailable } from '../../src/backup/fsx.js'

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)))
const SHARED = process.env.P2PBAK_SHARED ?? join(ROOT, '..', 'shared')
const MAKE_CORPUS = join(SHARED, 'bench', 'make-corpus.sh')

interface BackupJson { bytesAdded: number, bytesProcessed: number, bytesRead: number, filesNew: number, filesUnchanged: number, errors: unknown[] }

describe('e2e: the benchmark corpus (scale 0.03)', function () {
  this.timeout(180_000)
  let dir: string
  let cli: ReturnType<typeof cliFor>
  const mtimeResolutionNs = nativeAvailable ? 1n : 1000n
  const isRoot = process.getuid?.() === 0

  before(function () {
    if (!existsSync(MAKE_CORPUS)) this.skip() // shared/ is beside every checkout here and in CI; absent elsewhere
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-corpus-'))
    const r = spawnSync('bash', [MAKE_CORPUS, join(dir, 'c'), '11', '0.03'], { env: { ...process.env, NO_MANIFEST: '1' }, encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    cli = cliFor(join(dir, 'home'))
  })
  after(() => { if (dir !== undefined) rmSync(dir, { recursive: true, force: true }) })

  it('v1: backup and byte-exact restore with metadata and hardlinks', async () => {
    assert.equal((await cli('init')).code, 0)
    const b = await cli('backup', join(dir, 'c', 'v1'), '--json')
    assert.equal(b.code, 0, b.stderr)
    const s = b.json<BackupJson>()
    assert.deepEqual(s.errors, [])
    // compressed and deduplicated: well under the 39.7 MB of input (restic stores 17.9 MB here)
    assert.ok(s.bytesAdded < 22e6, `v1 added ${s.bytesAdded}`)
    const target = join(dir, 'r1')
    const r = await cli('restore', 'latest', '--target', target)
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(compareTrees(join(dir, 'c', 'v1'), join(target, dir, 'c', 'v1'), { mtimeResolutionNs, owners: isRoot }), [])
  })

  it('v2 after v1 adds little (dedup across edits, moves and the renamed directory) and restores exactly', async () => {
    const b = await cli('backup', join(dir, 'c', 'v2'), '--json')
    assert.equal(b.code, 0, b.stderr)
    const s = b.json<BackupJson>()
    // measured 3.3 to 6.4 MB from run to run here (restic: 3.7 MB; at scale 1 the ratio is 1.08): the
    // plaintext added varies as much (3.8 to 5.4 MB), so the corpus's v2 edits are not the same every
    // run. Without dedup across edits, moves and the renamed directory v2 would add about half of its
    // ~40 MB again; the bound is a fifth of what v2 holds
    assert.ok(s.bytesAdded < 0.2 * s.bytesProcessed, `v2 added ${s.bytesAdded} of ${s.bytesProcessed}`)
    const target = join(dir, 'r2')
    assert.equal((await cli('restore', 'latest', '--target', target)).code, 0)
    assert.deepEqual(compareTrees(join(dir, 'c', 'v2'), join(target, dir, 'c', 'v2'), { mtimeResolutionNs, owners: isRoot }), [])
  })

  it('a no-change backup of v2 reads no file content', async () => {
    const b = await cli('backup', join(dir, 'c', 'v2'), '--json')
    assert.equal(b.code, 0, b.stderr)
    const s = b.json<BackupJson>()
    assert.equal(s.bytesRead, 0)
    assert.equal(s.filesNew, 0)
  })
})
