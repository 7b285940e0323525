/**
 * Strangers while an invite is open (issue 11, finding 5), against real NetworkNodes on 127.0.0.1:
 *   A  creates the group and issues invites (its gate lets anyone connect while one is open)
 *   B  joins through one
 *   C  a stranger: its node runs a group of its own (so its gate lets it dial), it holds no valid code for A's
 * A stranger's request is answered NOT_MEMBER before it is read; a wrong proof is refused before
 * anything is built or signed; strangers' connections end when the last invite is used, expires or
 * is revoked (`group invite --revoke`). Waits poll state with deadlines, never fixed sleeps.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { lpStream } from '@libp2p/utils'
import type { Multiaddr } from '@multiformats/multiaddr'
import { isP2pbakError } from '../../src/errors.js'
import { SHARD_PROTOCOL } from '../../src/protocols/shard/index.js'
import { ROSTER_PROTOCOL, requestJoin } from '../../src/protocols/group.js'
import { RELAY_NOTICE_PROTOCOL, sendInvitesNotice } from '../../src/protocols/relay.js'
import { inviteClaim, decodeInviteCode, type Roster } from '../../src/peers/index.js'
import { runCli } from '../helpers/cli.js'
import { startNetPeer, stopNetPeers, type NetPeer } from '../helpers/network.js'
import { waitFor } from '../helpers/daemons.js'

async function codeOf (what: string, p: Promise<unknown>): Promise<string> {
  try { await p } catch (err: unknown) {
    if (!isP2pbakError(err)) assert.fail(`${what}: expected a typed error, got ${String(err)}`)
    return err.code
  }
  assert.fail(`${what}: expected a refusal, but it succeeded`)
}

describe('integration: strangers during an invite window', function () {
  this.timeout(60_000)
  let dir: string
  const peers: NetPeer[] = []
  let A: NetPeer, B: NetPeer, C: NetPeer
  const addrOf = (p: NetPeer): Multiaddr => p.net.node.getMultiaddrs()[0] as Multiaddr
  const connected = (from: NetPeer, to: NetPeer): boolean => from.net.node.getConnections(to.net.node.peerId).length > 0

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-invite-window-'))
    for (const name of ['a', 'b', 'c']) peers.push(await startNetPeer(dir, name))
    ;[A, B, C] = peers as [NetPeer, NetPeer, NetPeer]
    await A.net.createGroup('friends')
    // C's own gate must let it dial A: it runs a group of its own with an invite open
    await C.net.createGroup('others')
    await C.net.invite(600_000)
  })

  after(async () => {
    await stopNetPeers(peers)
    rmSync(dir, { recursive: true, force: true })
  })

  it('a stranger\'s request is answered NOT_MEMBER before it is read (no 30 MiB buffered, no wait for it)', async () => {
    await A.net.invite(60_000)
    for (const protocol of [SHARD_PROTOCOL, ROSTER_PROTOCOL, RELAY_NOTICE_PROTOCOL]) {
      const stream = await C.net.node.dialProtocol(addrOf(A), protocol, { signal: AbortSignal.timeout(5000) })
      const lp = lpStream(stream, { maxDataLength: 64 * 1024 })
      await lp.write(Buffer.from(JSON.stringify({ op: protocol === SHARD_PROTOCOL ? 'put' : protocol === ROSTER_PROTOCOL ? 'push' : 'invites' })))
      // the length of a 30 MiB body, and only the first bytes of it: a node that reads the request
      // before checking membership waits here until its deadline (60 s)
      const prefix = Uint8Array.of(0x80, 0x80, 0x80, 0x0f)
      await stream.send(prefix)
      stream.send(new Uint8Array(1024))
      const head = (await lp.read({ signal: AbortSignal.timeout(5000) })).subarray()
      const header = JSON.parse(Buffer.from(head).toString('utf8')) as { status: string }
      assert.equal(header.status, 'NOT_MEMBER', protocol)
      stream.abort(new Error('done'))
    }
  })

  it('a wrong invite proof is refused before the inviter builds or signs anything', async () => {
    const code = await A.net.invite(60_000)
    const invite = decodeInviteCode(C.home.sodium, code, Date.now())
    const serial = (A.net.roster as Roster).serial
    // a proof made for another device, and a certificate that is not C's: the proof is what fails
    const claim = inviteClaim(invite, B.net.peerId, C.home.identity.userId)
    assert.equal(await codeOf('C joins with a proof made for B', requestJoin(C.net.node, addrOf(A), {
      groupId: invite.groupId, inviteId: claim.inviteId, proof: claim.proof, userId: C.home.identity.userId, name: 'c', deviceCert: B.net.deviceCert()
    })), 'ERR_INVALID_INVITE')
    assert.equal((A.net.roster as Roster).serial, serial)
  })

  it('strangers\' connections end when the last open invite is used', async () => {
    await A.net.membership.revokeInvites()
    const code = await A.net.invite(60_000)
    await C.net.node.dial(addrOf(A))
    await waitFor('A to see the stranger connected', () => connected(A, C), 5000)
    await B.net.join(code)
    await waitFor('A to close the stranger\'s connection', () => !connected(A, C), 10_000)
    // a new connection is refused at A's gate: it ends at once, if it opens at all
    await C.net.node.dial(addrOf(A), { signal: AbortSignal.timeout(5000) }).catch(() => {})
    await waitFor('A to refuse C', () => !connected(A, C), 5000)
  })

  it('strangers\' connections end when the last open invite expires, with no other event', async () => {
    await A.net.invite(1500)
    await C.net.node.dial(addrOf(A))
    await waitFor('A to see the stranger connected', () => connected(A, C), 5000)
    await waitFor('A to close the stranger\'s connection after the expiry', () => !connected(A, C), 10_000)
  })

  it('a relay shows a stranger out when the member it carried strangers for withdraws its invite notice', async () => {
    await A.net.membership.revokeInvites()
    // R relays for the group; it has no invite of its own
    const R = await startNetPeer(dir, 'r', { relay: 'serve' })
    peers.push(R)
    await R.net.join(await A.net.invite(60_000))
    await A.net.membership.revokeInvites()
    // A tells R it has an open invite: strangers may reach R, to be carried to A
    await sendInvitesNotice(A.net.node, R.net.node.peerId, Date.now() + 60_000)
    await C.net.node.dial(addrOf(R))
    await waitFor('R to see the stranger connected', () => connected(R, C), 5000)
    // A's invite is used or withdrawn: its notice says so, and R closes the stranger's connection
    await sendInvitesNotice(A.net.node, R.net.node.peerId, 0)
    await waitFor('R to close the stranger\'s connection', () => !connected(R, C), 20_000)
  })

  it('`group invite --revoke` withdraws a code: it admits nobody, and strangers are shown out', async () => {
    const code = await A.net.invite(60_000)
    await C.net.node.dial(addrOf(A))
    await waitFor('A to see the stranger connected', () => connected(A, C), 5000)
    assert.equal(await A.net.membership.revokeInvites(code), 1)
    await waitFor('A to close the stranger\'s connection', () => !connected(A, C), 10_000)
    // C is in a group of its own, so it joins through a fresh node of the same stranger (no roster)
    const C2 = await startNetPeer(dir, 'c2')
    peers.push(C2)
    // refused at A's gate (the connection ends during the handshake or the request) or by the invite book
    const refusedAs = await codeOf('a stranger joins with the revoked code', C2.net.join(code))
    assert.ok(['ERR_REFUSED', 'ERR_INVALID_INVITE', 'ERR_PROTOCOL'].includes(refusedAs), refusedAs)
    assert.equal(C2.net.roster, null)
    assert.ok(A.net.roster?.members.every(m => m.userId !== C2.home.identity.userId))
  })

  it('the CLI: `group invite --revoke CODE` and `--revoke all`', async () => {
    const home = join(dir, 'cli')
    const env = { P2PBAK_HOME: home }
    assert.equal((await runCli(['init', '--insecure-no-passphrase'], env)).code, 0)
    assert.equal((await runCli(['group', 'create', 'solo'], env)).code, 0)
    const a = (await runCli(['group', 'invite', '--json'], env)).json<{ invite: string }>().invite
    await runCli(['group', 'invite', '--json'], env)
    const one = await runCli(['group', 'invite', '--revoke', a, '--json'], env)
    assert.equal(one.code, 0, one.stderr)
    assert.deepEqual(one.json(), { revoked: 1 })
    assert.deepEqual((await runCli(['group', 'invite', '--revoke', 'all', '--json'], env)).json(), { revoked: 1 })
    const none = await runCli(['group', 'invite', '--revoke', a], env)
    assert.equal(none.code, 1)
  })
})
