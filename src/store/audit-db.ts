/**
 * What the publisher remembers about the shares it placed and the peers holding them, in the index's
 * lmdb environment (docs/format/index.md §audits):
 *   audits:   pack id (32) || share index (1) -> the share's commitment (Merkle root, length) and audit state
 *   peers:    peer id (UTF-8) -> uptime and audit record of one peer (JSON)
 *   releases: peer id (UTF-8) || 0x00 || pack id (32) || index (1) -> empty: a share moved away from that
 *             peer by a repair, to be deleted there once it answers
 * Commitments can be recomputed from the packs; the rest is history that only steers scheduling and
 * placement, so losing it loses no data.
 */
import type { Database } from 'lmdb'
import { FormatError, errorMessage } from '../errors.js'
import { scopedLogger } from '../util/log.js'
import { asPackId, ID_BYTES, type PackId } from '../ids.js'
import { ByteReader, ByteWriter, utf8Decode, utf8Encode } from '../util/bytes.js'
import type { ShareRef } from './share-store.js'

const log = scopedLogger('store:audit')

type Bin = Database<Buffer, Buffer>

export type ShareState = 'unknown' | 'ok' | 'failed'
const STATES: readonly ShareState[] = ['unknown', 'ok', 'failed']

export interface ShareAudit {
  /** Merkle root over the share's segments (crypto/merkle.ts) */
  root: Uint8Array
  /** share length in bytes */
  length: number
  /** when the next challenge is due, ms since the epoch */
  nextDueMs: number
  /** last challenge sent (0 = never) */
  lastCheckMs: number
  /** last challenge passed (0 = never) */
  lastPassMs: number
  /** 'failed' = the holder lost or altered it: it must be repaired */
  state: ShareState
  /** challenges failed or timed out in a row */
  strikes: number
  /** why it failed, for status */
  reason: string
}

export interface PeerRecord {
  firstSeenMs: number
  /** last time the peer answered anything (0 = never) */
  lastSeenMs: number
  /** last time we looked (probe or challenge) */
  lastProbeMs: number
  /** time-weighted uptime: decayed ms seen online and ms observed */
  onlineMs: number
  observedMs: number
  passes: number
  fails: number
  timeouts: number
  /** decayed pass rate of challenges, 0..1 (1 until a challenge fails) */
  auditScore: number
  lastResult: 'pass' | 'fail' | 'timeout' | 'none'
  lastResultMs: number
  /** when a failed challenge last halved auditScore (absent or 0: never); failures of the same loss do not halve it again */
  halvedMs?: number
}

export function newPeerRecord (now: number): PeerRecord {
  return { firstSeenMs: now, lastSeenMs: 0, lastProbeMs: 0, onlineMs: 0, observedMs: 0, passes: 0, fails: 0, timeouts: 0, auditScore: 1, lastResult: 'none', lastResultMs: 0 }
}

function shareKey (pack: Uint8Array, index: number): Buffer {
  const k = Buffer.alloc(ID_BYTES + 1)
  k.set(pack, 0)
  k[ID_BYTES] = index
  return k
}

function encodeAudit (a: ShareAudit): Buffer {
  return Buffer.from(new ByteWriter(96).u8(1).raw(a.root).uvarint(a.length).uvarint(a.nextDueMs).uvarint(a.lastCheckMs)
    .uvarint(a.lastPassMs).u8(STATES.indexOf(a.state)).uvarint(a.strikes).string(a.reason.slice(0, 200)).finish())
}

function decodeAudit (b: Uint8Array): ShareAudit {
  const r = new ByteReader(b, 'audit entry')
  if (r.u8() !== 1) throw new FormatError('audit entry: unknown version')
  const a = { root: r.raw(32).slice(), length: r.uvarint(), nextDueMs: r.uvarint(), lastCheckMs: r.uvarint(), lastPassMs: r.uvarint(), state: STATES[r.u8()], strikes: r.uvarint(), reason: r.string(1024) }
  if (a.state === undefined) throw new FormatError('audit entry: unknown state')
  return a as ShareAudit
}

export class AuditDb {
  /** releases a holder refused for now (retention policy), by release key: when to try again */
  private readonly deferred = new Map<string, number>()

  constructor (private readonly audits: Bin, private readonly peers: Bin, private readonly releases: Bin) {}

  getShare (pack: Uint8Array, index: number): ShareAudit | undefined {
    const v = this.audits.getBinary(shareKey(pack, index))
    return v === undefined ? undefined : decodeAudit(v)
  }

