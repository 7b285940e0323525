/**
 * The persister role of a node: what it holds for each member (HOME/held/<userId>/, one
 * LocalShareStore each), how much it offers, and whether a member may add more (the quota, then the
 * reciprocity limit of the ledger). The quota check counts bytes before a put is known to succeed;
 * refresh() corrects the count from disk.
 */
import { readdir, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import { RefusedError, errorMessage } from '../errors.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('held')
import { LocalShareStore, type ShareStore } from '../store/index.js'
import type { LedgerBook } from './ledger-book.js'
import { AUTO_CONTRIBUTE_SHARE, type Roles } from './group-state.js'

export class HeldSpace {
  private readonly held = new Map<string, Promise<LocalShareStore>>()
  private usedCache = 0
  /** bytes accepted per owner since our last ledger statement (the statement counts the rest) */
  private readonly pendingFor = new Map<string, number>()
  /** free bytes on the home's filesystem, refreshed by refresh() */
  private freeDisk = 0

  constructor (private readonly dir: string, private readonly roles: () => Roles, private readonly ledger: LedgerBook) {}

  /** The share store of one member. */
  async store (userId: string): Promise<LocalShareStore> {
    if (!/^[0-9a-f]{64}$/.test(userId)) throw new RefusedError('bad owner id')
    let s = this.held.get(userId)
    if (s === undefined) {
      s = LocalShareStore.open(join(this.dir, 'held', userId))
      this.held.set(userId, s)
    }
    return await s
  }

  /** The share store of every member we hold anything for. */
  async stores (): Promise<Array<{ owner: string, store: ShareStore }>> {
    const owners = (await readdir(join(this.dir, 'held')).catch(() => [] as string[])).filter(o => /^[0-9a-f]{64}$/.test(o))
    return await Promise.all(owners.map(async owner => ({ owner, store: await this.store(owner) })))
  }

  /** Bytes held per member, from disk. */
  async bytesPerOwner (): Promise<Record<string, number>> {
    const out: Record<string, number> = {}
    for (const { owner, store } of await this.stores()) out[owner] = (await store.usage()).bytes
    return out
  }

  /** Re-reads free disk space and what is held; returns bytes held per member (undefined if unreadable). */
  async refresh (): Promise<Record<string, number> | undefined> {
    this.freeDisk = await this.freeDiskBytes().catch(() => 0)
    const held = await this.bytesPerOwner().catch(() => undefined)
    if (held !== undefined) {
      this.usedCache = Object.values(held).reduce((a, b) => a + b, 0)
      this.pendingFor.clear()
    }
    return held
  }

  /** The persister quota: what the user set with `contribute`, or a share of the free disk. */
  quotaBytes (): number {
    const set = this.roles().contributeBytes
    if (set !== null) return set
    return Math.floor(this.freeDisk * AUTO_CONTRIBUTE_SHARE) + this.usedCache
  }

  get usedBytes (): number { return this.usedCache }

  /** A refusal reason if `owner` may not add `addBytes` now, else undefined (and the bytes are counted). */
  admit (owner: string, addBytes: number): string | undefined {
    const quota = this.quotaBytes()
    if (quota <= 0) return 'this node does not contribute storage (p2pbak contribute SIZE)'
    if (this.usedCache + addBytes > quota) return `this node's quota of ${quota} bytes is used up`
    const unfair = this.ledger.refusal(owner, addBytes + (this.pendingFor.get(owner) ?? 0))
    if (unfair !== undefined) return unfair
    this.usedCache += addBytes
    this.pendingFor.set(owner, (this.pendingFor.get(owner) ?? 0) + addBytes)
    return undefined
  }

  async freeDiskBytes (): Promise<number> {
    try { const s = await statfs(this.dir); return s.bavail * s.bsize } catch (err: unknown) { throw new RefusedError(errorMessage(err)) }
  }

  async close (): Promise<void> {
    for (const s of this.held.values()) await (await s).close().catch((err: unknown) => { log.error('closing a held store: %s', errorMessage(err)) })
  }
}
