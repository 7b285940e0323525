/**
 * A seeded, deterministic simulation of one friend group (simulations/README.md): N nodes, each its
 * own person, on an in-memory network with a virtual clock advancing an hour a step. Nodes churn
 * (always-on desktops with rare outages, laptops asleep overnight and away on trips), lose their disks
 * or die; publishers back up daily and run the very ErasurePackStore, Auditor and Repairer of the
 * daemon against the holders' MemoryShareStores. Every random choice comes from seeded streams, one
 * per node and one per publisher, so the churn and the disk losses do not depend on whether audits
 * and repair run: runs that differ only in policy see the same events.
 */
import { mkdtempSync, rmSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NotEnoughSharesError, NotFoundError, PlacementFailedError, TimeoutError } from '../src/errors.js'
import { contentHash } from '../src/crypto/index.js'
import { asPackId, type PackId } from '../src/ids.js'
import { SHARE_HEADER_BYTES } from '../src/format/share.js'
import { MemoryShareStore, IndexDb, shareRefName, type ShareRef, type ShareStore } from '../src/store/index.js'
import { ErasurePackStore, type GroupPackStore } from '../src/repo/index.js'
import { proveShare, ShareGoneError, type ProofAnswer } from '../src/protocols/audit.js'
import { Auditor, type AuditPolicy } from '../src/repair/auditor.js'
import { Repairer, type RepairPolicy } from '../src/repair/repairer.js'
import { mayReceiveShares, recordProbes, reliabilityOf } from '../src/repair/reliability.js'
import type { Candidate } from '../src/placement/index.js'
import { toHex } from '../src/util/bytes.js'
import { NetStore, SimNode, between, mulberry32, randomBytes, stream, type Traffic } from './model.js'

export { mulberry32 }
export { DEFAULT_PARAMS, type ScriptedEvent, type SimParams, type SimReport } from './params.js'
import { DEFAULT_PARAMS, type ScriptedEvent, type SimParams, type SimReport } from './params.js'

const HOUR = 3600_000
const YEAR_HOURS = 365 * 24
/** virtual time starts here (2025-01-01T00:00Z), so dates in the index look like dates */
const EPOCH = Date.UTC(2025, 0, 1)

interface PackMeta { id: PackId, bytes: number, k: number, m: number }

interface Publisher {
  node: SimNode
  dir: string
  index: IndexDb
  store: ErasurePackStore
  auditor: Auditor
  repairer: Repairer
  rng: () => number
  pending: Uint8Array[]
  lastBackupDay: number
  packs: Map<string, PackMeta>
}

