/**
 * Outsiders get nothing. Real NetworkNodes on 127.0.0.1 (no DHT, no mDNS), each on its own home:
 *   A  creates the group "friends", contributes disk, invites B and D
 *   B  a member (contributes), later removed by A
 *   D  a member (contributes), a different person from B
 *   C  an outsider: tries tampered, expired and already-used invites, then makes its own group
 *      "others" and asks A and B for service anyway
 * A node of another group, or one holding a tampered or expired invite, gets no service and never
 * shows among the group's peers; a member cannot see or delete another member's shares; a removed
 * member loses service and its connections. Waits poll state with deadlines, never fixed sleeps.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { isP2pbakError, type ErrorCode } from '../../src/errors.js'
import { asPackId } from '../../src/ids.js'
import { RemoteShareStore } from '../../src/protocols/shard/index.js'
import { fetchRoster, fetchSpace, pushRoster, requestJoin } from '../../src/protocols/group.js'
import { encodeInviteCode, encodeRoster, inviteClaim, type Invite, type Roster } from '../../src/peers/index.js'
import type { ShareRef } from '../../src/store/index.js'
import { startNetPeer, stopNetPeers, type NetPeer } from '../helpers/network.js'
import { waitFor } from '../helpers/daemons.js'

const PREFIX = 'p2pbak1-'
/** anything a refused outsider may see: the gater dropped it, or the protocol said no */
const REFUSALS: readonly ErrorCode[] = ['ERR_NOT_MEMBER', 'ERR_REFUSED', 'ERR_PROTOCOL', 'ERR_TIMEOUT']

type Peer = NetPeer

/** Awaits a rejection and returns its p2pbak error code (failing on success or an untyped error). */
async function codeOf (what: string, p: Promise<unknown> | (() => Promise<unknown>)): Promise<{ code: ErrorCode, message: string }> {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (err: unknown) {
    assert.ok(isP2pbakError(err), `${what}: expected a typed p2pbak error, got ${String(err)}`)
    return { code: err.code, message: err.message }
  }
  assert.fail(`${what}: expected a refusal, but it succeeded`)
}

async function refused (what: string, p: Promise<unknown> | (() => Promise<unknown>), codes: readonly ErrorCode[] = REFUSALS): Promise<ErrorCode> {
  const { code, message } = await codeOf(what, p)
  assert.ok(codes.includes(code), `${what}: got ${code} (${message}), expected one of ${codes.join(', ')}`)
  return code
}

async function collect<T> (it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

/** A shard client on `from`'s node to `to`, claiming to be `owner` (by default `from`'s own person). */
function storeTo (from: Peer, to: Peer, owner = from.home.identity.userId): RemoteShareStore {
  const sk = from.home.identity.signSecretKey
  return new RemoteShareStore({
    node: from.net.node,
    peer: to.net.node.peerId,
    addrs: to.net.node.getMultiaddrs(),
    ownerUserId: owner,
    signDelete: (message) => {
      if (sk === null) throw new Error('no signing key')
      return Buffer.from(from.home.sodium.sign(message, sk)).toString('base64')
    },
    timeoutMs: 5000
  })
}

function ref (byte: number, index = 0): ShareRef {
  return { pack: asPackId(new Uint8Array(32).fill(byte)), index }
}

function memberIds (r: Roster | null): string[] {
  return (r?.members ?? []).map(m => m.userId)
}

function heldFiles (holder: Peer, owner: Peer): string[] {
  const dir = join(holder.home.dir, 'held', owner.home.identity.userId)
  if (!existsSync(dir)) return []
  const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap(e => e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)])
  return walk(dir).filter(f => !f.endsWith('VERSION'))
}

function decodePayload (code: string): Invite {
  return JSON.parse(Buffer.from(code.slice(PREFIX.length), 'base64url').toString('utf8')) as Invite
}

