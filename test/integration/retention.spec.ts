/**
 * The group's retention policy, enforced by persisters (docs/protocols/shard.md §7, format/group.md):
 * real NetworkNodes on 127.0.0.1. A (admin) owns shares that B (persister) holds.
 *   - a validly signed delete of a share younger than minShardAgeDays is refused, with the date it
 *     becomes possible; an old enough share is deleted
 *   - the owner queues such deletes and sends them again once allowed; nothing is forgotten
 *   - lowering the policy takes effect only after the old period (a stolen admin seed cannot lower
 *     it and wipe at once); only admins may change it
 * Share ages are set with utimes on B's files; waits poll with deadlines.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readdirSync, rmSync, utimesSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RetentionRefusedError, isP2pbakError } from '../../src/errors.js'
import { asPackId } from '../../src/ids.js'
import { releaseShares } from '../../src/repo/index.js'
import { setRetention, type Roster } from '../../src/peers/index.js'
import type { ShareRef } from '../../src/store/index.js'
import { startNetPeer, stopNetPeers, type NetPeer } from '../helpers/network.js'
import { waitFor } from '../helpers/daemons.js'

const DAY = 86_400_000

type Peer = NetPeer

describe('integration: retention policy (minimum shard age) enforced by persisters', function () {
  this.timeout(60_000)
  let dir: string
  const peers: Peer[] = []
  let A: Peer, B: Peer
  let n = 0
  const ref = (): ShareRef => ({ pack: asPackId(new Uint8Array(32).fill(++n)), index: 1 })

  async function start (name: string): Promise<Peer> {
    const p = await startNetPeer(dir, name)
    peers.push(p)
    return p
  }

  /** B's file for one of A's shares. */
  function fileOnB (r: ShareRef): string | undefined {
    const walk = (d: string): string[] => existsSync(d) ? readdirSync(d, { withFileTypes: true }).flatMap(e => e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]) : []
    const hex = Buffer.from(r.pack).toString('hex')
    return walk(join(B.home.dir, 'held', A.home.identity.userId, 'shares')).find(f => f.includes(hex))
  }

  function age (r: ShareRef, ms: number): void {
    const f = fileOnB(r)
    assert.ok(f !== undefined, 'the share is not on B')
    const t = new Date(Date.now() - ms)
    utimesSync(f, t, t)
  }

  const toB = (): ReturnType<Peer['net']['directory']['storeFor']> => A.net.directory.storeFor(B.net.peerId)

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-retention-'))
    A = await start('a')
    B = await start('b')
    await A.net.createGroup('keepers') // the default policy: 30 days
    await B.net.join(await A.net.invite(60_000))
    B.net.state.file.roles.contributeBytes = 1 << 30
    await B.net.state.save()
    await A.net.refresh(5000)
  })

  after(async () => {
    await stopNetPeers(peers)
    rmSync(dir, { recursive: true, force: true })
  })

  it('a signed delete of a young share is refused with the date it becomes possible; an old one is deleted', async () => {
    assert.equal(A.net.roster?.retention.minShardAgeDays, 30)
    const r = ref()
    await toB().put(r, new Uint8Array(5000).fill(1))
    const stored = Date.now()
    let err: unknown
    try { await toB().delete(r) } catch (e: unknown) { err = e }
    assert.ok(err instanceof RetentionRefusedError, `expected a retention refusal, got ${String(err)}`)
    assert.ok(isP2pbakError(err) && err.code === 'ERR_RETAINED')
    assert.ok(Math.abs(err.notBefore - (stored + 30 * DAY)) < 60_000, `notBefore ${new Date(err.notBefore).toISOString()}`)
    assert.match(err.message, /retention policy keeps shares 30 days/)
    assert.ok(fileOnB(r) !== undefined, 'the share was deleted')
    age(r, 31 * DAY)
    await toB().delete(r)
    assert.equal(fileOnB(r), undefined)
  })

  it('a young share or a record cannot be replaced by other bytes (that would be a delete); identical bytes can', async () => {
    const r = ref()
    const bytes = new Uint8Array(4000).fill(4)
    await toB().put(r, bytes)
    await toB().put(r, bytes)
    await assert.rejects(toB().put(r, new Uint8Array(4000).fill(5)), RetentionRefusedError)
    const rec = new Uint8Array(32).fill(0x77)
    await toB().putRecord(rec, new Uint8Array([1, 2, 3]))
    await toB().putRecord(rec, new Uint8Array([1, 2, 3]))
    await assert.rejects(toB().putRecord(rec, new Uint8Array([9, 9])), /records are never replaced/)
    assert.deepEqual([...await toB().getRecord(rec)], [1, 2, 3])
  })

  it('the owner queues a refused delete and sends it again once the share is old enough', async () => {
    const r = ref()
    await toB().put(r, new Uint8Array(3000).fill(2))
    A.home.useGroup(A.net.directory)
    const group = A.home.group
    assert.ok(group !== undefined)
    const audit = A.home.repo.index.audit
    await audit.addRelease(B.net.peerId, r)
    assert.equal(await releaseShares(group, () => true), 0)
    assert.equal(audit.pendingReleases().get(B.net.peerId)?.length, 1, 'the release was dropped')
    // a copy whose delete is queued is not found again by listing (a rebuilt index would reuse it)
    const kept = ref()
    await toB().put(kept, new Uint8Array(1000).fill(9))
    const listed: string[] = []
    for await (const id of group.listPacks()) listed.push(Buffer.from(id).toString('hex'))
    assert.ok(listed.includes(Buffer.from(kept.pack).toString('hex')), 'a live share is not listed')
    assert.ok(!listed.includes(Buffer.from(r.pack).toString('hex')), 'a released share is listed again')
    assert.ok(audit.releaseDeferredUntil(B.net.peerId, r) > Date.now() + 29 * DAY)
    // deferred: the next rounds do not even ask B
    assert.equal(await releaseShares(group, () => true), 0)
    age(r, 31 * DAY)
    assert.equal(await releaseShares(group, () => true, { now: Date.now() + 31 * DAY }), 1)
    assert.equal(audit.pendingReleases().get(B.net.peerId), undefined)
    assert.equal(fileOnB(r), undefined)
  })

  it('only an admin changes the policy; a lower one applies only after the old period', async () => {
    await assert.rejects(B.net.membership.setRetention({ minShardAgeDays: 0 }), /only a group admin/)
    await A.net.membership.setRetention({ minShardAgeDays: 1 })
    await waitFor('B to take the new roster', () => B.net.roster?.retention.minShardAgeDays === 1)
    // B still keeps shares 30 days until the old period has passed
    assert.equal(B.net.membership.minShareAgeMs(Date.now()), 30 * DAY)
    const floor = B.net.state.file.retentionFloor
    assert.ok(floor !== undefined && Math.abs(floor.untilMs - (Date.now() + 30 * DAY)) < 60_000)
    const r = ref()
    await toB().put(r, new Uint8Array(2000).fill(3))
    age(r, 2 * DAY)
    await assert.rejects(toB().delete(r), RetentionRefusedError)
    // once the old period is over, the 1-day policy holds
    assert.equal(B.net.membership.minShareAgeMs(floor.untilMs + 1), DAY)
    B.net.state.file.retentionFloor = { ...floor, untilMs: Date.now() - 1 }
    await toB().delete(r)
    assert.equal(fileOnB(r), undefined)
  })

  it('a member that missed the push learns a roster change at its next refresh (the space answer names the serial)', async () => {
    const before = B.net.roster?.serial ?? 0
    // A signs a change and keeps it to itself: no push reaches B
    A.net.membership.rosters.append(setRetention(A.home.sodium, A.net.roster as Roster, A.home.identity, { minShardAgeDays: 45 }, Date.now()))
    await A.net.state.save()
    assert.equal(B.net.roster?.serial, before)
    await B.net.refresh(5000)
    assert.equal(B.net.roster?.serial, A.net.roster?.serial)
    assert.equal(B.net.roster?.retention.minShardAgeDays, 45)
    assert.equal(B.net.membership.minShareAgeMs(Date.now()), 45 * DAY)
  })
})