  /** The audit entries of one pack, by share index. */
  sharesOf (pack: Uint8Array): Map<number, ShareAudit> {
    const out = new Map<number, ShareAudit>()
    const start = shareKey(pack, 0)
    const end = Buffer.concat([Buffer.from(pack), Buffer.from([0xff, 0xff])])
    for (const { key, value } of this.audits.getRange({ start, end })) out.set(key[ID_BYTES] as number, decodeAudit(value))
    return out
  }

  async putShare (pack: Uint8Array, index: number, a: ShareAudit): Promise<void> {
    await this.audits.put(shareKey(pack, index), encodeAudit(a))
  }

  async deleteShares (pack: Uint8Array): Promise<void> {
    const keys = [...this.audits.getRange({ start: shareKey(pack, 0), end: Buffer.concat([Buffer.from(pack), Buffer.from([0xff, 0xff])]) })].map(e => e.key)
    for (const k of keys) await this.audits.remove(k)
  }

  /** Every share entry, in (pack, index) order. */
  * shares (): Generator<{ pack: PackId, index: number, audit: ShareAudit }> {
    for (const { key, value } of this.audits.getRange({})) {
      yield { pack: asPackId(Uint8Array.from(key.subarray(0, ID_BYTES))), index: key[ID_BYTES] as number, audit: decodeAudit(value) }
    }
  }

  getPeer (peerId: string): PeerRecord | undefined {
    const v = this.peers.getBinary(Buffer.from(utf8Encode(peerId)))
    if (v === undefined) return undefined
    try { return JSON.parse(utf8Decode(v)) as PeerRecord } catch { return undefined }
  }

  async putPeer (peerId: string, rec: PeerRecord): Promise<void> {
    await this.peers.put(Buffer.from(utf8Encode(peerId)), Buffer.from(utf8Encode(JSON.stringify(rec))))
  }

  * listPeers (): Generator<{ peerId: string, record: PeerRecord }> {
    for (const { key, value } of this.peers.getRange({})) {
      let entry: { peerId: string, record: PeerRecord }
      try {
        entry = { peerId: utf8Decode(key), record: JSON.parse(utf8Decode(value)) as PeerRecord }
      } catch (err: unknown) {
        // a damaged entry is skipped (the peer's record starts again from its next contact), and said
        log.error('a peer record in the audit index cannot be read, skipped: %s', errorMessage(err))
        continue
      }
      yield entry
    }
  }

  async addRelease (peerId: string, ref: ShareRef): Promise<void> {
    await this.releases.put(releaseKey(peerId, ref), Buffer.alloc(0))
  }

  async removeRelease (peerId: string, ref: ShareRef): Promise<void> {
    await this.releases.remove(releaseKey(peerId, ref))
    this.deferred.delete(releaseKey(peerId, ref).toString('hex'))
  }

  /** Whether a delete of this copy is queued (the owner gave it up: pruned, or moved elsewhere). */
  hasRelease (peerId: string, ref: ShareRef): boolean {
    return this.releases.get(releaseKey(peerId, ref)) !== undefined
  }

  /** Not before `untilMs` (the holder's retention policy keeps the share until then); kept in memory only. */
  deferRelease (peerId: string, ref: ShareRef, untilMs: number): void {
    this.deferred.set(releaseKey(peerId, ref).toString('hex'), untilMs)
  }

  /** When a queued release may be sent again (0: now). */
  releaseDeferredUntil (peerId: string, ref: ShareRef): number {
    return this.deferred.get(releaseKey(peerId, ref).toString('hex')) ?? 0
  }

  /** Shares to delete on their old holders, grouped by peer. */
  pendingReleases (): Map<string, ShareRef[]> {
    const out = new Map<string, ShareRef[]>()
    for (const { key } of this.releases.getRange({})) {
      const sep = key.indexOf(0)
      if (sep < 1 || key.byteLength !== sep + 1 + ID_BYTES + 1) continue
      const peer = utf8Decode(key.subarray(0, sep))
      const ref = { pack: asPackId(Uint8Array.from(key.subarray(sep + 1, sep + 1 + ID_BYTES))), index: key[sep + 1 + ID_BYTES] as number }
      const list = out.get(peer) ?? []
      list.push(ref)
      out.set(peer, list)
    }
    return out
  }

  async clear (): Promise<void> {
    await this.audits.clearAsync()
    await this.releases.clearAsync()
  }
}

function releaseKey (peerId: string, ref: ShareRef): Buffer {
  return Buffer.concat([Buffer.from(utf8Encode(peerId)), Buffer.from([0]), shareKey(ref.pack, ref.index)])
}
