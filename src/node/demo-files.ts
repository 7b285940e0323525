/**
 * The demo's files (demo.ts): the sample folder it backs up, the byte-exact comparison of the restore
 * with it, and the sizes of what each home holds.
 */
import { createHash, randomBytes } from 'node:crypto'
import { lstat, lutimes, chmod, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { errnoCode, errorMessage } from '../errors.js'

// ---- the sample folder ---------------------------------------------------------------------------

/** Text, a random photo, an empty file, a script (0755), a private file (0600), nested dirs, a symlink; fixed µs mtimes. */
export async function writeSample (root: string, photoBytes: number): Promise<void> {
  const text = (lines: string[], times: number): string => Array.from({ length: times }, (_, i) => lines.map(l => `${i + 1}. ${l}`).join('\n')).join('\n') + '\n'
  const files: Array<[string, string | Uint8Array, number]> = [
    ['README.txt', 'Holiday photos and notes, backed up to friends.\n', 0o644],
    ['notes/2024-06-01.txt', text(['met bob at the station', 'cid brings the tent'], 200), 0o644],
    ['notes/todo.md', '# todo\n- [ ] print photos\n- [x] back up to friends\n', 0o644],
    ['notes/private/diary.txt', text(['dear diary'], 50), 0o600],
    ['photos/beach.raw', randomBytes(photoBytes), 0o644],
    ['photos/sunset.raw', randomBytes(Math.floor(photoBytes / 16)), 0o644],
    ['code/main.c', '#include <stdio.h>\nint main (void) { puts("hello"); return 0; }\n', 0o644],
    ['code/build.sh', '#!/bin/sh\ncc -o hello main.c\n', 0o755],
    ['code/deep/nested/config.json', JSON.stringify({ nested: true, levels: 3 }) + '\n', 0o644],
    ['empty.txt', '', 0o644]
  ]
  const base = Date.UTC(2024, 5, 1, 12) / 1000
  const time = (i: number): number => base + i * 3600 + 0.123456 // whole µs: exact even without the native addon
  for (const [rel, data] of files) {
    await mkdir(join(root, rel, '..'), { recursive: true })
    await writeFile(join(root, rel), data)
  }
  await symlink('photos/beach.raw', join(root, 'latest-photo'))
  for (const [i, [rel, , mode]] of files.entries()) { await chmod(join(root, rel), mode); await lutimes(join(root, rel), time(i), time(i)) }
  await lutimes(join(root, 'latest-photo'), time(20), time(20))
  const dirs = ['code/deep/nested', 'code/deep', 'code', 'notes/private', 'notes', 'photos', ''] // children first
  for (const [i, rel] of dirs.entries()) await lutimes(join(root, rel), time(30 + i), time(30 + i))
}

// ---- verification --------------------------------------------------------------------------------

interface Entry { type: string, mode: number, mtimeNs: bigint, hash?: string, target?: string }

async function scan (root: string): Promise<Map<string, Entry>> {
  const out = new Map<string, Entry>()
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const p = join(dir, name)
      const r = rel === '' ? name : `${rel}/${name}`
      const st = await lstat(p, { bigint: true })
      const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other'
      const e: Entry = { type, mode: Number(st.mode & 0o7777n), mtimeNs: st.mtimeNs }
      if (type === 'file') e.hash = createHash('sha256').update(await readFile(p)).digest('hex')
      if (type === 'symlink') e.target = await readlink(p)
      out.set(r, e)
      if (type === 'dir') await walk(p, r)
    }
  }
  const top = await lstat(root, { bigint: true })
  out.set('.', { type: 'dir', mode: Number(top.mode & 0o7777n), mtimeNs: top.mtimeNs })
  await walk(root, '')
  return out
}

/** Differences between two trees: entries, types, sha256 of contents, modes, mtimes (to `resNs`), link targets. */
export async function compareTrees (expected: string, actual: string, resNs = 1n): Promise<{ entries: number, files: number, differences: string[] }> {
  const a = await scan(expected)
  let b: Map<string, Entry>
  try { b = await scan(actual) } catch (err: unknown) { return { entries: a.size, files: 0, differences: [`cannot read ${actual}: ${errorMessage(err)}`] } }
  const diffs: string[] = []
  for (const [p, ea] of a) {
    const eb = b.get(p)
    if (eb === undefined) { diffs.push(`missing: ${p}`); continue }
    if (ea.type !== eb.type) { diffs.push(`type: ${p} ${ea.type} != ${eb.type}`); continue }
    if (ea.hash !== eb.hash) diffs.push(`content: ${p}`)
    if (ea.target !== eb.target) diffs.push(`link target: ${p}`)
    if (ea.type !== 'symlink' && ea.mode !== eb.mode) diffs.push(`mode: ${p} ${ea.mode.toString(8)} != ${eb.mode.toString(8)}`)
    if (ea.mtimeNs / resNs !== eb.mtimeNs / resNs) diffs.push(`mtime: ${p}`)
  }
  for (const p of b.keys()) if (!a.has(p)) diffs.push(`extra: ${p}`)
  return { entries: a.size, files: [...a.values()].filter(e => e.type === 'file').length, differences: diffs }
}

// ---- small helpers -------------------------------------------------------------------------------

export async function filesUnder (dir: string): Promise<number[]> {
  let entries
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch (err: unknown) {
    if (errnoCode(err) === 'ENOENT') return [] // a home that holds nothing of ann's yet
    throw err
  }
  const out: number[] = []
  for (const e of entries) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...await filesUnder(p))
    else if (e.isFile() && !e.name.startsWith('.tmp-')) out.push(Number((await lstat(p)).size))
  }
  return out
}

export async function bytesUnder (dir: string): Promise<number> {
  return (await filesUnder(dir)).reduce((a, n) => a + n, 0)
}
