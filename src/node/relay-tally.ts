/**
 * What this node carried as a circuit relay, per member device and UTC day, kept across restarts in
 * HOME/relayed.json (docs/network.md §15.2): the figures its ledger statement gives friends
 * (`relayed`, docs/format/ledger.md §2) cover the 30 days before the statement, so they must outlive
 * a daemon restart. A statistic, not a ledger of record: a file that cannot be read is set aside and
 * counting starts again (logged), and at most a refresh period of counts is lost in a crash.
 *
 *   {"version": 1, "days": {"2026-12-06": {"<peerId>": <bytes>, …}, …}}   at most 31 days kept
 */
import { readFile, rename } from 'node:fs/promises'
import { errorMessage } from '../errors.js'
import { writeFileAtomic } from '../store/index.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('relay')

/** days kept in the file: the ledger's 30-day window and the day in progress */
export const RELAY_TALLY_DAYS = 31

type Days = Record<string, Record<string, number>>

export class RelayTally {
  private dirty = false

  private constructor (private readonly path: string | undefined, private readonly days: Days) {}

  /** An empty tally kept in memory only (tests, commands without a daemon). */
  static inMemory (): RelayTally { return new RelayTally(undefined, {}) }

  /** The tally of `path`; missing: empty; unreadable: set aside as `path.bad` and empty. */
  static async load (path: string): Promise<RelayTally> {
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch (err: unknown) {
      if ((err as { code?: string }).code !== 'ENOENT') log.error('cannot read %s (counting relayed bytes again from zero): %s', path, errorMessage(err))
      return new RelayTally(path, {})
    }
    try {
      return new RelayTally(path, parseDays(JSON.parse(text)))
    } catch (err: unknown) {
      log.error('%s is not a relay tally (set aside as %s.bad; counting again from zero): %s', path, path, errorMessage(err))
      await rename(path, `${path}.bad`).catch((e: unknown) => { log.error('cannot set %s aside: %s', path, errorMessage(e)) })
      return new RelayTally(path, {})
    }
  }

  /** Counts `bytes` carried for `peer` at `now`. */
  add (peer: string, bytes: number, now: number): void {
    if (bytes <= 0) return
    const day = dayOf(now)
    const d = this.days[day] ?? (this.days[day] = {})
    d[peer] = (d[peer] ?? 0) + bytes
    this.dirty = true
  }

  /** Bytes carried per peer in the `windowMs` before `now` (whole UTC days: the day in progress and those that began in the window). */
  within (now: number, windowMs: number): Map<string, number> {
    const first = dayOf(now - windowMs)
    const out = new Map<string, number>()
    for (const [day, peers] of Object.entries(this.days)) {
      if (day < first) continue
      for (const [peer, n] of Object.entries(peers)) out.set(peer, (out.get(peer) ?? 0) + n)
    }
    return out
  }

  /** Writes the file (atomically) when something changed, keeping the last RELAY_TALLY_DAYS days. */
  async save (now: number): Promise<void> {
    const first = dayOf(now - (RELAY_TALLY_DAYS - 1) * 86_400_000)
    for (const day of Object.keys(this.days)) if (day < first) { delete this.days[day]; this.dirty = true }
    if (!this.dirty || this.path === undefined) return
    this.dirty = false
    try {
      await writeFileAtomic(this.path, JSON.stringify({ version: 1, days: this.days }) + '\n', { mode: 0o600 })
    } catch (err: unknown) {
      this.dirty = true
      throw err
    }
  }
}

function dayOf (ms: number): string { return new Date(ms).toISOString().slice(0, 10) }

function parseDays (v: unknown): Days {
  const o = v as { version?: unknown, days?: unknown }
  if (typeof o !== 'object' || o === null || o.version !== 1 || typeof o.days !== 'object' || o.days === null || Array.isArray(o.days)) throw new Error('not {"version": 1, "days": {…}}')
  const days: Days = {}
  for (const [day, peers] of Object.entries(o.days as Record<string, unknown>)) {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || typeof peers !== 'object' || peers === null || Array.isArray(peers)) throw new Error(`day ${JSON.stringify(day).slice(0, 40)} is malformed`)
    const d: Record<string, number> = {}
    for (const [peer, n] of Object.entries(peers as Record<string, unknown>)) {
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new Error(`the bytes of ${peer.slice(0, 60)} on ${day} are not a count`)
      d[peer] = n
    }
    days[day] = d
  }
  return days
}