/** Runs one simulation; the same params always give the same report. */
export async function simulate (input: Partial<SimParams> = {}): Promise<SimReport> {
  const p: SimParams = { ...DEFAULT_PARAMS, ...input, audit: { ...DEFAULT_PARAMS.audit, ...input.audit }, repair: { ...DEFAULT_PARAMS.repair, ...input.repair } }
  const { k, m } = p.scheme
  if (p.nodes - 1 < k + m) throw new Error(`${k}+${m} needs ${k + m + 1} nodes at least, got ${p.nodes}`)
  let hour = 0
  const now = (): number => EPOCH + hour * HOUR
  const traffic: Traffic = { phase: 'other', placeUp: 0, repairUp: 0 }
  const nodes = Array.from({ length: p.nodes }, (_, i) => new SimNode(i, `sim-peer-${String(i).padStart(3, '0')}`, stream(p.seed, `node/${i}`), p.alwaysOnFraction))
  const byPeer = new Map(nodes.map(n => [n.peerId, n]))
  const report = newReport(p)
  /** k-share downloads of the current repair round, by pack */
  let decoded = new Map<string, number>()
  const tmpRoot = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()

  const publishers: Publisher[] = nodes.slice(0, p.publishers).map(node => {
    const dir = mkdtempSync(join(tmpRoot, 'p2pbak-sim-'))
    const index = IndexDb.open(dir)
    const owner = node.personId
    const directory = {
      ownPersonId: owner,
      candidates: (): Candidate[] => nodes.filter(n => n !== node && (!p.reliabilityFilter || mayReceiveShares(index.audit.getPeer(n.peerId))))
        .map(n => ({ peerId: n.peerId, personId: n.personId, online: n.reachable, freeBytes: Math.max(0, p.capacityBytes - n.used), reliability: reliabilityOf(index.audit.getPeer(n.peerId)) })),
      storeFor: (peerId: string): ShareStore => new NetStore(byPeer.get(peerId) as SimNode, owner, traffic, p.capacityBytes)
    }
    const store = new ErasurePackStore(new MemoryShareStore(`${node.peerId}/local`), directory, index, { scheme: p.scheme, now, repairFetchTimeoutMs: 30_000 })
    const rng = stream(p.seed, `publisher/${node.i}`)
    const auditor = new Auditor(index, {
      online: (peer) => byPeer.get(peer)?.reachable === true,
      prove: async (peer, ref, nonce, count): Promise<ProofAnswer> => {
        const holder = byPeer.get(peer)
        if (holder?.reachable !== true) throw new TimeoutError(`${peer} does not answer`)
        try {
          return await proveShare(holder.storeFor(owner), undefined, owner, ref, nonce, count)
        } catch (err: unknown) {
          // over the wire an absent share is NOT_FOUND, which requestProof turns into ShareGoneError
          if (err instanceof NotFoundError && !(err instanceof ShareGoneError)) throw new ShareGoneError(err.message, false)
          throw err
        }
      },
      damaged: async (peer) => {
        const holder = byPeer.get(peer)
        if (holder?.reachable !== true) throw new TimeoutError(`${peer} does not answer`)
        return damagedReports(holder, owner, hour, p.scrubDelayHours)
      }
    }, { policy: { ...p.audit, concurrency: 1 }, now, random: rng, nonce: () => randomBytes(rng, 32) })
    // repair reads through a view that counts the k shares each decode needs
    const view: GroupPackStore = {
      index, peers: store.peers, init: store.init, localPacks: store.localPacks,
      onlineCandidates: () => store.onlineCandidates(),
      eligibleCandidates: () => store.eligibleCandidates(),
      answeringHolders: () => store.answeringHolders(),
      peopleInGroup: () => store.peopleInGroup(),
      noRoom: (peer) => { store.noRoom(peer) },
      personOf: (peer, c) => store.personOf(peer, c),
      putPack: async (id, pack, o) => await store.putPack(id, pack, o),
      schemeNow: (c) => store.schemeNow(c),
      candidatesWithRoom: (bytes) => store.candidatesWithRoom(bytes),
      ownCopy: async (id, o) => await store.ownCopy(id, o),
      syncRecords: async (o) => await store.syncRecords(o),
      fetchAndDecodeWithScheme: async (id, holders, o) => {
        // workaround: the store's fetch never settles for an empty holder map (see README, library issues)
        if (holders.size === 0) throw new NotEnoughSharesError(`pack ${toHex(id).slice(0, 16)}: no holder of a good share is reachable`)
        const r = await store.fetchAndDecodeWithScheme(id, holders, o)
        decoded.set(toHex(id), r.k * shareBytes(r.pack.byteLength, r.k, index, id))
        return r
      }
    }
    const repairer = new Repairer(view, { online: (peer) => byPeer.get(peer)?.reachable === true, isMember: () => true }, { policy: p.repair, now })
    return { node, dir, index, store, auditor, repairer, rng, pending: [], lastBackupDay: -1, packs: new Map() }
  })

  const healthSum = { sum: 0, n: 0, min: k + m, readable: 0 }
  /** packs (hex) seen with fewer than k intact shares on friends while their publisher kept its own copy */
  const rescued = new Set<string>()
  try {
    for (const pub of publishers) for (let i = 0; i < p.initialPacks; i++) pub.pending.push(newPack(pub.rng, p))
    const hours = p.days * 24
    for (hour = 0; hour < hours; hour++) {
      for (const n of nodes) await churn(n, hour, p, n.i < p.publishers, report)
      for (const e of p.events) if (e.atHour === hour) applyEvent(nodes[e.node] as SimNode, e.kind, hour, report, 0.5, e.hours)
      let online = 0
      for (const n of nodes) if (n.reachable) { online++; n.onlineHours++ }
      report.onlineFraction += online / nodes.length / hours
      for (const pub of publishers) {
        if (!pub.node.reachable) continue
        await recordProbes(pub.index.audit, new Map(nodes.filter(n => n !== pub.node).map(n => [n.peerId, n.reachable])), now())
        const day = Math.floor(hour / 24)
        if (day > pub.lastBackupDay) {
          pub.lastBackupDay = day
          const count = Math.floor(p.packsPerDay) + (pub.rng() < p.packsPerDay % 1 ? 1 : 0)
          if (hour > 0) for (let i = 0; i < count; i++) pub.pending.push(newPack(pub.rng, p))
        }
        traffic.phase = 'place'
        await placePending(pub, p, now())
        traffic.phase = 'other'
        if (p.audit.enabled) {
          const r = await pub.auditor.round()
          report.auditBytes += r.bytes
          report.auditChallenges += r.challenged
          report.auditFailures += r.failed
        }
        if (p.repair.enabled) {
          traffic.phase = 'repair'
          decoded = new Map()
          const r = await pub.repairer.round()
          let wasted = 0
          for (const f of r.failed) wasted += decoded.get(f.pack) ?? 0
          report.repairWastedDownloadBytes += wasted
          for (const bytes of decoded.values()) report.repairDownloadBytes += bytes
          report.repairDownloadBytes -= wasted
          traffic.phase = 'other'
          report.repairs += r.repairedShares
          report.repairedPacks += r.repairedPacks
          report.repairFailures += r.failed.length
        }
      }
      if ((hour + 1) % p.sampleEveryHours === 0) {
        const s = await sample(publishers, nodes, k, m, rescued)
        healthSum.sum += s.healthSum; healthSum.n += s.packs; healthSum.min = Math.min(healthSum.min, s.healthMin); healthSum.readable += s.readable
        if (s.lost > 0 && report.firstLossDay === null) report.firstLossDay = Math.floor(hour / 24)
      }
    }
    const last = await sample(publishers, nodes, k, m, rescued)
    report.packsLost = last.lost
    report.ownCopies = last.ownCopies
    report.packsRescuedByOwnCopy = rescued.size
    if (last.lost > 0 && report.firstLossDay === null) report.firstLossDay = p.days
    report.finalHealthAvg = round(last.packs === 0 ? 0 : last.healthSum / last.packs)
    report.finalHealthMin = last.packs === 0 ? 0 : last.healthMin
    report.healthAvg = round(healthSum.n === 0 ? 0 : healthSum.sum / healthSum.n)
    report.healthMin = Math.min(healthSum.min, report.finalHealthMin)
    report.availability = round(healthSum.n === 0 ? 0 : healthSum.readable / healthSum.n, 4)
    for (const pub of publishers) {
      report.packsPending += pub.pending.length
      for (const meta of pub.packs.values()) { report.packsPlaced++; report.packBytes += meta.bytes }
    }
    let stored = 0
    for (const n of nodes) if (!n.dead) stored += n.used
    report.storageOverhead = round(report.packBytes === 0 ? 0 : stored / report.packBytes)
    report.placementBytes = traffic.placeUp
    report.repairUploadBytes = traffic.repairUp
    report.repairTrafficBytes = traffic.repairUp + report.repairDownloadBytes
    report.onlineFraction = round(report.onlineFraction, 4)
    return report
  } finally {
    for (const pub of publishers) {
      await pub.index.close().catch(() => {})
      rmSync(pub.dir, { recursive: true, force: true })
    }
  }
}

