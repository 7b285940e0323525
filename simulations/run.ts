/**
 * Runs the friend-group simulation for one or more erasure schemes and prints a table:
 *   npx tsx simulations/run.ts [--nodes 20] [--days 30] [--seed 1] [--schemes 1+2,2+3,4+4] ...
 * `--help` lists every option; `--json` prints the reports instead of the table.
 */
import '../src/util/polyfill.js'
import { parseArgs } from 'node:util'
import { simulate, DEFAULT_PARAMS, type SimParams, type SimReport } from './friend-group.js'
import { chooseScheme } from '../src/placement/index.js'

const HOUR = 3600_000

const USAGE = `usage: npx tsx simulations/run.ts [options]
  --nodes N            nodes in the group, one person each (${DEFAULT_PARAMS.nodes})
  --publishers N       nodes that back up (${DEFAULT_PARAMS.publishers})
  --days N             virtual days, one step an hour (${DEFAULT_PARAMS.days})
  --seed N             PRNG seed (${DEFAULT_PARAMS.seed})
  --schemes LIST       comma-separated k+m (1+2,2+3,4+4); auto = chooseScheme(nodes - 1),
                       auto-spare = chooseScheme(nodes - 2)
  --always-on F        share of always-on desktops (${DEFAULT_PARAMS.alwaysOnFraction})
  --disk-losses R      disk losses per node-year (${DEFAULT_PARAMS.diskLossesPerNodeYear})
  --deaths R           permanent deaths per node-year (${DEFAULT_PARAMS.deathsPerNodeYear})
  --corruptions R      damaged shares per node-year (${DEFAULT_PARAMS.corruptionsPerNodeYear})
  --initial-packs N    packs per publisher at hour 0 (${DEFAULT_PARAMS.initialPacks})
  --packs-per-day R    packs per publisher per day (${DEFAULT_PARAMS.packsPerDay})
  --audit-hours H      audit interval per share (24)
  --grace-hours H      offline grace before repair (72)
  --no-audit           no storage-proof challenges
  --no-repair          no repairer
  --no-reliability-filter  peers below reliability 0.4 still get shares, ranked last
  --json               print the reports as JSON`

