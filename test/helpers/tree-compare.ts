/**
 * Compares two directory trees the way a user checking a restore would: same entries, types,
 * bytes, permission bits (incl. setuid/setgid/sticky), mtimes to the nanosecond (or to the µs when
 * the native addon is missing), symlink targets, and the same hardlink groups.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { createHash } from 'node:crypto'

export interface CompareOptions {
  /** compare mtimes only to this many ns (1 = exact) @default 1 */
  mtimeResolutionNs?: bigint
  /** compare owners @default false */
  owners?: boolean
  /** relative paths (as latin1 strings) to ignore, with everything below them */
  ignore?: string[]
}

interface Entry { type: string, mode: number, size: bigint, mtimeNs: bigint, uid: number, gid: number, hash?: string, target?: string, inode: string, nlink: bigint }

function join (a: Buffer, b: Buffer): Buffer { return Buffer.concat([a, Buffer.from('/'), b]) }

function scan (root: Buffer): Map<string, Entry> {
  const out = new Map<string, Entry>()
  const walk = (dir: Buffer, rel: string): void => {
    for (const name of readdirSync(dir, { encoding: 'buffer' }).sort(Buffer.compare)) {
      const p = join(dir, name)
      const r = rel === '' ? name.toString('latin1') : `${rel}/${name.toString('latin1')}`
      const st = lstatSync(p, { bigint: true })
      const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : 'other'
      const e: Entry = { type, mode: Number(st.mode & 0o7777n), size: type === 'file' ? st.size : 0n, mtimeNs: st.mtimeNs, uid: Number(st.uid), gid: Number(st.gid), inode: `${st.dev}:${st.ino}`, nlink: st.nlink }
      if (type === 'file') e.hash = createHash('sha256').update(readFileSync(p)).digest('hex')
      if (type === 'symlink') e.target = readlinkSync(p, { encoding: 'buffer' }).toString('latin1')
      out.set(r, e)
      if (type === 'dir') walk(p, r)
    }
  }
  walk(root, '')
  return out
}

/** Returns a list of human-readable differences (empty when the trees match). */
export function compareTrees (expected: string | Buffer, actual: string | Buffer, opts: CompareOptions = {}): string[] {
  const res = opts.mtimeResolutionNs ?? 1n
  const a = scan(Buffer.from(expected))
  const b = scan(Buffer.from(actual))
  const diffs: string[] = []
  const ignored = (p: string): boolean => (opts.ignore ?? []).some(i => p === i || p.startsWith(i + '/'))
  for (const [p, ea] of a) {
    if (ignored(p)) continue
    const eb = b.get(p)
    if (eb === undefined) { diffs.push(`missing: ${p}`); continue }
    if (ea.type !== eb.type) { diffs.push(`type: ${p} ${ea.type} != ${eb.type}`); continue }
    if (ea.type !== 'symlink' && ea.mode !== eb.mode) diffs.push(`mode: ${p} ${ea.mode.toString(8)} != ${eb.mode.toString(8)}`)
    if (ea.hash !== eb.hash) diffs.push(`content: ${p}`)
    if (ea.target !== eb.target) diffs.push(`link target: ${p} ${String(ea.target)} != ${String(eb.target)}`)
    if (ea.mtimeNs / res !== eb.mtimeNs / res) diffs.push(`mtime: ${p} ${ea.mtimeNs} != ${eb.mtimeNs}`)
    if (opts.owners === true && (ea.uid !== eb.uid || ea.gid !== eb.gid)) diffs.push(`owner: ${p} ${ea.uid}:${ea.gid} != ${eb.uid}:${eb.gid}`)
  }
  for (const p of b.keys()) if (!a.has(p) && !ignored(p)) diffs.push(`extra: ${p}`)
  // hardlink groups: paths sharing an inode in one tree share one in the other
  const groups = (m: Map<string, Entry>): string[] => {
    const byInode = new Map<string, string[]>()
    for (const [p, e] of m) if (e.type === 'file' && e.nlink > 1n) byInode.set(e.inode, [...(byInode.get(e.inode) ?? []), p])
    return [...byInode.values()].filter(g => g.length > 1).map(g => g.sort().join(' = ')).sort()
  }
  const ga = groups(a)
  const gb = groups(b)
  if (ga.join('\n') !== gb.join('\n')) diffs.push(`hardlink groups differ:\n  expected ${ga.join('; ')}\n  actual   ${gb.join('; ')}`)
  return diffs
}
