/** `check [--read-data | --read-data-subset N%]`: verify structure, or re-read and authenticate all data. */
import type { Command } from 'commander'
import { InvalidArgumentError } from '../../errors.js'
import { ExitCode } from '../exit-codes.js'
import { print, printJson } from '../io.js'
import type { CommandContext } from '../context.js'

export function registerCheck (program: Command, ctx: () => CommandContext, setExit: (code: number) => void): void {
  program.command('check')
    .description('verify the repository structure; with --read-data also re-read and authenticate every blob')
    .option('--read-data', 're-read all packs and authenticate every blob')
    .option('--read-data-subset <percent>', 're-read this percentage of packs, e.g. 10%')
    .action(async (opts: { readData?: boolean, readDataSubset?: string }) => {
      const c = ctx()
      let subset: number | undefined
      if (opts.readDataSubset !== undefined) {
        subset = Number(opts.readDataSubset.replace(/%$/, ''))
        if (!(subset > 0 && subset <= 100)) throw new InvalidArgumentError('--read-data-subset takes a percentage between 0 and 100, e.g. 10%')
      }
      // the repository's modules load with the home, while its key is derived
      const home = await c.openHome()
      try {
        const { checkRepository } = await import('../../repo/index.js')
        home.requireFullKey('check backups (their records and packs are sealed to your full key)')
        const report = await checkRepository(home.repo, {
          readData: opts.readData === true || subset !== undefined,
          ...(subset !== undefined ? { readDataSubsetPercent: subset } : {}),
          now: home.now,
          ...(c.io.signal !== undefined ? { signal: c.io.signal } : {})
        })
        const ok = report.problems.length === 0
        if (c.json) {
          printJson(c.io, { ok, ...report })
        } else {
          print(c.io, `${report.snapshots} snapshots, ${report.trees} trees, ${report.packs} packs${report.packsRead > 0 ? `; read ${report.packsRead} packs, ${report.blobsRead} blobs` : ''}`)
          if (report.unindexedPacksAdded > 0) print(c.io, `indexed ${report.unindexedPacksAdded} pack(s) the index did not know`)
          for (const p of report.problems) print(c.io, `problem: ${p.message}`)
          if (report.damagedFiles.length > 0) {
            print(c.io, 'files affected:')
            for (const f of report.damagedFiles) print(c.io, `  snapshot ${f.snapshot.slice(0, 8)}: ${f.path}`)
          }
          if (report.affectedSnapshots.length > 0) print(c.io, `snapshots affected: ${report.affectedSnapshots.map(s => s.slice(0, 8)).join(', ')}`)
          print(c.io, ok ? 'no problems found' : `${report.problems.length} problem(s) found`)
        }
        if (!ok) setExit(ExitCode.ERROR)
      } finally {
        await home.close()
      }
    })
}
