/**
 * A member attacks the roster (issue 11, finding 2), against real NetworkNodes on 127.0.0.1:
 *   A  creates the group "friends" (admin)
 *   B  a member who turns bad: freezes the roster with a huge serial, forks it (one version to A,
 *      another to D), and, as an inviter, answers a joiner with a made-up roster
 *   D  a member
 *   E  joins through B's invite
 * Refused or settled: the freeze is refused and A can still remove B; both halves of the fork end on
 * the same version and note the fork; the joiner refuses a history that does not start at the
 * version its invite pins. Waits poll state with deadlines, never fixed sleeps.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Multiaddr } from '@multiformats/multiaddr'
import { isP2pbakError } from '../../src/errors.js'
import { JOIN_PROTOCOL, pushRoster } from '../../src/protocols/group.js'
import { serve } from '../../src/protocols/framing.js'
import {
  addDevice, addMember, createRoster, encodeRoster, encodeRosterChain, issueDeviceCert, removeDevice, rosterHash, type Roster
} from '../../src/peers/index.js'
import { startNetPeer, stopNetPeers, type NetPeer } from '../helpers/network.js'
import { waitFor } from '../helpers/daemons.js'
import { fakePeerId, forge } from '../unit/peers/fixtures.js'

async function refusal (what: string, p: Promise<unknown>): Promise<string> {
  try { await p } catch (err: unknown) {
    assert.ok(isP2pbakError(err), `${what}: expected a typed error, got ${String(err)}`)
    return err.code
  }
  assert.fail(`${what}: expected a refusal, but it succeeded`)
}

describe('integration: a bad member cannot freeze, fork or fake the roster', function () {
  this.timeout(60_000)
  let dir: string
  const peers: NetPeer[] = []
  let A: NetPeer, B: NetPeer, D: NetPeer

  /** a made-up device B adds to itself (no node behind it; B may add devices of its own, not new people) */
  function deviceOfB (on: Roster, n: number): Roster {
    const cert = issueDeviceCert(B.home.sodium, B.home.identity, fakePeerId(900 + n), `b${n}`, Date.now())
    return addDevice(B.home.sodium, on, B.home.identity, cert, Date.now())
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-roster-attacks-'))
    for (const name of ['a', 'b', 'd']) peers.push(await startNetPeer(dir, name))
    ;[A, B, D] = peers as [NetPeer, NetPeer, NetPeer]
    await A.net.createGroup('friends')
    await B.net.join(await A.net.invite(60_000))
    await D.net.join(await A.net.invite(60_000))
    await waitFor('everyone on serial 3', () => peers.every(p => p.net.roster?.serial === 3))
  })

  after(async () => {
    await stopNetPeers(peers)
    rmSync(dir, { recursive: true, force: true })
  })

  it('a pushed roster with a huge serial is refused, and the admin can still remove the pusher', async () => {
    const current = A.net.roster as Roster
    const huge = forge(B.home.sodium, { ...deviceOfB(current, 1), serial: Number.MAX_SAFE_INTEGER }, B.home.identity)
    assert.equal(await refusal('B pushes serial 2^53-1 to A', pushRoster(B.net.node, A.net.node.peerId, encodeRoster(huge))), 'ERR_PROTOCOL')
    assert.equal(A.net.roster?.serial, current.serial)
    // skipping serials is refused the same way: every version must follow the previous one
    const skip = forge(B.home.sodium, { ...deviceOfB(current, 1), serial: current.serial + 2 }, B.home.identity)
    await refusal('B pushes a skipped serial to D', pushRoster(B.net.node, D.net.node.getMultiaddrs()[0] as Multiaddr, encodeRoster(skip)))
    assert.equal(D.net.roster?.serial, current.serial)
  })

  it('a fork pushed to two halves is detected, and both halves settle on one version', async () => {
    const base = A.net.roster as Roster
    const forA = deviceOfB(base, 2)
    const forD = deviceOfB(base, 3)
    assert.equal(forA.serial, forD.serial)
    // each half is shown its own version (A forwards what it takes, so D may see both at once) ...
    await pushRoster(B.net.node, A.net.node.peerId, encodeRoster(forA))
    await pushRoster(B.net.node, D.net.node.getMultiaddrs()[0] as Multiaddr, encodeRoster(forD)).catch(() => {})
    // ... and the next exchange between the halves settles it: the lower hash wins, on both sides
    const winner = rosterHash(forA) < rosterHash(forD) ? forA : forD
    const loser = winner === forA ? forD : forA
    await A.net.refresh(5000)
    await D.net.refresh(5000)
    // B's own node hears of both versions too (they are forwarded): if it held the loser, it switches
    // and signs its change again on top of the winner, as any node does with its own lost changes
    await B.net.refresh(5000)
    const same = (): boolean => [D, B].every(p => p.net.membership.rosters.hash() === A.net.membership.rosters.hash())
    await waitFor('A, D and B on the same roster', same, 20_000)
    const atFork = (p: NetPeer): string | undefined => {
      const r = p.net.membership.rosters.chain().find(x => x.serial === winner.serial)
      return r === undefined ? undefined : rosterHash(r)
    }
    for (const p of [A, D]) {
      assert.equal(atFork(p), rosterHash(winner), `${p.name} follows the winning version`)
      // the node that saw the loser noted the fork, with the evidence that one member signed both
      const noted = p.net.state.file.rosterForks ?? []
      if (noted.length > 0) {
        assert.equal(noted.at(-1)?.dropped, rosterHash(loser))
        assert.equal(noted.at(-1)?.equivocation, true)
        assert.equal(noted.at(-1)?.droppedBy, B.home.identity.userId)
      }
    }
    assert.ok([A, D].some(p => (p.net.state.file.rosterForks ?? []).length > 0), 'nobody noted the fork')
    // the dropped version cannot come back later (refused, or kept out: the winner stays)
    await pushRoster(B.net.node, A.net.node.peerId, encodeRoster(loser)).catch(() => {})
    assert.equal(atFork(A), rosterHash(winner))
    await waitFor('A, D and B on the same roster again', same, 20_000)
  })

  it('a joiner refuses a made-up roster from its inviter: the history must start at the version the invite pins', async () => {
    const E = await startNetPeer(dir, 'e')
    peers.push(E)
    const code = await B.net.invite(60_000)
    // B's node answers joins with a roster B made up: same group id, B its only admin, E added
    const real = B.net.roster as Roster
    const madeUp = forge(B.home.sodium, { ...createRoster(B.home.sodium, B.home.identity, real.name, B.net.deviceCert(), Date.now()), groupId: real.groupId }, B.home.identity)
    const withE = addMember(B.home.sodium, madeUp, B.home.identity, { userId: E.home.identity.userId, name: 'e', device: E.net.deviceCert() }, Date.now())
    await B.net.node.unhandle(JOIN_PROTOCOL)
    await serve(B.net.node, JOIN_PROTOCOL, async () => ({ header: { status: 'OK' }, body: encodeRosterChain([madeUp, withE]) }))
    assert.equal(await refusal('E joins through the lying inviter', E.net.join(code)), 'ERR_UNTRUSTED_PEER')
    assert.equal(E.net.roster, null)
    // a single made-up roster (the old answer) is refused too
    await B.net.node.unhandle(JOIN_PROTOCOL)
    await serve(B.net.node, JOIN_PROTOCOL, async () => ({ header: { status: 'OK' }, body: encodeRoster(withE) }))
    assert.equal(await refusal('E joins, answered with one roster', E.net.join(code)), 'ERR_UNTRUSTED_PEER')
    assert.equal(E.net.roster, null)
  })

  it('versions a member sends to only some members reach the others too, and a burst of them cannot strand anyone', async () => {
    // B signs 40 versions of its own (more than the 32 a node always keeps) and sends each to D alone
    let cur = A.net.roster as Roster
    for (let n = 0; n < 40; n++) {
      // adding a made-up device of its own, then revoking it: B's to sign, without limit but the run's
      cur = n % 2 === 0 ? deviceOfB(cur, 100 + n) : removeDevice(B.home.sodium, cur, B.home.identity, fakePeerId(900 + 100 + n - 1), Date.now())
      await pushRoster(B.net.node, D.net.node.getMultiaddrs()[0] as Multiaddr, encodeRoster(cur))
    }
    assert.equal(D.net.roster?.serial, cur.serial)
    // A never asked: D forwarded each version it took (no refresh runs in this test)
    await waitFor('A to follow what only D was sent', () => A.net.roster?.serial === cur.serial, 20_000)
    // every node keeps all of B's run back to the last version an admin signed, so a node that was away links up
    const history = D.net.state.file.rosterHistory ?? []
    assert.ok(history.length >= 40, `D keeps ${history.length} versions`)
    assert.ok(history.some(r => r.updatedBy === A.home.identity.userId), 'D no longer keeps the last version the admin signed')
  })

  it('after all that, the admin removes the bad member and every honest node follows', async () => {
    await A.net.remove(B.home.identity.userId)
    await waitFor('D to follow the removal', () => D.net.roster?.members.every(m => m.userId !== B.home.identity.userId) === true, 20_000)
    assert.equal(D.net.membership.rosters.hash(), A.net.membership.rosters.hash())
  })
})
