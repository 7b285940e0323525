/**
 * Snapshot records in a group (docs/network.md §9.2): each is kept on this disk and on every reachable
 * persister (the head is everyone's), read from whichever holder answers with the right bytes, and
 * sent again to peers that missed it (`sync`, every daemon round).
 */
import { NotFoundError, errorMessage } from '../errors.js'
import { contentHash } from '../crypto/index.js'
import type { Candidate } from '../placement/index.js'
import type { AbortOptions, ShareStore } from '../store/index.js'
import { equalBytes, toHex } from '../util/bytes.js'
import { scopedLogger } from '../util/log.js'
import { boundedList, LIST_BUDGET_MS, type ListBounds } from './bounded-list.js'
import type { PlacementTally } from './placement-tally.js'
import type { RecordListOptions } from './pack-store.js'

const log = scopedLogger('repo:group')

/**
 * Waiting for one peer's record listing in `sync` (a daemon round's step), at most: a peer that lists
 * forever or drips its answer must not use up the round (issue 11, finding 7); what it lacks is sent
 * on a later round.
 */
export const SYNC_LIST_BUDGET_MS = 10_000

export class GroupRecords {
  constructor (
    private readonly local: ShareStore,
    private readonly online: () => Candidate[],
    private readonly storeFor: (peerId: string) => ShareStore,
    /** the pack store's open tallies: they learn on how many people a record landed */
    private readonly tallies: ReadonlySet<PlacementTally>,
    private readonly bounds: ListBounds = {},
    private readonly otherDevices: () => boolean = () => true
  ) {}

  /**
   * Records go to the local store and to every reachable peer (the head is replicated to all); the
   * open tallies learn on how many people it landed. A peer that missed it gets it from
   * `syncRecords` on a later round.
   */
  async put (id: Uint8Array, data: Uint8Array, options?: AbortOptions): Promise<void> {
    await this.local.putRecord(id, data, options)
    const candidates = this.online()
    const people = new Set<string>()
    await Promise.all(candidates.map(async c => {
      try {
        await this.storeFor(c.peerId).putRecord(id, data, options)
        people.add(c.personId)
      } catch (err: unknown) {
        log('snapshot record %s not stored on %s (sent again on a later round): %s', toHex(id).slice(0, 16), c.peerId, errorMessage(err))
      }
    }))
    for (const t of this.tallies) t.recordStored(people.size)
  }

  /**
   * A record from this disk, else from every reachable peer in turn until one answers bytes whose
   * BLAKE3 is the record's id (a snapshot record is named by its hash): one holder answering garbage
   * first cannot hide a snapshot the others hold.
   */
  async get (id: Uint8Array, options?: AbortOptions): Promise<Uint8Array> {
    const errors: string[] = []
    const sources: Array<[string, ShareStore]> = [['local', this.local], ...this.online().map(c => [c.peerId, this.storeFor(c.peerId)] as [string, ShareStore])]
    for (const [name, store] of sources) {
      try {
        const data = await store.getRecord(id, options)
        if (equalBytes(contentHash(data), id)) return data
        errors.push(`${name}: answered bytes that are not the record`)
        log.error('snapshot record %s from %s is not the record (forged or damaged)', toHex(id).slice(0, 16), name)
      } catch (err: unknown) {
        errors.push(`${name}: ${errorMessage(err)}`)
      }
    }
    throw new NotFoundError(`snapshot record ${toHex(id).slice(0, 16)} is neither local nor on any reachable peer (${errors.join('; ')})`)
  }

  async delete (id: Uint8Array, options?: AbortOptions): Promise<void> {
    await this.local.deleteRecord(id, options)
    await Promise.all(this.online().map(async c => {
      await this.storeFor(c.peerId).deleteRecord(id, options).catch((err: unknown) => {
        log.error('snapshot record %s not deleted on %s: %s', toHex(id).slice(0, 16), c.peerId, errorMessage(err))
      })
    }))
  }

  /**
   * Every record id this disk and the reachable peers list, each once. All listings are gathered
   * before the first id is yielded, so that `claimant` knows whether one peer alone lists an id.
   */
  async * list (options?: RecordListOptions): AsyncIterable<Uint8Array> {
    const found = new Map<string, { id: Uint8Array, peers: Set<string>, local: boolean }>()
    const sources: Array<{ peer: string | undefined, store: ShareStore }> = [{ peer: undefined, store: this.local }, ...this.online().map(c => ({ peer: c.peerId, store: this.storeFor(c.peerId) }))]
    const listing = options?.listing
    if (listing !== undefined) listing.otherDevices = this.otherDevices()
    const { listing: _, ...rest } = options ?? {}
    for (const { peer, store } of sources) {
      let cut: string | undefined
      if (peer !== undefined && listing !== undefined) listing.asked++
      for await (const id of boundedList((o) => store.listRecords(o), `the snapshot records on ${store.id}`, rest, this.bounds, (why) => { cut = why })) {
        const key = toHex(id)
        let f = found.get(key)
        if (f === undefined) { f = { id, peers: new Set(), local: false }; found.set(key, f) }
        if (peer === undefined) f.local = true
        else f.peers.add(peer)
      }
      if (peer === undefined || listing === undefined) continue
      if (cut === undefined) listing.answered++
      else listing.incomplete.push(`${peer}: ${cut}`)
    }
    this.soleLister.clear()
    for (const [key, f] of found) if (!f.local && f.peers.size === 1) this.soleLister.set(key, [...f.peers][0] as string)
    for (const f of found.values()) yield f.id
  }

  /** The one peer that alone listed this record in the last listing (undefined: others, or this disk, hold it too). */
  claimant (id: Uint8Array): string | undefined { return this.soleLister.get(toHex(id)) }

  /** record id (hex) → the one peer that listed it, for the readers' distrust of made-up ids (distrust.ts) */
  private readonly soleLister = new Map<string, string>()

  /** Sends every local snapshot record to every reachable peer that lacks it (the head is everyone's). */
  async sync (options?: AbortOptions): Promise<number> {
    const local: Uint8Array[] = []
    for await (const id of this.local.listRecords(options)) local.push(id)
    let sent = 0
    for (const c of this.online()) {
      const store = this.storeFor(c.peerId)
      try {
        const theirs = new Set<string>()
        const bounds = { ...this.bounds, budgetMs: Math.min(this.bounds.budgetMs ?? LIST_BUDGET_MS, SYNC_LIST_BUDGET_MS) }
        for await (const id of boundedList((o) => store.listRecords(o), `the snapshot records on ${c.peerId}`, options, bounds)) theirs.add(toHex(id))
        for (const id of local) {
          if (theirs.has(toHex(id))) continue
          await store.putRecord(id, await this.local.getRecord(id, options), options)
          sent++
        }
      } catch (err: unknown) {
        // unreachable now: next time
        log('records not synced to %s: %s', c.peerId, errorMessage(err))
      }
    }
    return sent
  }
}