function newReport (p: SimParams): SimReport {
  return {
    scheme: `${p.scheme.k}+${p.scheme.m}`, nodes: p.nodes, publishers: p.publishers, days: p.days, seed: p.seed,
    events: { diskLosses: 0, deaths: 0, corruptions: 0 }, onlineFraction: 0, packsPlaced: 0, packsPending: 0, packBytes: 0,
    packsLost: 0, firstLossDay: null, ownCopies: 0, packsRescuedByOwnCopy: 0, repairs: 0, repairedPacks: 0, repairFailures: 0, placementBytes: 0,
    repairUploadBytes: 0, repairDownloadBytes: 0, repairWastedDownloadBytes: 0, repairTrafficBytes: 0, auditBytes: 0, auditChallenges: 0, auditFailures: 0,
    storageOverhead: 0, healthAvg: 0, healthMin: 0, finalHealthAvg: 0, finalHealthMin: 0, availability: 0
  }
}

const round = (x: number, digits = 3): number => Math.round(x * 10 ** digits) / 10 ** digits

function newPack (rng: () => number, p: SimParams): Uint8Array {
  return randomBytes(rng, between(rng, p.packBytes.min, p.packBytes.max))
}

/** Size of one share as placed (the commitment records it); header + ceil(len / k) as a fallback. */
function shareBytes (packLength: number, k: number, index: IndexDb, id: PackId): number {
  for (const a of index.audit.sharesOf(id).values()) return a.length
  return SHARE_HEADER_BYTES + Math.ceil(packLength / k)
}

