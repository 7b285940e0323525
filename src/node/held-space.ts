/**
 * The persister role of a node: what it holds for each member (HOME/held/<userId>/, one
 * LocalShareStore each), how much it offers, and whether a member may add more (the quota, then the
 * reciprocity limit of the ledger). The quota check counts bytes before a put is known to succeed;
 * refresh() corrects the count from disk.
 */
import { readFile, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { RefusedError, errorMessage } from '../errors.js'
import { pathExists } from '../store/atomic.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('held')
import { LocalShareStore, diskRoom, writeFileAtomic, type ShareStore, type StoreUsage } from '../store/index.js'
import type { LedgerBook } from './ledger-book.js'
import { AUTO_CONTRIBUTE_SHARE, type Roles } from './group-state.js'
import type { Refusal } from '../protocols/shard/index.js'

/**
 * Objects one person may keep on this node. Shares of 16 MiB packs, or small ones of tree packs:
 * two million is far beyond any backup a friend's quota holds, and bounds the files (and inodes) a
 * member can make with tiny objects; records are one per snapshot plus gc records.
 */
export const MAX_SHARES_PER_OWNER = 2_000_000
export const MAX_RECORDS_PER_OWNER = 200_000
/** The least time a removed member's data stays (the group's retention age counts when longer). */
export const REMOVED_DATA_GRACE_MS = 30 * 86_400_000

export class HeldSpace {
  private readonly held = new Map<string, Promise<LocalShareStore>>()
  private usedCache = 0
  /** shares and records held per member: counted by refresh(), raised by admit() */
  private readonly objects = new Map<string, { shares: number, records: number }>()
  /** bytes accepted per owner since our last ledger statement (the statement counts the rest) */
  private readonly pendingFor = new Map<string, number>()
  /** free bytes on the home's filesystem, refreshed by refresh() (`freeKnown`: it could be read) */
  private freeDisk = 0
  private freeKnown = false
  /** `usedCache` as refresh() counted it: what admit() added since comes off `freeDisk` */
  private usedAtRefresh = 0
  /** the automatic quota, fixed at each refresh(): AUTO_CONTRIBUTE_SHARE of (free + held) */
  private autoQuota = 0
  /** what each member's store counted at the last refresh that could read it */
  private readonly lastUsage = new Map<string, StoreUsage>()

  /** the stores the shard server answers from, per member (through `wrap` when one is given) */
  private readonly served = new Map<string, ShareStore>()

  /**
   * `wrap`: what the shard server answers a member's requests from, given that member's held store
   * (NetworkOptions.wrapHeldStore: the seam for tests and fault injection). Audits and the quota
   * always read the held store itself.
   */
  constructor (private readonly dir: string, private readonly roles: () => Roles, private readonly ledger: LedgerBook, private readonly wrap?: (owner: string, store: ShareStore) => ShareStore) {}

  /** The share store of one member. */
  async store (userId: string): Promise<LocalShareStore> {
    if (!/^[0-9a-f]{64}$/.test(userId)) throw new RefusedError('bad owner id')
    let s = this.held.get(userId)
    if (s === undefined) {
      const opening = LocalShareStore.open(join(this.dir, 'held', userId))
      s = opening
      this.held.set(userId, opening)
      // an open that failed (a full disk, a permission) is not kept: the next request tries again
      // (the caller still gets the error from the await below)
      opening.catch(() => { if (this.held.get(userId) === opening) this.held.delete(userId) })
    }
    return await s
  }

  /** The store the shard server answers one member from: the held store, or what `wrap` made of it. */
  async answering (userId: string): Promise<ShareStore> {
    const store = await this.store(userId)
    if (this.wrap === undefined) return store
    let s = this.served.get(userId)
    if (s === undefined) { s = this.wrap(userId, store); this.served.set(userId, s) }
    return s
  }

  /** The share store of every member we hold anything for. */
  async stores (): Promise<Array<{ owner: string, store: ShareStore }>> {
    return await Promise.all((await this.owners()).map(async owner => ({ owner, store: await this.store(owner) })))
  }

  /** The members this node holds a folder for (none when `held/` does not exist yet). */
  private async owners (): Promise<string[]> {
    const names = await readdir(join(this.dir, 'held')).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [] as string[]
      throw err
    })
    return names.filter(o => /^[0-9a-f]{64}$/.test(o))
  }

  /**
   * Re-reads free disk space and what is held (shares and records: both count against the quota);
   * returns bytes of shares held per member (undefined if unreadable).
   */
  async refresh (): Promise<Record<string, number> | undefined> {
    try {
      this.freeDisk = await this.freeDiskBytes()
      this.freeKnown = true
    } catch (err: unknown) {
      log.error('free disk space unreadable: %s', errorMessage(err))
      this.freeDisk = 0
      this.freeKnown = false
    }
    let owners: string[]
    try {
      owners = await this.owners()
    } catch (err: unknown) {
      log.error('what this node holds could not be counted: %s', errorMessage(err))
      return undefined
    }
    // each member on its own: one store that cannot be opened or counted keeps its last count, and
    // the others are counted as usual
    const usage = await Promise.all(owners.map(async owner => {
      try {
        const u = await (await this.store(owner)).usage()
        this.lastUsage.set(owner, u)
        return { owner, u }
      } catch (err: unknown) {
        log.error('the data held for %s could not be counted (its last count stands): %s', owner.slice(0, 12), errorMessage(err))
        return { owner, u: this.lastUsage.get(owner) ?? { shares: 0, bytes: 0 } }
      }
    }))
    this.usedCache = usage.reduce((n, { u }) => n + u.bytes + (u.recordBytes ?? 0), 0)
    this.usedAtRefresh = this.usedCache
    // a share of the space this node could give, held bytes included: a quota of "a share of what is
    // free, plus what is held" grew by that share at every refresh, until the disk was full
    this.autoQuota = Math.floor((this.freeDisk + this.usedCache) * AUTO_CONTRIBUTE_SHARE)
    this.objects.clear()
    for (const { owner, u } of usage) this.objects.set(owner, { shares: u.shares, records: u.records ?? 0 })
    this.pendingFor.clear()
    return Object.fromEntries(usage.map(({ owner, u }) => [owner, u.bytes]))
  }

  /** The persister quota: what the user set with `contribute`, or a share of the free disk. */
  quotaBytes (): number {
    const set = this.roles().contributeBytes
    if (set !== null) return set
    return this.autoQuota
  }

  get usedBytes (): number { return this.usedCache }

  /**
   * Bytes the home's file system can still take for members: its free space at the last refresh less
   * what was admitted since (undefined until it could be read). A quota set larger than the disk is
   * not offered beyond it, and a put that would not fit is refused for want of room before the disk
   * fills.
   */
  get roomOnDisk (): number | undefined {
    return this.freeKnown ? Math.max(0, this.freeDisk - (this.usedCache - this.usedAtRefresh)) : undefined
  }

  /**
   * A refusal reason if `owner` may not add `addBytes` now, else undefined (and the bytes are
   * counted). A node that contributes nothing refuses every put, repeats included; otherwise a put
   * that adds nothing (a repeat) is not checked further. `added` counts a new share or record
   * against the cap on their number per member. `charge` false only checks (the first part of an
   * upload: its bytes are counted once, when the assembled share is stored).
   */
  admit (owner: string, addBytes: number, added?: 'share' | 'record', charge = true): Refusal | undefined {
    const quota = this.quotaBytes()
    // no room given (`contribute 0`, or an automatic quota on a full disk): the owner's matter, not the sender's
    if (quota <= 0) return { error: 'this node does not contribute storage (p2pbak contribute SIZE)', full: true }
    const count = this.objects.get(owner) ?? { shares: 0, records: 0 }
    if (added === 'share' && count.shares >= MAX_SHARES_PER_OWNER) return `this node holds the most shares it keeps for one person (${MAX_SHARES_PER_OWNER}); prune old backups`
    if (added === 'record' && count.records >= MAX_RECORDS_PER_OWNER) return `this node holds the most records it keeps for one person (${MAX_RECORDS_PER_OWNER}); forget and prune old snapshots`
    if (addBytes === 0 && added === undefined) return undefined
    // reciprocity first: the sender must act on it (contribute more), while a full quota or disk is ours
    const unfair = this.ledger.refusal(owner, addBytes + (this.pendingFor.get(owner) ?? 0))
    if (unfair !== undefined) return unfair
    if (this.usedCache + addBytes > quota) return { error: `this node's quota of ${quota} bytes is used up`, full: true }
    const room = this.roomOnDisk
    if (room !== undefined && addBytes > room) return { error: 'the persister\'s disk is full', full: true }
    if (!charge) return undefined
    this.usedCache += addBytes
    this.pendingFor.set(owner, (this.pendingFor.get(owner) ?? 0) + addBytes)
    if (added !== undefined) this.objects.set(owner, { shares: count.shares + (added === 'share' ? 1 : 0), records: count.records + (added === 'record' ? 1 : 0) })
    return undefined
  }

  /**
   * The data of people removed from the group (`removed`, from the roster) is deleted once `graceMs`
   * has passed since this node first saw them removed (noted in `held/<userId>.removed`). Nobody may
   * read it any more — a removed member gets no connection — so keeping it would only hold the disk
   * for good (issue 11, finding 6); the grace leaves time to notice a removal made by mistake or by a
   * stolen admin key. Returns the people whose data went.
   */
  async releaseRemoved (removed: readonly string[], graceMs: number, now: number): Promise<string[]> {
    const gone: string[] = []
    for (const owner of removed) {
      if (!/^[0-9a-f]{64}$/.test(owner)) continue
      // one member's failure (a full disk for the note, a permission on a file) stops neither the others nor the round
      try {
        if (await this.releaseOne(owner, graceMs, now)) gone.push(owner)
      } catch (err: unknown) {
        log.error('the data of %s, removed from the group, could not be released (tried again next round): %s', owner.slice(0, 12), errorMessage(err))
      }
    }
    return gone
  }

  private async releaseOne (owner: string, graceMs: number, now: number): Promise<boolean> {
    const dir = join(this.dir, 'held', owner)
    const mark = join(this.dir, 'held', `${owner}.removed`)
    if (!await pathExists(dir)) { if (await pathExists(mark)) await rm(mark, { force: true }); return false }
    // no note yet: the removal is seen now; a note that cannot be read starts the wait again (the data stays longer, never shorter)
    let since = Number.parseInt(await pathExists(mark) ? await readFile(mark, 'utf8').catch((err: unknown) => { log.error('%s unreadable, the wait starts again: %s', mark, errorMessage(err)); return '' }) : '', 10)
    if (!Number.isSafeInteger(since) || since <= 0 || since > now) {
      since = now
      await writeFileAtomic(mark, String(now))
      log('%s was removed from the group: its data here goes after %d days', owner.slice(0, 12), Math.round(graceMs / 86_400_000))
    }
    if (now - since < graceMs) return false
    const open = this.held.get(owner)
    this.held.delete(owner)
    this.served.delete(owner)
    if (open !== undefined) await (await open).close()
    await rm(dir, { recursive: true, force: true })
    await rm(mark, { force: true })
    this.objects.delete(owner)
    this.lastUsage.delete(owner)
    log('deleted the data of %s, removed from the group', owner.slice(0, 12))
    return true
  }

  /** What shares may still take of the disk: its free space less the reserve kept for the index (store/disk-room.ts). */
  async freeDiskBytes (): Promise<number> {
    try { return (await diskRoom(this.dir)).room } catch (err: unknown) { throw new RefusedError(errorMessage(err)) }
  }

  async close (): Promise<void> {
    for (const s of this.held.values()) await (await s).close().catch((err: unknown) => { log.error('closing a held store: %s', errorMessage(err)) })
  }
}
