/** `snapshots`, `ls`, `find`, `diff`: reading what was backed up. */
import type { Command } from 'commander'
import type { Snapshot } from '../../repo/index.js'
import type { Home } from '../../node/home.js'
import { formatId, shortId } from '../../ids.js'
import { formatBytes, formatTimeNs, lineWriter, print, printErr, printJson } from '../io.js'
import { preloaded, type CommandContext } from '../context.js'

async function withHome<T> (c: CommandContext, fn: (home: Home, snaps: Snapshot[]) => Promise<T>, preload?: () => Promise<unknown>): Promise<T> {
  const home = await c.openHome(preload)
  try {
    home.requireFullKey('list or read snapshots (their records are sealed to your full key)')
    const { snapshots, damaged } = (await home.syncIndex()).head
    for (const d of damaged) printErr(c.io, `warning: snapshot record ${d.id.slice(0, 8)} is damaged and was skipped`)
    return await fn(home, snapshots)
  } finally {
    await home.close()
  }
}

function modeString (type: string, mode: number): string {
  const t = ({ dir: 'd', symlink: 'l', fifo: 'p', socket: 's', chardev: 'c', blockdev: 'b' } as Record<string, string>)[type] ?? '-'
  const rwx = (m: number, s: boolean, ch: string): string => `${(m & 4) !== 0 ? 'r' : '-'}${(m & 2) !== 0 ? 'w' : '-'}${s ? ((m & 1) !== 0 ? ch : ch.toUpperCase()) : ((m & 1) !== 0 ? 'x' : '-')}`
  return t + rwx(mode >> 6, (mode & 0o4000) !== 0, 's') + rwx(mode >> 3, (mode & 0o2000) !== 0, 's') + rwx(mode, (mode & 0o1000) !== 0, 't')
}

export function registerInspect (program: Command, ctx: () => CommandContext): void {
  program.command('snapshots')
    .description('list snapshots, oldest first')
    .action(async () => {
      const c = ctx()
      await withHome(c, async (_home, snaps) => {
        if (c.json) {
          printJson(c.io, snaps.map(s => ({
            id: formatId(s.id), shortId: shortId(s.id), time: new Date(Number(s.record.time / 1_000_000n)).toISOString(),
            host: s.record.host, user: s.record.user, paths: s.record.paths, tags: s.record.tags, tree: formatId(s.record.tree), summary: s.record.summary
          })))
          return
        }
        if (snaps.length === 0) { print(c.io, 'no snapshots yet'); return }
        const out = lineWriter(c.io)
        out.line('ID        Time                 Host            Tags        Paths')
        for (const s of snaps) {
          out.line(`${shortId(s.id)}  ${formatTimeNs(s.record.time)}  ${s.record.host.padEnd(14).slice(0, 14)}  ${s.record.tags.join(',').padEnd(10).slice(0, 10)}  ${s.record.paths.join(' ')}`)
        }
        out.line(`${snaps.length} snapshot(s)`)
        out.end()
      })
    })

  program.command('ls')
    .description('list the files of a snapshot (recursively), optionally below PATH')
    .argument('<snapshot>', 'snapshot id (or unique prefix) or "latest"')
    .argument('[path]', 'absolute path inside the snapshot', '/')
    .action(async (ref: string, path: string) => {
      const c = ctx()
      const modules = preloaded(async () => await Promise.all([import('../../backup/browse.js'), import('../../repo/index.js')]))
      await withHome(c, async (home, snaps) => {
        const [{ walkTree }, { resolveSnapshot }] = await modules()
        const snap = resolveSnapshot(snaps, ref)
        const rows: unknown[] = []
        const out = lineWriter(c.io)
        try {
          for await (const { path: p, node } of walkTree(home.repo, snap.record.tree, path)) {
            if (c.json) {
              rows.push({ path: p, type: node.type, mode: node.mode, size: node.size, uid: node.uid, gid: node.gid, mtime: new Date(Number(node.mtimeNs / 1_000_000n)).toISOString(), ...(node.linkTarget !== undefined ? { linkTarget: Buffer.from(node.linkTarget).toString() } : {}) })
            } else {
              const target = node.linkTarget !== undefined ? ` -> ${Buffer.from(node.linkTarget).toString()}` : ''
              out.line(`${modeString(node.type, node.mode)} ${String(node.uid).padStart(5)} ${String(node.gid).padStart(5)} ${formatBytes(node.size).padStart(10)} ${formatTimeNs(node.mtimeNs)} ${p}${target}`)
            }
          }
        } finally {
          out.end() // what was listed before a failure is shown with it
        }
        if (c.json) printJson(c.io, rows)
      }, modules)
    })

  program.command('find')
    .description('fuzzy search of file names across all snapshots, best match first')
    .argument('<pattern>', 'part of a name or path; typos are tolerated')
    .option('--limit <n>', 'at most this many results', '50')
    .action(async (pattern: string, opts: { limit: string }) => {
      const c = ctx()
      const modules = preloaded(async () => await import('../../backup/browse.js'))
      await withHome(c, async (home, snaps) => {
        const { findPaths } = await modules()
        const hits = await findPaths(home.repo, snaps, pattern, Number(opts.limit))
        if (c.json) { printJson(c.io, hits); return }
        if (hits.length === 0) { print(c.io, `nothing matches "${pattern}"`); return }
        const out = lineWriter(c.io)
        for (const h of hits) out.line(`${h.snapshotId.slice(0, 8)}  ${h.path}${h.snapshots.length > 1 ? `  (in ${h.snapshots.length} snapshots)` : ''}`)
        out.end()
      }, modules)
    })

  program.command('diff')
    .description('show what changed between two snapshots (+ added, - removed, M modified, T type changed, U metadata only)')
    .argument('<a>', 'first snapshot')
    .argument('<b>', 'second snapshot')
    .action(async (a: string, b: string) => {
      const c = ctx()
      const modules = preloaded(async () => await Promise.all([import('../../backup/browse.js'), import('../../repo/index.js')]))
      await withHome(c, async (home, snaps) => {
        const [{ diffTrees }, { resolveSnapshot }] = await modules()
        const sa = resolveSnapshot(snaps, a)
        const sb = resolveSnapshot(snaps, b)
        const rows = []
        const counts = { '+': 0, '-': 0, M: 0, T: 0, U: 0 }
        const out = lineWriter(c.io)
        try {
          for await (const d of diffTrees(home.repo, sa.record.tree, sb.record.tree)) {
            counts[d.kind]++
            if (c.json) rows.push(d)
            else out.line(`${d.kind}  ${d.path}`)
          }
        } finally {
          out.end()
        }
        if (c.json) printJson(c.io, { a: formatId(sa.id), b: formatId(sb.id), changes: rows, counts })
        else print(c.io, `\nadded ${counts['+']}, removed ${counts['-']}, modified ${counts.M}, type changed ${counts.T}, metadata ${counts.U}`)
      }, modules)
    })
}
