#!/usr/bin/env node
// The main job end to end on the embedded default, in a scratch home: init, back up a folder (this
// project's src/ unless one is given), change a file, back up again, restore the latest snapshot,
// and compare the restored tree with the original byte for byte. Exits non-zero on any difference.
import { spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, rmSync, appendFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const bin = join(root, 'bin', 'p2pbak.js')
const work = mkdtempSync(join(tmpdir(), 'p2pbak-demo-'))
const src = join(work, 'data')
cpSync(resolve(process.argv[2] ?? join(root, 'src')), src, { recursive: true, verbatimSymlinks: true })
const env = { ...process.env, P2PBAK_HOME: join(work, 'home'), P2PBAK_PASSPHRASE: 'demo passphrase' }

function p2pbak (...args) {
  console.log(`\n$ p2pbak ${args.join(' ')}`)
  const r = spawnSync(process.execPath, [bin, ...args], { env, stdio: 'inherit' })
  if (r.status !== 0) { console.error(`p2pbak ${args[0]} exited with ${r.status}`); process.exit(1) }
}

try {
  p2pbak('init')
  p2pbak('backup', src, '--tag', 'demo')
  appendFileSync(join(src, 'index.ts'), '\n// edited after the first backup\n')
  p2pbak('backup', src, '--tag', 'demo')
  p2pbak('snapshots')
  p2pbak('find', 'archivr')
  p2pbak('check', '--read-data')
  const target = join(work, 'restored')
  p2pbak('restore', 'latest', '--target', target)
  const diff = spawnSync('diff', ['-r', '--no-dereference', src, join(target, src)], { stdio: 'inherit' })
  if (diff.status !== 0) { console.error('\nFAIL: the restored tree differs'); process.exit(1) }
  console.log('\nOK: the restored tree is byte-identical to the original')
} finally {
  rmSync(work, { recursive: true, force: true })
}
