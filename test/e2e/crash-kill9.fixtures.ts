/**
 * What the kill -9 specs share (issue 9, item 4): crash-kill9.spec.ts kills `backup` and
 * `forget --prune` of the embedded local store, crash-kill9-group.spec.ts kills the daemons of a small
 * group. Here: the seed and each flow's random streams, the tally of kills both flows add to, kill
 * moments drawn within the duration of uncrashed runs, a runner of warm CLI children killed at such a
 * moment, the source tree each round changes, and what must hold after each kill: the store opens,
 * `snapshots` lists every snapshot it must, and `check --read-data` passes.
 *
 * The seed is printed; rerun a failure with P2PBAK_CRASH_SEED=<seed>. Nothing sleeps blindly: every
 * wait polls a condition with a deadline.
 */
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { CliResult } from '../helpers/cli.js'
import { Rng, seedFrom } from '../helpers/seeded.js'
import { WarmCli } from '../helpers/warm-cli.js'

export const SEED = seedFrom('P2PBAK_CRASH_SEED')
/**
 * Each flow draws from its own streams (kill moments and victims; file contents), so a flow rerun
 * alone (mocha -g, or its spec file alone) with the same seed meets the same moments, whatever the
 * other flow drew.
 */
export interface Streams { rng: Rng, data: Rng }
export const streams = (flow: number): Streams => ({ rng: new Rng((SEED ^ Math.imul(flow, 0x9e37_79b9)) >>> 0), data: new Rng((SEED ^ Math.imul(flow, 0x85eb_ca6b) ^ 0x5eed_da7a) >>> 0) })

/** Kills that hit a running process (issue 9: 30 or more): the local flow reaches them alone. */
export const MIN_KILLS = 30
/**
 * The group flow found three defects, all fixed: a backup failed when a persister went away during it;
 * the daemon's next backup then failed with that backup's error; and a friend killed during
 * `forget --prune` kept the snapshot records it was told to delete, which came back after the prune
 * had deleted their data (forgets are now records friends hold, docs/gc.md). P2PBAK_CRASH_GROUP=0
 * leaves the flow out (a quick local run).
 */
export const GROUP_FLOW = process.env.P2PBAK_CRASH_GROUP !== '0'

/** The kills of each flow so far (one tally per process), printed after each file. */
export const kills = { local: 0, localFinishedFirst: 0, group: 0, groupDuringWork: 0 }

export interface Snap { id: string, time: string }
export interface KillRun { killed: boolean, code: number | null, ms: number, stderr: string }

export class CrashInvariantError extends Error {
  constructor (message: string) {
    super(`${message} [seed ${SEED}: rerun with P2PBAK_CRASH_SEED=${SEED}]`)
    this.name = 'CrashInvariantError'
  }
}

/**
 * Runs commands of one home in warm children (test/helpers/warm-cli.ts: the CLI already loaded, so a
 * kill moment counts from the command's start), killing each with SIGKILL at a given moment. The
 * next child loads while the test checks what the last one left.
 */
export class KillRunner {
  private next: WarmCli

  constructor (private readonly env: Record<string, string>) {
    this.next = WarmCli.spawn(env)
  }

  async run (args: string[], killAtMs?: number): Promise<KillRun> {
    const child = this.next
    try {
      const r = await child.run(args, killAtMs)
      return { killed: r.signal === 'SIGKILL', code: r.code, ms: r.ms, stderr: r.stderr }
    } catch (err: unknown) {
      throw new CrashInvariantError(err instanceof Error ? err.message : String(err))
    } finally {
      this.next = WarmCli.spawn(this.env)
    }
  }

  /** Milliseconds an uncrashed `p2pbak args` takes. */
  async measure (args: string[]): Promise<number> {
    const r = await this.run(args)
    assert.equal(r.code, 0, r.stderr)
    return r.ms
  }

  async close (): Promise<void> {
    await this.next.dispose()
  }
}

/**
 * How long uncrashed runs of one command took: the median of the durations seen so far (the first
 * measurement, then every run that ended before its kill moment), so kill moments follow the
 * machine's load instead of one early measurement.
 */
