/**
 * Roles and space announced as signed offer records in the group's DHT (docs/format/offer.md), with
 * real NetworkNodes (TCP, Noise, yamux, kad-dht) on 127.0.0.1:
 *   A  creates the group; B and C contribute disk; D stays online throughout
 * A member's offer is known while it is away (from the DHT, not only from its last answer), a change
 * it announces reaches the others, a node that restarts with an empty memory learns the offers of
 * absent members from those present, and a member cannot plant an offer for another's device.
 * Waits poll with deadlines; no fixed sleeps.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { OfferDht } from '../../src/node/offer-book.js'
import { decodeOffer, encodeOffer, offerKey, signOffer } from '../../src/peers/index.js'
import { startNetPeer, stopNetPeers, type NetPeer } from '../helpers/network.js'
import { waitFor } from '../helpers/daemons.js'

const GiB = 1024 ** 3

type Peer = NetPeer

function dhtOf (p: Peer): OfferDht { return (p.net.node.services as unknown as { dht: OfferDht }).dht }

describe('integration: offers (roles and space) in the group\'s DHT', function () {
  this.timeout(90_000)
  let root: string
  const peers: Peer[] = []
  let A: Peer, B: Peer, C: Peer, D: Peer

  async function start (name: string, existing?: Peer['home']): Promise<Peer> {
    const p = await startNetPeer(root, name, { dht: true, ...(existing !== undefined ? { home: existing } : {}) })
    peers.push(p)
    return p
  }

  async function contribute (p: Peer, bytes: number): Promise<void> {
    p.net.state.file.roles.contributeBytes = bytes
    await p.net.state.save()
  }

  /** Refreshes `p` until its offer is in the DHT with the given quota, and `who` holds it. */
  async function announced (p: Peer, quota: number, ...who: Peer[]): Promise<void> {
    await waitFor(`${p.name}'s offer of ${quota} bytes to reach ${who.map(w => w.name).join(', ')}`, async () => {
      await p.net.refresh(3000)
      return who.every(w => w.net.offers.get(p.net.peerId)?.quotaBytes === quota)
    })
  }

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'p2pbak-offers-'))
    A = await start('a')
    B = await start('b')
    C = await start('c')
    D = await start('d')
    await A.net.createGroup('friends')
    for (const p of [B, C, D]) await p.net.join(await A.net.invite(60_000))
    await contribute(B, GiB)
    await contribute(C, 2 * GiB)
    for (const p of [A, B, C, D]) await p.net.refresh(3000)
  })

  after(async () => {
    await stopNetPeers(peers)
    rmSync(root, { recursive: true, force: true })
  })

  it('a member\'s offer stays known from the DHT while it is away', async () => {
    await announced(B, GiB, A, D)
    const live = A.net.offerOf(B.net.peerId)
    assert.equal(live?.announcedAt, null, 'B answered: the live answer is shown')
    assert.equal(live?.persister, true)
    await B.net.stop()
    await A.net.refresh(2000)
    const away = A.net.offerOf(B.net.peerId)
    assert.ok(away !== undefined && away.announcedAt !== null, 'B is away: its announced offer is shown')
    assert.deepEqual({ persister: away.persister, quotaBytes: away.quotaBytes }, { persister: true, quotaBytes: GiB })
    // placement uses only devices that answer now
    assert.ok(!A.net.directory.candidates().some(c => c.peerId === B.net.peerId))
  })

  it('a change of role is announced and reaches the members without them asking', async () => {
    await announced(C, 2 * GiB, A, D)
    await contribute(C, 0)
    await announced(C, 0, A, D)
    const o = D.net.offers.get(C.net.peerId)
    assert.equal(o?.persister, false)
    assert.equal(o?.freeBytes, 0)
  })

  it('a node restarted with an empty memory learns absent members\' offers from those present', async () => {
    await C.net.stop()
    await A.net.stop()
    const again = await start('a', A.home)
    assert.equal(again.net.offers.get(B.net.peerId), undefined)
    await waitFor('the restarted node to learn B\'s and C\'s offers from D', async () => {
      await again.net.refresh(2000)
      return again.net.offerOf(B.net.peerId)?.quotaBytes === GiB && again.net.offerOf(C.net.peerId)?.persister === false
    })
    assert.ok(again.net.offerOf(B.net.peerId)?.announcedAt !== null)
    A = again
  })

  it('a member cannot plant an offer for another member\'s device', async () => {
    const roster = D.net.roster
    assert.ok(roster !== null)
    // D signs with its own key an offer for B's device, claiming 100 GiB free
    const forged = signOffer(D.home.sodium, D.home.identity, {
      groupId: roster.groupId, peerId: B.net.peerId, time: Date.now(), persister: true, publisher: false, quotaBytes: 100 * GiB, usedBytes: 0, freeBytes: 100 * GiB
    })
    const key = offerKey(roster.groupId, B.net.peerId)
    assert.equal(A.net.offers.accept(key, encodeOffer(forged)), false)
    // nor roll a device's offer back to an older genuine one
    const held = A.net.offers.get(B.net.peerId)
    assert.ok(held !== undefined)
    const older = signOffer(B.home.sodium, B.home.identity, { ...held, time: held.time - 1000 })
    assert.equal(A.net.offers.accept(key, encodeOffer(older)), false)
    assert.equal(A.net.offers.get(B.net.peerId)?.time, held.time)
    for await (const _ of dhtOf(D).put(key, encodeOffer(forged), { signal: AbortSignal.timeout(5000) })) { /* drain */ }
    // A refused to store it; what A knows of B is still B's own offer
    await A.net.refresh(2000)
    assert.equal(A.net.offerOf(B.net.peerId)?.quotaBytes, GiB)
    const seen: number[] = []
    try {
      for await (const evt of dhtOf(A).get(key, { signal: AbortSignal.timeout(5000) })) {
        if (evt.name === 'VALUE' && evt.value !== undefined) seen.push(decodeOffer(evt.value).quotaBytes)
      }
    } catch {}
    // D may overwrite its own copy (a member can withhold, not forge): nothing forged ever reads as valid
    assert.ok(seen.every(q => q === GiB), `A read ${seen.join(', ')}`)
  })
})
