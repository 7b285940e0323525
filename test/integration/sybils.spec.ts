/**
 * Made-up people cannot be added to win placement (issue 11, finding 4), against real NetworkNodes
 * on 127.0.0.1:
 *   A  creates the group "friends" (admin)
 *   B  a member (not an admin) who tries to add made-up people: by pushing a roster, and by inviting
 *   D  a member
 *   B2 a second machine of B (B's seed), E a friend
 * Refused: every member refuses B's roster with people nobody approved; B's invite cannot bring in a
 * new person (clearly told), but still adds B's own new machine; A's invite brings in E, and so does
 * B's once A made B an admin. A space
 * answer claiming 1e300 free bytes counts as nothing. Waits poll state with deadlines.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Multiaddr } from '@multiformats/multiaddr'
import { deriveIdentity } from '../../src/crypto/index.js'
import { isP2pbakError } from '../../src/errors.js'
import { Home } from '../../src/node/home.js'
import { SPACE_PROTOCOL, fetchSpace, pushRoster } from '../../src/protocols/group.js'
import { serve } from '../../src/protocols/framing.js'
import { addMember, encodeRoster, issueDeviceCert, type Roster } from '../../src/peers/index.js'
import { startNetPeer, stopNetPeers, type NetPeer } from '../helpers/network.js'
import { waitFor } from '../helpers/daemons.js'
import { fakePeerId, forgeNext } from '../unit/peers/fixtures.js'

async function refusal (what: string, p: Promise<unknown>): Promise<{ code: string, message: string }> {
  try { await p } catch (err: unknown) {
    assert.ok(isP2pbakError(err), `${what}: expected a typed error, got ${String(err)}`)
    return { code: err.code, message: err.message }
  }
  assert.fail(`${what}: expected a refusal, but it succeeded`)
}

describe('integration: made-up people cannot be added to capture placement (issue 11, finding 4)', function () {
  this.timeout(90_000)
  let dir: string
  const peers: NetPeer[] = []
  let A: NetPeer, B: NetPeer, D: NetPeer
  const seedB = new Uint8Array(32).fill(0x2b)

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-sybils-'))
    A = await startNetPeer(dir, 'a')
    peers.push(A)
    await Home.init({ home: join(dir, 'b'), passphrase: null, kdf: { opslimit: 1, memlimit: 8192 }, seed: seedB })
    B = await startNetPeer(dir, 'b', { home: await Home.open({ home: join(dir, 'b'), passphrase: async () => null }) })
    peers.push(B)
    D = await startNetPeer(dir, 'd')
    peers.push(D)
    await A.net.createGroup('friends')
    await B.net.join(await A.net.invite(60_000))
    await D.net.join(await A.net.invite(60_000))
    await waitFor('everyone on serial 3', () => peers.every(p => p.net.roster?.serial === 3))
  })

  after(async () => {
    await stopNetPeers(peers)
    rmSync(dir, { recursive: true, force: true })
  })

  it('a member who is not an admin adds made-up people: every other member refuses the roster, with the reason', async () => {
    const current = A.net.roster as Roster
    assert.throws(() => addMember(B.home.sodium, current, B.home.identity, { userId: deriveIdentity(B.home.sodium, new Uint8Array(32).fill(0x61)).userId, name: 's', device: issueDeviceCert(B.home.sodium, deriveIdentity(B.home.sodium, new Uint8Array(32).fill(0x61)), fakePeerId(901), 's', Date.now()) }, Date.now()),
      /only a group admin can add a new person/)
    // so B signs the version itself: five made-up people, each with a valid certificate of their own
    const at = Math.max(Date.now(), current.updatedAt)
    const withSybils = forgeNext(B.home.sodium, current, B.home.identity, d => {
      d.updatedAt = at
      for (let i = 0; i < 5; i++) {
        const id = deriveIdentity(B.home.sodium, new Uint8Array(32).fill(0x70 + i))
        d.members.push({ userId: id.userId, name: `sybil${i}`, joinedAt: at, admin: false, devices: [issueDeviceCert(B.home.sodium, id, fakePeerId(910 + i), 's', at)] })
      }
    })
    for (const [name, p] of [['A', A], ['D', D]] as const) {
      const r = await refusal(`B pushes its sybils to ${name}`, pushRoster(B.net.node, p.net.node.getMultiaddrs()[0] as Multiaddr, encodeRoster(withSybils)))
      assert.equal(r.code, 'ERR_PROTOCOL')
      assert.match(r.message, /only an admin may add a new person/)
      assert.equal(p.net.roster?.serial, current.serial, `${name} kept its roster`)
      assert.equal(p.net.roster?.members.length, 3)
    }
  })

  it('a non-admin\'s invite cannot bring in a new person (clearly told), but adds its own new machine; an admin\'s invite brings the friend in', async () => {
    const E = await startNetPeer(dir, 'e')
    peers.push(E)
    const code = await B.net.invite(60_000)
    const r = await refusal('E joins with B\'s invite', E.net.join(code))
    assert.equal(r.code, 'ERR_INVALID_INVITE')
    assert.match(r.message, /not an admin .*not a new person; ask an admin of the group for an invite/)
    assert.equal(E.net.roster, null)
    // the same code, unused, brings in B's own second machine
    const dirB2 = join(dir, 'b2')
    await Home.init({ home: dirB2, passphrase: null, kdf: { opslimit: 1, memlimit: 8192 }, seed: seedB })
    const B2 = await startNetPeer(dir, 'b2', { home: await Home.open({ home: dirB2, passphrase: async () => null }) })
    peers.push(B2)
    const joined = await B2.net.join(code)
    assert.deepEqual(joined.members.find(m => m.userId === B.home.identity.userId)?.devices.map(d => d.peerId).sort(), [B.net.peerId, B2.net.peerId].sort())
    await waitFor('A and D take the new device', () => [A, D].every(p => p.net.roster?.serial === joined.serial), 20_000)
    // the admin's invite brings E in
    const withE = await E.net.join(await A.net.invite(60_000))
    assert.ok(withE.members.some(m => m.userId === E.home.identity.userId && !m.admin))
    await waitFor('B and D take E', () => [B, D].every(p => p.net.roster?.serial === withE.serial), 20_000)
  })

  it('once the admin makes B an admin (`group admin`), B\'s invite brings a new person in', async () => {
    const promoted = await A.net.setAdmin(B.home.identity.userId, true)
    await waitFor('B knows it is an admin', () => B.net.roster?.serial === promoted.serial, 20_000)
    const F = await startNetPeer(dir, 'f')
    peers.push(F)
    const withF = await F.net.join(await B.net.invite(60_000))
    assert.ok(withF.members.some(m => m.userId === F.home.identity.userId))
    await waitFor('A takes F', () => A.net.roster?.serial === withF.serial, 20_000)
  })

  it('a space answer claiming 1e300 free bytes counts as nothing', async () => {
    await D.net.node.unhandle(SPACE_PROTOCOL)
    await serve(D.net.node, SPACE_PROTOCOL, async () => ({ header: { status: 'OK', persister: true, publisher: false, quotaBytes: 1e300, usedBytes: 0, freeBytes: 1e300 } }))
    const answer = await fetchSpace(A.net.node, D.net.node.getMultiaddrs()[0] as Multiaddr)
    assert.equal(answer.freeBytes, 0)
    assert.equal(answer.quotaBytes, 0)
  })
})