describe('integration: outsiders and removed members get no service', function () {
  this.timeout(40_000)
  let dir: string
  const peers: Peer[] = []
  let A: Peer, B: Peer, C: Peer, D: Peer
  let codeForB: string
  let expiredCode: string

  async function start (name: string): Promise<Peer> {
    const p = await startNetPeer(dir, name)
    peers.push(p)
    return p
  }

  async function contribute (p: Peer): Promise<void> {
    p.net.state.file.roles.contributeBytes = 1 << 30
    await p.net.state.save()
  }

  const C_NEVER_AMONG_A_PEERS = (): void => {
    assert.ok(!memberIds(A.net.roster).includes(C.home.identity.userId), 'C shows among the group members')
    assert.ok(!A.net.memberDevices().includes(C.net.peerId), 'C shows among the member devices')
    assert.equal(A.net.state.peers[C.net.peerId], undefined, 'C is in the peer book')
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-outsiders-'))
    A = await start('a')
    B = await start('b')
    C = await start('c')
    D = await start('d')
    await A.net.createGroup('friends')
    for (const p of [A, B, D]) await contribute(p)
    codeForB = await A.net.invite(60_000)
    await B.net.join(codeForB)
    await D.net.join(await A.net.invite(60_000))
    assert.deepEqual(memberIds(A.net.roster).sort(), [A, B, D].map(p => p.home.identity.userId).sort())
  })

  after(async () => {
    await stopNetPeers(peers)
    rmSync(dir, { recursive: true, force: true })
  })

  it('a tampered invite code is refused before anything is sent', async () => {
    // one still-valid invite stays outstanding for the rest of the file: A's gater then lets strangers
    // connect, so what refuses them below is the protocol itself, not only the gater
    const code = await A.net.invite(60_000)
    const at = PREFIX.length + Math.floor((code.length - PREFIX.length) / 2)
    const flipped = code.slice(0, at) + (code[at] === 'A' ? 'B' : 'A') + code.slice(at + 1)
    assert.equal((await codeOf('join with a flipped character', C.net.join(flipped))).code, 'ERR_INVALID_INVITE')
    // a well-formed code whose content was changed (another group name) fails its signature
    const renamed = encodeInviteCode({ ...decodePayload(code), groupName: 'not friends' })
    const r = await codeOf('join with an altered invite', C.net.join(renamed))
    assert.equal(r.code, 'ERR_INVALID_INVITE')
    assert.match(r.message, /altered/)
    assert.equal(C.net.roster, null)
    C_NEVER_AMONG_A_PEERS()
  })

  it('an expired invite is refused, also after extending its expiry', async () => {
    expiredCode = await A.net.invite(1)
    const expiresAt = decodePayload(expiredCode).expiresAt
    await waitFor('the 1 ms invite to expire', () => Date.now() > expiresAt, 1000)
    const e = await codeOf('join with an expired invite', C.net.join(expiredCode))
    assert.equal(e.code, 'ERR_INVALID_INVITE')
    assert.match(e.message, /expired/)
    const extended = encodeInviteCode({ ...decodePayload(expiredCode), expiresAt: Date.now() + 3_600_000 })
    assert.equal((await codeOf('join with an expiry moved forward', C.net.join(extended))).code, 'ERR_INVALID_INVITE')
    assert.equal(C.net.roster, null)
    C_NEVER_AMONG_A_PEERS()
  })

  it('an invite already redeemed by B is refused by the inviter', async () => {
    // this one passes the joiner's own checks (signature, expiry) and reaches A over the join protocol
    const r = await codeOf('join with B\'s redeemed code', C.net.join(codeForB))
    // The inviter refuses with InvalidInviteError, but framing.ts has no status for it: it crosses the
    // wire as INTERNAL and surfaces as ERR_PROTOCOL carrying A's reason. ERR_INVALID_INVITE is what
    // errors.ts promises for an "already used" invite; accept it too so the test survives that fix.
    assert.equal(r.code, 'ERR_INVALID_INVITE', `got ${r.code}: ${r.message}`)
    assert.match(r.message, /already been used/)
    assert.equal(C.net.roster, null)
    assert.deepEqual(memberIds(A.net.roster).sort(), [A, B, D].map(p => p.home.identity.userId).sort())
    C_NEVER_AMONG_A_PEERS()
  })

  it('a node of another group gets no shard, roster, space or join service', async () => {
    await C.net.createGroup('others')
    // C invites someone too, so C's own gater lets it dial anyone: every refusal below is A's or B's
    await C.net.invite(60_000)
    const stolen = { pack: ref(0xc0), data: new Uint8Array(1000).fill(7) }

    // A admits unknown peers at the gate (an invite is outstanding): its protocols must say no
    const toA = storeTo(C, A)
    await refused('C put on A', toA.put(stolen.pack, stolen.data), ['ERR_NOT_MEMBER'])
    await refused('C get on A', toA.get(stolen.pack), ['ERR_NOT_MEMBER'])
    await refused('C list on A', collect(toA.list()), ['ERR_NOT_MEMBER'])
    await refused('C putRecord on A', toA.putRecord(new Uint8Array(32).fill(1), new Uint8Array(10)), ['ERR_NOT_MEMBER'])
    // even when C claims to be B, the shard protocol serves the authenticated device's person
    await refused('C posing as B on A', collect(storeTo(C, A, B.home.identity.userId).list()), ['ERR_NOT_MEMBER'])
    const cPeer = peerIdFromString(C.net.peerId)
    await refused('C fetches A\'s roster', fetchRoster(C.net.node, A.net.node.peerId), ['ERR_NOT_MEMBER'])
    await refused('C asks A for space', fetchSpace(C.net.node, A.net.node.peerId), ['ERR_NOT_MEMBER'])
    await refused('C pushes its roster to A', pushRoster(C.net.node, A.net.node.peerId, encodeRoster(C.net.roster as Roster)), ['ERR_NOT_MEMBER'])
    // skipping the joiner's own checks: A checks the expiry of the invite itself
    const expired = decodePayload(expiredCode)
    const claim = inviteClaim(expired, C.net.peerId, C.home.identity.userId)
    const direct = await codeOf('C redeems the expired invite directly', requestJoin(C.net.node, A.net.node.peerId, {
      groupId: expired.groupId, inviteId: claim.inviteId, proof: claim.proof, userId: C.home.identity.userId, name: 'c', deviceCert: C.net.deviceCert()
    }))
    assert.equal(direct.code, 'ERR_INVALID_INVITE', `got ${direct.code}: ${direct.message}`)
    assert.match(direct.message, /expired/)

    // B has no invite outstanding: its gater refuses C outright (any typed refusal will do)
    const toB = storeTo(C, B)
    await refused('C put on B', toB.put(stolen.pack, stolen.data))
    await refused('C get on B', toB.get(stolen.pack))
    await refused('C list on B', collect(toB.list()))
    await waitFor('B to hold no connection to C', () => B.net.node.getConnections(cPeer).length === 0)

    assert.deepEqual(heldFiles(A, C), [])
    assert.deepEqual(heldFiles(B, C), [])
    assert.equal(existsSync(join(A.home.dir, 'held', C.home.identity.userId)), false)
    assert.equal(existsSync(join(B.home.dir, 'held', C.home.identity.userId)), false)
    // placement never picks C: after a refresh, the group's candidates are B and D only
    await A.net.refresh(5000)
    assert.deepEqual(A.net.directory.candidates().map(c => c.peerId).sort(), [B.net.peerId, D.net.peerId].sort())
    C_NEVER_AMONG_A_PEERS()
  })

  it('a joiner presenting another device\'s certificate is refused as untrusted', async () => {
    const code = await A.net.invite(60_000)
    const invite = decodePayload(code)
    const claim = inviteClaim(invite, C.net.peerId, C.home.identity.userId)
    const r = await codeOf('C joins with D\'s device certificate', requestJoin(C.net.node, A.net.node.peerId, {
      groupId: invite.groupId, inviteId: claim.inviteId, proof: claim.proof, userId: C.home.identity.userId, name: 'c', deviceCert: D.net.deviceCert()
    }))
    assert.equal(r.code, 'ERR_UNTRUSTED_PEER', `got ${r.code}: ${r.message}`)
    assert.match(r.message, /device certificate does not match/)
    C_NEVER_AMONG_A_PEERS()
  })

  it('a member cannot see or delete another member\'s shares', async () => {
    const mine = ref(0xb0, 3)
    const data = new Uint8Array(4096).fill(0xb)
    const bToA = storeTo(B, A)
    await bToA.put(mine, data)
    assert.equal(heldFiles(A, B).length, 1)

    const dToA = storeTo(D, A)
    assert.deepEqual(await collect(dToA.list()), [], 'D sees B\'s share')
    assert.equal(await dToA.has(mine), false)
    await refused('D reads B\'s share', dToA.get(mine), ['ERR_NOT_FOUND'])
    // a delete signed by D acts on D's own namespace only: B's share is untouched
    await dToA.delete(mine).catch(() => {})
    // claiming to be B does not help: the signature is D's, not B's user key
    await refused('D deletes as B', storeTo(D, A, B.home.identity.userId).delete(mine), ['ERR_REFUSED'])
    assert.ok(Buffer.from(await bToA.get(mine)).equals(data), 'B\'s share changed')
    assert.deepEqual((await collect(bToA.list())).map(r => r.index), [3])
    assert.equal(heldFiles(A, B).length, 1)
  })

  it('a removed member loses its connections and every shard service', async () => {
    await A.net.remove(B.home.identity.userId)
    assert.ok(!memberIds(A.net.roster).includes(B.home.identity.userId))
    const bPeer = peerIdFromString(B.net.peerId)
    await waitFor('A to drop B\'s connections', () => A.net.node.getConnections(bPeer).length === 0)
    await waitFor('B to see its connections to A closed', () => B.net.node.getConnections(A.net.node.peerId).length === 0)
    // B got the signed roster that removes it
    await waitFor('B to learn it was removed', () => !memberIds(B.net.roster).includes(B.home.identity.userId))

    // B dials afresh; A's gate is open to strangers (an invite is outstanding), its protocols are not
    const bToA = storeTo(B, A)
    await refused('removed B puts on A', bToA.put(ref(0xb1), new Uint8Array(100)), ['ERR_NOT_MEMBER'])
    await refused('removed B gets from A', bToA.get(ref(0xb0, 3)), ['ERR_NOT_MEMBER'])
    await refused('removed B lists on A', collect(bToA.list()), ['ERR_NOT_MEMBER'])
    await refused('removed B fetches the roster', fetchRoster(B.net.node, A.net.node.peerId), ['ERR_NOT_MEMBER'])
    assert.ok(!A.net.memberDevices().includes(B.net.peerId))
    // D, still a member, is served as before
    assert.deepEqual(await collect(storeTo(D, A).list()), [])
    C_NEVER_AMONG_A_PEERS()
  })
})
