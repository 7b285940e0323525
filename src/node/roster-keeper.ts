/**
 * The node's roster history (docs/format/group.md §5.5–§5.7): the current version in group.json
 * `roster`, the ones before it in `rosterHistory`; taking a member's run of versions (catch up,
 * or settle a fork the way every node settles it) and signing again what this node changed on a
 * branch the group dropped. The rules are peers/roster-chain.ts; this class keeps the files.
 */
import { UnauthenticatedError } from '../errors.js'
import {
  keptHistory, rebaseOwnChanges, reconcileRosters, rosterHash, verifyRosterUpdate, type Roster, type RosterFork
} from '../peers/index.js'
import type { Home } from './home.js'
import type { GroupState, RosterForkNote } from './group-state.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('roster')
const MAX_FORK_NOTES = 8

export type RosterTaken =
  /** nothing newer */
  | { kind: 'current' }
  /** the roster changed: `before` was current (null: none), `pushNew` true when this node signed new versions everyone must get */
  | { kind: 'changed', before: Roster | null, pushNew: boolean }
  /** we keep our branch of a fork: tell the sender */
  | { kind: 'kept' }
  /** their run does not connect to what we keep (`final`: fetching the sender's run cannot help) */
  | { kind: 'unlinked', reason: string, final?: boolean }

export class RosterKeeper {
  constructor (private readonly home: Home, private readonly state: GroupState) {}

  /** Kept versions then the current one, oldest first (empty outside a group). */
  chain (): Roster[] {
    const r = this.state.file.roster
    return r === null ? [] : [...(this.state.file.rosterHistory ?? []), r]
  }

  /** The kept versions from serial `from` on (all of them when `from` is older than the history). */
  from (serial: number): Roster[] {
    return this.chain().filter(r => r.serial >= serial)
  }

  hash (): string | undefined {
    const r = this.state.file.roster
    return r === null ? undefined : rosterHash(r)
  }

  /** Makes `chain`'s last version current and keeps the ones before it that keptHistory keeps (not saved: the caller saves). */
  setChain (chain: readonly Roster[]): void {
    const head = chain.at(-1)
    if (head === undefined) return
    this.state.file.roster = head
    this.state.file.rosterHistory = keptHistory(chain)
  }

  /** A version this node signed on top of the current one. */
  append (next: Roster): void {
    this.setChain([...this.chain(), next])
  }

  /** Whether `r` is the current version or one this node keeps. */
  holds (r: Roster): boolean {
    const h = rosterHash(r)
    return this.chain().some(x => rosterHash(x) === h)
  }

  /** takes run one at a time: two deliveries of one version (forwarded by two members) must not both switch and sign again */
  private queue: Promise<unknown> = Promise.resolve()

  /**
   * Runs `fn` alone among roster changes: the takes of members' versions, and this node's own
   * changes (a join it admits, a removal it signs), which must build on the roster as it is when
   * they run, not as it was before a take that was waiting on a save replaced it.
   */
  async exclusive<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn)
    this.queue = run.catch(() => undefined)
    return await run
  }

  /**
   * Takes a member's run of versions (oldest first, decoded): verified, then either our successors,
   * or a fork settled by the lower hash (docs §5.6). Saves group.json when the roster changes.
   */
  async take (remote: readonly Roster[], now: number): Promise<RosterTaken> {
    return await this.exclusive(async () => await this.takeNow(remote, now))
  }

  private async takeNow (remote: readonly Roster[], now: number): Promise<RosterTaken> {
    const local = this.chain()
    const before = this.state.file.roster
    if (before === null) {
      const head = remote.at(-1)
      if (head === undefined) return { kind: 'current' }
      verifyRosterUpdate(this.home.sodium, undefined, head, { now })
      this.setChain([head])
      await this.state.save()
      return { kind: 'changed', before: null, pushNew: false }
    }
    const r = reconcileRosters(this.home.sodium, local, remote, { now })
    switch (r.kind) {
      case 'current': return r
      case 'unlinked': return r
      case 'advance':
        this.setChain([...local, ...r.adopted])
        await this.state.save()
        return { kind: 'changed', before, pushNew: false }
      case 'keep':
        await this.note(r.fork, false, now)
        return { kind: 'kept' }
      case 'switch': {
        await this.note(r.fork, true, now)
        const base = [...local.filter(x => x.serial <= r.anchor.serial), ...r.adopted]
        const { versions, skipped } = rebaseOwnChanges(this.home.sodium, base.at(-1) as Roster, r.anchor, r.abandoned, this.home.identity, now)
        for (const why of skipped) log.error('after the fork at serial %d, a change this node made is lost and must be made again: %s', r.fork.serial, why)
        this.setChain([...base, ...versions])
        await this.state.save()
        return { kind: 'changed', before, pushNew: versions.length > 0 }
      }
    }
  }

  /** Takes one pushed version when it follows ours directly; otherwise says what the sender's run must settle. */
  async takeOne (next: Roster, now: number): Promise<RosterTaken> {
    return await this.exclusive(async () => {
      const current = this.state.file.roster
      if (current !== null && rosterHash(current) === rosterHash(next)) return { kind: 'current' }
      const local = this.chain()
      const oldest = local[0]
      if (oldest !== undefined && next.serial < oldest.serial && !this.holds(next)) {
        // older than all we keep: we cannot tell whether it is ours (answering OK would hide from its
        // signer that nobody took it), and the sender's run cannot reach back either
        return { kind: 'unlinked', reason: `serial ${next.serial} is older than every version this node keeps (serials ${oldest.serial}..${(local.at(-1) as Roster).serial})`, final: true }
      }
      return await this.takeNow([next], now)
    })
  }

  private async note (fork: RosterFork, switched: boolean, now: number): Promise<void> {
    const [kept, dropped] = switched ? [fork.theirs, fork.ours] : [fork.ours, fork.theirs]
    const n: RosterForkNote = {
      serial: fork.serial,
      kept: rosterHash(kept),
      dropped: rosterHash(dropped),
      keptBy: kept.updatedBy,
      droppedBy: dropped.updatedBy,
      equivocation: fork.equivocation,
      at: now
    }
    const notes = (this.state.file.rosterForks ?? []).filter(x => x.dropped !== n.dropped)
    if (notes.length === (this.state.file.rosterForks ?? []).length) {
      log.error('roster fork at serial %d: versions signed by %s and %s%s; the group follows %s', fork.serial, fork.ours.updatedBy, fork.theirs.updatedBy,
        fork.equivocation ? ' (one member signed both: an attempt to split the group)' : '', n.kept)
    }
    this.state.file.rosterForks = [...notes, n].slice(-MAX_FORK_NOTES)
    await this.state.save()
  }
}

/** The error for a run that does not connect (the caller fetched a longer one first). */
export function unlinkedError (reason: string): UnauthenticatedError {
  return new UnauthenticatedError(`roster refused: ${reason}; it is a fork older than this node's history, or a made-up one`)
}