/** One hour of a node's life: outages, trips, sleep, disk loss, death, bit rot. */
async function churn (n: SimNode, hour: number, p: SimParams, publisher: boolean, report: SimReport): Promise<void> {
  const r = n.rng
  // the same draws every hour whatever happens, so a node's stream never shifts
  const [loss, death, rot, pick, outage, span, use] = [r(), r(), r(), r(), r(), r(), r()]
  if (n.dead) return
  if (loss < p.diskLossesPerNodeYear / YEAR_HOURS) applyEvent(n, 'disk-loss', hour, report, span)
  if (!publisher && death < p.deathsPerNodeYear / YEAR_HOURS) { applyEvent(n, 'death', hour, report); return }
  if (rot < p.corruptionsPerNodeYear / YEAR_HOURS) await corruptOne(n, pick, hour, report)
  const local = (hour + n.tz) % 24
  if (!n.laptop) {
    if (hour >= n.offlineUntil && outage < p.desktopOutagesPerYear / YEAR_HOURS) n.offlineUntil = hour + 1 + Math.floor(span * 24)
    n.online = hour >= n.offlineUntil
    return
  }
  if (local === 0 || hour === 0) n.usedToday = use < p.laptopDailyUse
  if (hour >= n.offlineUntil && outage < p.laptopTripsPerYear / YEAR_HOURS) n.offlineUntil = hour + 24 * (2 + Math.floor(span * 9))
  const inWindow = local >= n.wake && local < n.wake + n.awake
  n.online = hour >= n.offlineUntil && n.usedToday && inWindow
}

function applyEvent (n: SimNode, kind: ScriptedEvent['kind'], hour: number, report: SimReport, span = 0.5, hours = 0): void {
  if (n.dead) return
  if (kind === 'away') {
    n.online = false
    n.offlineUntil = Math.max(n.offlineUntil, hour + hours)
    return
  }
  if (kind === 'death') {
    n.dead = true; n.online = false; n.wipe()
    report.events.deaths++
    return
  }
  n.wipe()
  n.online = false
  n.offlineUntil = Math.max(n.offlineUntil, hour + 2 + Math.floor(span * 47))
  report.events.diskLosses++
}

/** Flips one byte in the data of one share the node holds (chosen by `pick`). */
async function corruptOne (n: SimNode, pick: number, hour: number, report: SimReport): Promise<void> {
  const all: Array<{ owner: string, ref: ShareRef }> = []
  for (const [owner, s] of n.stores) for await (const ref of s.list()) all.push({ owner, ref })
  const c = all[Math.floor(pick * all.length)]
  if (c === undefined) return
  const s = n.storeFor(c.owner)
  const size = await s.size(c.ref)
  if (size <= SHARE_HEADER_BYTES) return
  s.corrupt(c.ref, SHARE_HEADER_BYTES + Math.floor(pick * 7919) % (size - SHARE_HEADER_BYTES))
  n.damaged.set(`${c.owner}/${shareRefName(c.ref)}`, hour)
  report.events.corruptions++
}

