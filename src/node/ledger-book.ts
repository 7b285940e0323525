/**
 * This node's view of the group's reciprocity ledger (docs/format/ledger.md): its own signed
 * statement (bytes it holds per owner, bytes its person placed per holder person) and the newest
 * verified statement of every other member device, learned through the space protocol. A persister
 * refuses new shares from a person whose use of the group's disk exceeds the policy's multiple of
 * what they give.
 */
import {
  ledgerBalances, ledgerEntries, ledgerRelayed, memberOfPeer, reciprocityRefusal, signLedger, verifyLedger, isNewerLedger,
  type LedgerStatement, type ReciprocityBalance, type ReciprocityPolicy, type RelayedEntry, type Roster
} from '../peers/index.js'
import type { IndexDb } from '../store/index.js'
import type { Home } from './home.js'
import type { Settings } from './group-state.js'
import { errorMessage } from '../errors.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('ledger')

export class LedgerBook {
  private readonly statements = new Map<string, LedgerStatement>()
  private own: LedgerStatement | undefined

  constructor (private readonly home: Home, private readonly roster: () => Roster | null, public policy: ReciprocityPolicy) {}

  /**
   * Signs a fresh statement of what this device holds and has placed (none with a write-only key),
   * and what it relayed per person in the last 30 days (`relayed`, by peer id: summed per person here).
   */
  update (peerId: string, holds: Record<string, number>, now = Date.now(), relayedByPeer: ReadonlyMap<string, number> = new Map()): LedgerStatement | undefined {
    const r = this.roster()
    if (r === null || this.home.identity.signSecretKey === null) return undefined
    const placed = placedBytes(this.home.repo.index, peer => r.members.find(m => m.devices.some(d => d.peerId === peer))?.userId)
    delete placed[this.home.identity.userId]
    const relayed: Record<string, number> = {}
    for (const [peer, n] of relayedByPeer) {
      const person = memberOfPeer(r, peer)?.userId
      if (person !== undefined && person !== this.home.identity.userId) relayed[person] = (relayed[person] ?? 0) + n
    }
    const own = signLedger(this.home.sodium, this.home.identity, { groupId: r.groupId, peerId, time: now, holds: dropSelf(holds, this.home.identity.userId), placed, relayed })
    this.own = own
    this.statements.set(peerId, own)
    return own
  }

  /** The statement to hand to a member who asks. */
  current (): LedgerStatement | undefined { return this.own }

  /** Takes a member's statement if it verifies and is newer than what we have; false otherwise. */
  accept (statement: unknown): boolean {
    const r = this.roster()
    if (r === null || statement === undefined) return false
    try {
      const s = verifyLedger(this.home.sodium, statement, { roster: r, now: Date.now() })
      const prev = this.statements.get(s.peerId)
      if (prev !== undefined && !isNewerLedger(s, prev)) return false
      this.statements.set(s.peerId, s)
      return true
    } catch (err: unknown) {
      log('ledger statement refused: %s', errorMessage(err))
      return false
    }
  }

  balances (): Map<string, ReciprocityBalance> {
    const r = this.roster()
    return r === null ? new Map() : ledgerBalances(this.statements.values(), r, { self: this.home.identity.userId })
  }

  /** What this device and the owner each say it holds for them (for status). */
  entries (): ReturnType<typeof ledgerEntries> {
    const r = this.roster()
    return r === null ? [] : ledgerEntries(this.statements.values(), r)
  }

  /** What each member's devices say they relayed for each other member in the last 30 days (for status). */
  relayed (): RelayedEntry[] {
    const r = this.roster()
    return r === null ? [] : ledgerRelayed(this.statements.values(), r)
  }

  /** A refusal reason if `owner` may not add `addBytes` more, else undefined. */
  refusal (owner: string, addBytes: number): string | undefined {
    return reciprocityRefusal(owner, addBytes, this.balances(), this.policy)
  }
}

/** Bytes this device's placements put on each person (by the shares' committed lengths). */
export function placedBytes (index: IndexDb, personOf: (peerId: string) => string | undefined): Record<string, number> {
  const out: Record<string, number> = {}
  for (const s of index.audit.shares()) {
    const holder = index.getPlacement(s.pack)?.get(s.index)
    if (holder === undefined || !holder.startsWith('peer:')) continue
    const person = personOf(holder.slice(5))
    if (person === undefined) continue
    out[person] = (out[person] ?? 0) + s.audit.length
  }
  return out
}

function dropSelf (m: Record<string, number>, self: string): Record<string, number> {
  const out = { ...m }
  delete out[self]
  return out
}

/** The reciprocity policy of these settings (defaults where unset). */
export function reciprocityPolicy (s: Settings): { multiple?: number, graceBytes?: number } {
  return {
    ...(s.reciprocityMultiple !== undefined ? { multiple: s.reciprocityMultiple } : {}),
    ...(s.reciprocityGraceBytes !== undefined ? { graceBytes: s.reciprocityGraceBytes } : {})
  }
}
