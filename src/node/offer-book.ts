/**
 * What each member device offers (roles, quota, free space), as signed offer records
 * (docs/format/offer.md): this node signs its own and publishes it in the group's DHT when it changes
 * (and hourly), and keeps the newest verified offer of every other device, learned from the DHT. The
 * space protocol answers for devices that are online; the DHT record is what a member announced
 * last, so roles and space stay known while it is away, and a change reaches the group without
 * anyone polling it.
 */
import {
  encodeOffer, isNewerOffer, offerKey, selectNewestOffer, signOffer, verifyOfferRecord, type OfferRecord, type Roster
} from '../peers/index.js'
import { NotMemberError, UnauthenticatedError, errorMessage } from '../errors.js'
import type { SpaceInfo } from '../protocols/group.js'
import type { Home } from './home.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('node')

/** An unchanged offer is announced again after this long (DHT holders drop records after 48 h). */
export const OFFER_REPUBLISH_MS = 3600 * 1000
/** A device's offer found in the DHT is looked up again after this long (while it stays away). */
export const OFFER_LOOKUP_MS = 10 * 60 * 1000
/** Used bytes may drift this fraction of the quota before the offer is announced again. */
const DRIFT = 0.01

/** The DHT surface this book needs (kad-dht's put and get, as event streams). */
export interface OfferDht {
  put: (key: Uint8Array, value: Uint8Array, options?: { signal?: AbortSignal }) => AsyncIterable<unknown>
  get: (key: Uint8Array, options?: { signal?: AbortSignal }) => AsyncIterable<{ name: string, value?: Uint8Array }>
}

export class OfferBook {
  private readonly offers = new Map<string, OfferRecord>()
  private announced: OfferRecord | undefined
  private announcedAtMs = 0
  /** when a lookup last found an offer, per device */
  private readonly foundAtMs = new Map<string, number>()

  constructor (private readonly home: Home, private readonly roster: () => Roster | null, private readonly peerId: string) {}

  /** the offer put and lookups of the last refresh, while they run */
  private announcing: Promise<void> | undefined

  /**
   * Puts our offer (`info`) in the DHT if it changed, and reads the offers of the devices we could not
   * reach (`away`): in the background, one run at a time, since offers are for status and members
   * and nothing waits on them.
   */
  announceSoon (dht: OfferDht, info: SpaceInfo, away: readonly string[], timeoutMs: number): void {
    if (this.announcing !== undefined) return
    this.announcing = Promise.all([this.publish(dht, info, timeoutMs), ...away.map(async id => await this.lookup(dht, id, timeoutMs))])
      .then(() => {}, (err: unknown) => { log('announcing our offer failed (tried again next refresh): %s', errorMessage(err)) })
      .finally(() => { this.announcing = undefined })
  }

  /** The newest verified offer of a device (this one's included), if any. */
  get (peerId: string): OfferRecord | undefined { return this.offers.get(peerId) }

  /**
   * kad-dht validator for the `p2pbak` key namespace: only valid offers of roster devices are stored
   * or taken from an answer. A valid one pushed to us (a member announcing a change) is kept at once.
   */
  readonly validate = (key: Uint8Array, value: Uint8Array): void => {
    const r = this.roster()
    if (r === null) throw new NotMemberError('this node is in no group: it stores no offer records')
    const o = verifyOfferRecord(this.home.sodium, r, key, value, Date.now())
    // kad-dht stores what passes here without asking the selector: refuse a stale offer, or any
    // member could roll a device's record back to an older one it once saw
    const held = this.offers.get(o.peerId)
    if (held !== undefined && isNewerOffer(held, o)) throw new UnauthenticatedError(`an offer of ${o.peerId} older than the one held`)
    this.keep(o)
  }

  /** kad-dht selector for the `p2pbak` key namespace: the newest offer wins. */
  readonly select = (_key: Uint8Array, values: Uint8Array[]): number => selectNewestOffer(values)

  /** Whether an offer verifies against the roster (it is kept when newer than the one held). */
  accept (key: Uint8Array, value: Uint8Array): boolean {
    try {
      this.validate(key, value)
      return true
    } catch (err: unknown) {
      log('offer refused: %s', errorMessage(err))
      return false
    }
  }

  private keep (o: OfferRecord): void {
    const prev = this.offers.get(o.peerId)
    if (prev === undefined || isNewerOffer(o, prev)) this.offers.set(o.peerId, o)
  }

  /**
   * Signs this device's offer and puts it in the DHT when it differs from the last one announced
   * (roles, quota, or used bytes by more than 1 % of the quota) or is an hour old. Returns whether
   * it was put; a DHT with no reachable peer keeps the record locally and tries again next time.
   */
  async publish (dht: OfferDht, info: SpaceInfo, timeoutMs: number, now = Date.now()): Promise<boolean> {
    const r = this.roster()
    if (r === null || this.home.identity.signSecretKey === null) return false
    const prev = this.announced
    if (prev !== undefined && prev.groupId === r.groupId && now - this.announcedAtMs < OFFER_REPUBLISH_MS && !changed(prev, info)) return false
    const offer = signOffer(this.home.sodium, this.home.identity, {
      groupId: r.groupId, peerId: this.peerId, time: Math.max(now, (prev?.time ?? 0) + 1), ...info
    })
    this.offers.set(this.peerId, offer)
    let reached = 0
    try {
      for await (const evt of dht.put(offerKey(r.groupId, this.peerId), encodeOffer(offer), { signal: AbortSignal.timeout(timeoutMs) })) {
        if ((evt as { name?: string }).name === 'PEER_RESPONSE') reached++
      }
    } catch (err: unknown) {
      // timed out or no peers: the record is in the local store, members get it from us or next time
      log('announcing our offer reached %d peer(s): %s', reached, errorMessage(err))
    }
    if (reached === 0) return false
    this.announced = offer
    this.announcedAtMs = now
    return true
  }

  /**
   * Asks the DHT for a device's offer (for a member not reachable now); the newest valid one found is
   * kept. A device whose offer a lookup found is asked about again only after OFFER_LOOKUP_MS.
   */
  async lookup (dht: OfferDht, peerId: string, timeoutMs: number, now = Date.now()): Promise<OfferRecord | undefined> {
    const r = this.roster()
    if (r === null) return undefined
    if (now - (this.foundAtMs.get(peerId) ?? -Infinity) < OFFER_LOOKUP_MS) return this.offers.get(peerId)
    const key = offerKey(r.groupId, peerId)
    let found = false
    try {
      for await (const evt of dht.get(key, { signal: AbortSignal.timeout(timeoutMs) })) {
        if (evt.name === 'VALUE' && evt.value !== undefined && this.accept(key, evt.value)) found = true
      }
    } catch (err: unknown) {
      // a query that times out still leaves what it found
      log('looking up the offer of %s ended early: %s', peerId, errorMessage(err))
    }
    if (found) this.foundAtMs.set(peerId, now)
    return this.offers.get(peerId)
  }
}

function changed (prev: OfferRecord, info: SpaceInfo): boolean {
  if (prev.persister !== info.persister || prev.publisher !== info.publisher || prev.quotaBytes !== info.quotaBytes) return true
  return Math.abs(prev.usedBytes - info.usedBytes) > DRIFT * Math.max(info.quotaBytes, 1)
}