function damagedReports (holder: SimNode, owner: string, hour: number, delay: number): ShareRef[] {
  if (delay <= 0) return []
  const out: ShareRef[] = []
  for (const [key, at] of holder.damaged) {
    if (!key.startsWith(`${owner}/`) || hour - at < delay) continue
    const [pack, index] = key.slice(owner.length + 1).split('.') as [string, string]
    out.push({ pack: asPackId(Uint8Array.from(Buffer.from(pack, 'hex'))), index: Number(index) })
  }
  return out
}

/** Places waiting packs while k + m other people are online and reliable enough. */
async function placePending (pub: Publisher, p: SimParams, now: number): Promise<void> {
  const { k, m } = p.scheme
  while (pub.pending.length > 0) {
    const bytes = pub.pending[0] as Uint8Array
    // the people who answer with room for it, as the store itself counts them (candidatesWithRoom)
    const people = new Set(pub.store.candidatesWithRoom(bytes.byteLength).map(c => c.personId)).size
    if (people < k + m) return
    const id = asPackId(contentHash(bytes))
    try {
      const placed = await pub.store.putPack(id, bytes)
      await pub.index.addPack({ id, size: bytes.byteLength, blobs: 0, k: placed.k, m: placed.m, time: now, kind: 0 }, [])
      pub.packs.set(toHex(id), { id, bytes: bytes.byteLength, k: placed.k, m: placed.m })
      pub.pending.shift()
    } catch (err: unknown) {
      if (!(err instanceof PlacementFailedError)) throw err
      return // a holder failed or refused: try again next hour
    }
  }
}

interface Sample { packs: number, healthSum: number, healthMin: number, lost: number, readable: number, ownCopies: number }

/** Health, readability and loss of every placed pack, from what the holders really have. */
async function sample (publishers: Publisher[], nodes: SimNode[], k: number, m: number, rescued: Set<string>): Promise<Sample> {
  const out: Sample = { packs: 0, healthSum: 0, healthMin: k + m, lost: 0, readable: 0, ownCopies: 0 }
  const byPeer = new Map(nodes.map(n => [n.peerId, n]))
  for (const pub of publishers) {
    const owner = pub.node.personId
    // every intact share of this owner on a node that is not dead
    const anywhere = new Map<string, Set<number>>()
    for (const n of nodes) {
      if (n.dead) continue
      const s = n.stores.get(owner)
      if (s === undefined) continue
      for await (const ref of s.list()) {
        if (n.damaged.has(`${owner}/${shareRefName(ref)}`)) continue
        const key = toHex(ref.pack)
        let set = anywhere.get(key)
        if (set === undefined) { set = new Set(); anywhere.set(key, set) }
        set.add(ref.index)
      }
    }
    for (const [hex, meta] of pub.packs) {
      const placement = pub.index.getPlacement(meta.id) ?? new Map<number, string>()
      let health = 0
      let online = 0
      for (const [index, holder] of placement) {
        const n = byPeer.get(holder.slice(5))
        if (n === undefined || n.dead || n.damaged.has(`${owner}/${shareRefName({ pack: meta.id, index })}`)) continue
        if (await (n.stores.get(owner)?.has({ pack: meta.id, index }) ?? false)) { health++; if (n.online) online++ }
      }
      out.packs++
      out.healthSum += health
      out.healthMin = Math.min(out.healthMin, health)
      if (online >= meta.k) out.readable++
      // the publisher's own copy (keepsOwnCopy) counts: its disk loss is not modelled (README)
      const short = (anywhere.get(hex)?.size ?? 0) < meta.k
      if (await pub.store.localPacks.hasPack(meta.id)) {
        out.ownCopies++
        if (short) rescued.add(hex)
      } else if (short) out.lost++
    }
  }
  return out
}