export class Durations {
  private readonly ms: number[] = []
  constructor (private readonly rng: Rng) {}
  add (ms: number): void { this.ms.push(ms) }
  median (): number {
    const s = [...this.ms].sort((a, b) => a - b)
    return s[Math.floor((s.length - 1) / 2)] ?? 1000
  }

  /** A kill moment: uniform within the (median) duration of an uncrashed run. */
  killMoment (): number {
    return this.rng.int(0, Math.max(1, Math.ceil(this.median())))
  }
}

const T0 = performance.now()
/** Prints a step with the seconds since the module loaded, with P2PBAK_CRASH_VERBOSE set. */
export function step (label: string): void {
  if (process.env.P2PBAK_CRASH_VERBOSE !== undefined) console.log(`      [${((performance.now() - T0) / 1000).toFixed(1)} s] ${label}`)
}

/** What `snapshots` lists; a store that does not open breaks the invariant. */
export async function listed (cli: (...argv: string[]) => Promise<CliResult>, what: string): Promise<Snap[]> {
  const r = await cli('snapshots', '--json')
  if (r.code !== 0) throw new CrashInvariantError(`${what}: the store does not open for \`snapshots\` (exit ${r.code}): ${r.stderr}`)
  return r.json<Snap[]>()
}

/** The store opens, lists every snapshot in `must`, and `check --read-data` passes. Returns what is listed. */
export async function assertIntact (cli: (...argv: string[]) => Promise<CliResult>, must: ReadonlySet<string>, what: string): Promise<Snap[]> {
  const snaps = await listed(cli, what)
  const ids = new Set(snaps.map(s => s.id))
  const lost = [...must].filter(id => !ids.has(id))
  if (lost.length > 0) throw new CrashInvariantError(`${what}: ${lost.length} listed snapshot(s) lost: ${lost.map(s => s.slice(0, 12)).join(', ')}`)
  step(`${what}: listed`)
  const check = await cli('check', '--read-data', '--json')
  step(`${what}: checked`)
  if (check.code !== 0) throw new CrashInvariantError(`${what}: check --read-data exit ${check.code}: ${check.stdout}${check.stderr}`)
  return snaps
}

/** Adds round `i`'s new file and drops the one from three rounds before, so older snapshots own data no newer one uses. */
export function mutate (data: Rng, src: string, i: number, size: number): void {
  writeFileSync(join(src, `round-${i}.bin`), data.bytes(size))
  rmSync(join(src, `round-${i - 3}.bin`), { force: true })
  writeFileSync(join(src, 'notes', 'log.txt'), `round ${i}\n`.repeat(200 + i))
}

/** The source tree's first state: three files of `bytes` together and forty small notes. */
export function baseTree (data: Rng, src: string, bytes: number): void {
  mkdirSync(join(src, 'notes'), { recursive: true })
  for (let i = 0; i < 3; i++) writeFileSync(join(src, `base-${i}.bin`), data.bytes(Math.floor(bytes / 3)))
  for (let i = 0; i < 40; i++) writeFileSync(join(src, 'notes', `n${i}.txt`), `note ${i}\n`.repeat(20 + i))
}

/** Where one spec file works: `dir` is set in `before`. */
export interface CrashLab { dir: string }

/**
 * Registers the enclosing describe's `before` (a temporary folder, the seed printed) and `after` (the
 * folder removed, the flow's kills printed) and returns the lab whose `dir` they set.
 */
export function crashLab (flow: 'local' | 'group'): CrashLab {
  const lab: CrashLab = { dir: '' }
  before(() => {
    lab.dir = mkdtempSync(join(tmpdir(), 'p2pbak-kill9-'))
    console.log(`      crash-kill9: seed ${SEED} (rerun with P2PBAK_CRASH_SEED=${SEED})`)
  })
  after(() => {
    rmSync(lab.dir, { recursive: true, force: true })
    console.log(flow === 'local'
      ? `      crash-kill9: ${kills.local} local kills (${kills.localFinishedFirst} local runs ended before their kill moment)`
      : `      crash-kill9: ${kills.group} group kills (${kills.groupDuringWork} group kill moments fell before the work ended)`)
  })
  return lab
}
