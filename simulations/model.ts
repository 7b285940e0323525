/**
 * The simulated world of simulations/friend-group.ts: seeded random streams, nodes (desktops and
 * laptops with their own schedules, disks that can be wiped) and the in-memory network through which
 * a publisher sees a holder's store (unreachable while the holder is offline or dead).
 */
import { NoSpaceError, TimeoutError } from '../src/errors.js'
import { contentHash } from '../src/crypto/index.js'
import { MemoryShareStore, shareRefName, type AbortOptions, type ShareRef, type ShareStore, type StoreUsage } from '../src/store/index.js'
import { toHex } from '../src/util/bytes.js'

export function mulberry32 (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** An independent stream per purpose: FNV-1a of the seed and a tag seeds mulberry32. */
export function stream (seed: number, tag: string): () => number {
  let h = 0x811c9dc5
  for (const c of `${seed}/${tag}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0
  return mulberry32(h)
}

export function randomBytes (rng: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i += 4) {
    const v = Math.floor(rng() * 4294967296)
    for (let j = 0; j < 4 && i + j < n; j++) out[i + j] = (v >>> (8 * j)) & 0xff
  }
  return out
}

export const between = (rng: () => number, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1))

export class SimNode {
  readonly personId: string
  readonly laptop: boolean
  readonly wake: number
  readonly awake: number
  readonly tz: number
  online = false
  dead = false
  usedToday = true
  offlineUntil = 0
  onlineHours = 0
  used = 0
  stores = new Map<string, MemoryShareStore>()
  /** `${owner}/${share}` -> hour it was damaged */
  damaged = new Map<string, number>()

  constructor (readonly i: number, readonly peerId: string, readonly rng: () => number, alwaysOnFraction: number) {
    this.personId = toHex(contentHash(new TextEncoder().encode(`p2pbak-sim/person/${i}`)))
    this.laptop = rng() >= alwaysOnFraction
    this.wake = between(rng, 7, 10)
    this.awake = between(rng, 6, 14)
    this.tz = between(rng, 0, 2)
  }

  get reachable (): boolean { return this.online && !this.dead }

  storeFor (owner: string): MemoryShareStore {
    let s = this.stores.get(owner)
    if (s === undefined) { s = new MemoryShareStore(`${this.peerId}/${owner.slice(0, 8)}`); this.stores.set(owner, s) }
    return s
  }

  wipe (): void { this.stores = new Map(); this.damaged.clear(); this.used = 0 }
}

export interface Traffic { phase: 'place' | 'repair' | 'other', placeUp: number, repairUp: number }

/** A holder's store for one owner as the network shows it: unreachable while offline or dead. */
export class NetStore implements ShareStore {
  readonly id: string
  constructor (private readonly node: SimNode, private readonly owner: string, private readonly traffic: Traffic, private readonly capacity: number) {
    this.id = `sim:${node.peerId}/${owner.slice(0, 8)}`
  }

  private reach (): MemoryShareStore {
    if (!this.node.reachable) throw new TimeoutError(`${this.node.peerId} does not answer`)
    return this.node.storeFor(this.owner)
  }

  async put (ref: ShareRef, data: Uint8Array, o?: AbortOptions): Promise<void> {
    const s = this.reach()
    const prev = await s.has(ref) ? await s.size(ref) : 0
    if (this.node.used - prev + data.byteLength > this.capacity) throw new NoSpaceError(`${this.node.peerId} is full`)
    await s.put(ref, data, o)
    this.node.used += data.byteLength - prev
    this.node.damaged.delete(`${this.owner}/${shareRefName(ref)}`)
    if (this.traffic.phase === 'place') this.traffic.placeUp += data.byteLength
    if (this.traffic.phase === 'repair') this.traffic.repairUp += data.byteLength
  }

  async get (ref: ShareRef, o?: AbortOptions): Promise<Uint8Array> { return await this.reach().get(ref, o) }
  async getRange (ref: ShareRef, off: number, len: number, o?: AbortOptions): Promise<Uint8Array> { return await this.reach().getRange(ref, off, len, o) }
  async has (ref: ShareRef, o?: AbortOptions): Promise<boolean> { return await this.reach().has(ref, o) }
  async size (ref: ShareRef, o?: AbortOptions): Promise<number> { return await this.reach().size(ref, o) }
  async delete (ref: ShareRef, o?: AbortOptions): Promise<void> {
    const s = this.reach()
    if (await s.has(ref)) this.node.used -= await s.size(ref)
    await s.delete(ref, o)
    this.node.damaged.delete(`${this.owner}/${shareRefName(ref)}`)
  }

  list (o?: AbortOptions): AsyncIterable<ShareRef> { return this.reach().list(o) }
  async putRecord (id: Uint8Array, data: Uint8Array, o?: AbortOptions): Promise<void> { await this.reach().putRecord(id, data, o) }
  async getRecord (id: Uint8Array, o?: AbortOptions): Promise<Uint8Array> { return await this.reach().getRecord(id, o) }
  async hasRecord (id: Uint8Array, o?: AbortOptions): Promise<boolean> { return await this.reach().hasRecord(id, o) }
  async deleteRecord (id: Uint8Array, o?: AbortOptions): Promise<void> { await this.reach().deleteRecord(id, o) }
  listRecords (o?: AbortOptions): AsyncIterable<Uint8Array> { return this.reach().listRecords(o) }
  async usage (o?: AbortOptions): Promise<StoreUsage> { return await this.reach().usage(o) }
  async close (): Promise<void> {}
}