function num (v: string | undefined, name: string, fallback: number): number {
  if (v === undefined) return fallback
  const n = Number(v)
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number >= 0, got ${v}`)
  return n
}

/** `auto`: what chooseScheme picks for the nodes − 1 other people; `auto-spare`: for nodes − 2 (one person left over for repair). */
function parseSchemes (v: string, nodes: number): Array<{ k: number, m: number }> {
  return v.split(',').map(s => {
    if (s.trim() === 'auto' || s.trim() === 'auto-spare') {
      const { k, m } = chooseScheme(Math.max(0, nodes - (s.trim() === 'auto' ? 1 : 2)))
      return { k, m }
    }
    const match = /^(\d+)\+(\d+)$/.exec(s.trim())
    if (match === null || Number(match[1]) < 1) throw new Error(`a scheme is k+m with k >= 1, got ${JSON.stringify(s)}`)
    return { k: Number(match[1]), m: Number(match[2]) }
  })
}

const MIB = 1024 * 1024
const mib = (b: number): string => (b / MIB).toFixed(1)

const ROWS: Array<[string, (r: SimReport) => string]> = [
  ['disk losses / deaths / damaged', r => `${r.events.diskLosses} / ${r.events.deaths} / ${r.events.corruptions}`],
  ['packs placed', r => String(r.packsPlaced)],
  ['packs waiting to be placed', r => String(r.packsPending)],
  ['packs lost', r => String(r.packsLost)],
  ['packs also kept on the publisher', r => String(r.ownCopies)],
  ['  lost on friends, kept by that copy', r => String(r.packsRescuedByOwnCopy)],
  ['first loss (day)', r => r.firstLossDay === null ? '-' : String(r.firstLossDay)],
  ['repairs (shares rebuilt)', r => String(r.repairs)],
  ['repair attempts failed', r => String(r.repairFailures)],
  ['repair traffic MiB', r => mib(r.repairTrafficBytes)],
  ['  uploaded / downloaded MiB', r => `${mib(r.repairUploadBytes)} / ${mib(r.repairDownloadBytes)}`],
  ['  decoded, then no target MiB', r => mib(r.repairWastedDownloadBytes)],
  ['placement upload MiB', r => mib(r.placementBytes)],
  ['audit MiB (challenges)', r => `${mib(r.auditBytes)} (${r.auditChallenges})`],
  ['audit failures', r => String(r.auditFailures)],
  ['storage overhead', r => `${r.storageOverhead.toFixed(2)}x`],
  ['health avg / min', r => `${r.healthAvg.toFixed(2)} / ${r.healthMin}`],
  ['health at end avg / min', r => `${r.finalHealthAvg.toFixed(2)} / ${r.finalHealthMin}`],
  ['readable from online holders', r => `${(100 * r.availability).toFixed(1)}%`]
]

function table (reports: SimReport[]): string {
  const head = ['', ...reports.map(r => `${r.scheme} (n=${r.scheme.split('+').map(Number).reduce((a, b) => a + b, 0)})`)]
  const rows = [head, ...ROWS.map(([name, f]) => [name, ...reports.map(f)])]
  const widths = head.map((_, c) => Math.max(...rows.map(r => (r[c] ?? '').length)))
  const line = (r: string[]): string => `| ${r.map((cell, c) => c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0)).join(' | ')} |`
  return [line(head), `| ${widths.map((w, c) => c === 0 ? '-'.repeat(w) : `${'-'.repeat(Math.max(0, w - 1))}:`).join(' | ')} |`, ...rows.slice(1).map(line)].join('\n')
}

async function main (argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      nodes: { type: 'string' }, publishers: { type: 'string' }, days: { type: 'string' }, seed: { type: 'string' },
      schemes: { type: 'string' }, 'always-on': { type: 'string' }, 'disk-losses': { type: 'string' }, deaths: { type: 'string' },
      corruptions: { type: 'string' }, 'initial-packs': { type: 'string' }, 'packs-per-day': { type: 'string' },
      'audit-hours': { type: 'string' }, 'grace-hours': { type: 'string' },
      'no-audit': { type: 'boolean' }, 'no-repair': { type: 'boolean' }, 'no-reliability-filter': { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help === true) { process.stdout.write(`${USAGE}\n`); return 0 }
  const d = DEFAULT_PARAMS
  const base: Partial<SimParams> = {
    nodes: num(values.nodes, 'nodes', d.nodes),
    publishers: num(values.publishers, 'publishers', d.publishers),
    days: num(values.days, 'days', d.days),
    seed: num(values.seed, 'seed', d.seed),
    alwaysOnFraction: num(values['always-on'], 'always-on', d.alwaysOnFraction),
    diskLossesPerNodeYear: num(values['disk-losses'], 'disk-losses', d.diskLossesPerNodeYear),
    deathsPerNodeYear: num(values.deaths, 'deaths', d.deathsPerNodeYear),
    corruptionsPerNodeYear: num(values.corruptions, 'corruptions', d.corruptionsPerNodeYear),
    initialPacks: num(values['initial-packs'], 'initial-packs', d.initialPacks),
    packsPerDay: num(values['packs-per-day'], 'packs-per-day', d.packsPerDay),
    reliabilityFilter: values['no-reliability-filter'] !== true,
    audit: { enabled: values['no-audit'] !== true, intervalMs: num(values['audit-hours'], 'audit-hours', 24) * HOUR },
    repair: { enabled: values['no-repair'] !== true, offlineGraceMs: num(values['grace-hours'], 'grace-hours', 72) * HOUR }
  }
  const schemes = parseSchemes(values.schemes ?? '1+2,2+3,4+4', base.nodes ?? d.nodes)
  const reports: SimReport[] = []
  for (const scheme of schemes) {
    const started = Date.now()
    const r = await simulate({ ...base, scheme })
    reports.push(r)
    process.stderr.write(`${r.scheme}: ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
  }
  if (values.json === true) { process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`); return 0 }
  const r0 = reports[0]
  if (r0 !== undefined) {
    process.stdout.write(`${r0.nodes} nodes (${r0.publishers} publishers), ${r0.days} days, seed ${r0.seed}: ` +
      `nodes online ${(100 * r0.onlineFraction).toFixed(1)}% of the time\n\n`)
  }
  process.stdout.write(`${table(reports)}\n`)
  return 0
}

main(process.argv.slice(2)).then(code => { process.exitCode = code }, (err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 1
})
