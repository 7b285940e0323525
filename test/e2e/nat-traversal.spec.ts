/**
 * Friends in different homes (issue 12), with real daemons in a small internet of network namespaces
 * (test/helpers/nat-lab.ts): ray on the public segment, bob behind router B, ann behind router A,
 * both routers doing MASQUERADE NAT with no port forwarding, and a stranger on the public segment.
 *
 *   ray  group create, invite         → bob joins (dials ray directly)
 *   bob  keeps a reservation on ray's relay, invites (the code carries the relayed address)
 *   ann  joins through ray's relay to bob; the relayed connection between the homes is replaced by a
 *        direct one (WebRTC, hole-punched with ray's STUN responder); she backs up to bob (directly,
 *        not through the relay: ray's byte count says so) and ray (directly); restores; ray stops
 *        and she restores again from bob alone
 *   the stranger can neither reserve on ray, nor be relayed to ann, nor open a WebRTC path to anyone
 *   status: how each friend is reached, this node's reachability, the bytes ray relayed per member
 *
 * The symmetric variant (MASQUERADE --random-fully) cannot punch holes: join, backup and restore go
 * over the relay, and the failed attempt is shown in `status`. The daemons log with DEBUG=$NAT_DEBUG
 * (default `p2pbak:*`; add `libp2p:webrtc*` to follow ICE).
 * Needs root, util-linux, iproute2 and iptables (.ci/run installs them); skipped with the reason
 * otherwise. Everything the lab made vanishes with its holder processes (nat-lab.ts).
 */
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadBackend } from '../../src/crypto/index.js'
import { decodeInviteCode } from '../../src/peers/index.js'
import { waitFor } from '../helpers/daemons.js'
import { backupAndRestoreFromFriends, cli, reachOf, startDaemon, status, stopDaemon, tail, useNatLab, type Person } from '../helpers/lab-people.js'
import type { NatLab, NatLabOptions } from '../helpers/nat-lab.js'
import { compareTrees } from '../helpers/tree-compare.js'
import type { StrangerResult } from '../helpers/relay-stranger.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** Runs `relay-stranger.ts` in the stranger's namespace. */
async function stranger (lab: NatLab, relayAddr: string, target: string): Promise<StrangerResult> {
  const child = lab.spawnIn('s', [process.execPath, '--import', 'tsx', '--import', './src/util/polyfill.ts', 'test/helpers/relay-stranger.ts', relayAddr, target], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout?.on('data', (b: Buffer) => out.push(b))
  child.stderr?.on('data', (b: Buffer) => err.push(b))
  const code = await new Promise<number | null>(resolve => child.once('close', resolve))
  const last = Buffer.concat(out).toString().trim().split('\n').pop() ?? ''
  assert.equal(code, 0, `the stranger's script failed: ${Buffer.concat(err).toString().slice(-3000)}`)
  return JSON.parse(last) as StrangerResult
}

interface Flow { joinMs: number, backupMs: number, sourceBytes: number, restoreMs: number }

/** ray creates the group, bob joins directly, ann joins through ray's relay to bob, backs up and restores. */
async function groupAcrossHomes (lab: NatLab, dir: string, people: Record<'ray' | 'bob' | 'ann', Person>, sourceBytes: number, afterJoin?: () => Promise<void>): Promise<Flow> {
  const { ray, bob, ann } = people
  await Promise.all(Object.values(people).map(async p => await cli(p, 'init')))
  await Promise.all(Object.values(people).map(async p => { await startDaemon(lab, p) }))
  await cli(ray, 'group', 'create', 'three homes')
  await cli(bob, 'join', (await cli(ray, 'group', 'invite', '--json')).json<{ invite: string }>().invite)
  // bob invites ann, a new person: only an admin's invite brings one in (format/group.md §5.3)
  const bobId = (await cli(ray, 'group', 'members', '--json')).json<{ members: Array<{ userId: string, you: boolean }> }>().members.find(m => !m.you)?.userId ?? ''
  await cli(ray, 'group', 'admin', bobId)
  await cli(ray, 'contribute', '1G')
  await cli(bob, 'contribute', '1G')
  // bob, behind NAT, keeps a reservation on ray's relay and says so
  await waitFor('bob\'s reservation on ray\'s relay', async () => (await status(bob)).reachability.relays.includes(ray.peerId ?? ''), 90_000)
  const code = (await cli(bob, 'group', 'invite', '--json')).json<{ invite: string }>().invite
  const invite = decodeInviteCode(await loadBackend(), code, Date.now())
  const relayed = `/p2p/${ray.peerId ?? ''}/p2p-circuit/p2p/${bob.peerId ?? ''}`
  assert.ok(invite.addrs.some(a => a.endsWith(relayed)), `bob's invite carries his relayed address: ${invite.addrs.join(', ')}`)
  assert.ok(!invite.addrs.some(a => a.includes('/127.0.0.1/')), `no loopback address in an invite: ${invite.addrs.join(', ')}`)
  let t = Date.now()
  await cli(ann, 'join', code)
  const joinMs = Date.now() - t
  await afterJoin?.()
  // ann's backup goes to bob (home B) and ray (public); she restores from them alone
  const { sourceBytes: bytes, backupMs, restoreMs } = await backupAndRestoreFromFriends(dir, 'src', ann, [bob, ray], sourceBytes)
  return { joinMs, backupMs, sourceBytes: bytes, restoreMs }
}

describe('e2e: friends in different homes, behind NAT (network namespaces)', function () {
  this.timeout(600_000)
  const openLab = useNatLab('nat')

  /** ray (public), bob (home B) and ann (home A) in a new lab; `defaults`: the daemons run with default settings. */
  async function setUp (test: Mocha.Context, opts: NatLabOptions, defaults = false): Promise<{ lab: NatLab, dir: string, p: Record<'ray' | 'bob' | 'ann', Person> }> {
    const { lab, dir, person } = await openLab(test, opts)
    const args = defaults ? [] : undefined
    return { lab, dir, p: { ray: person('ray', 'r', args), bob: person('bob', 'b', args), ann: person('ann', 'a', args) } }
  }

  it('ann (home A) joins through an invite bob made in home B, via ray\'s relay; her backup to bob and ray restores byte-exact; a stranger cannot use the relay; status says how each friend is reached', async function () {
    const { lab, dir, p } = await setUp(this, { publicHosts: ['r', 's'], homes: { a: ['a'], b: ['b'] } })
    const { ray, bob, ann } = p
    // the hole punch follows the join within a second (network.md §15.7); on a loaded machine an
    // attempt can fail, and the next one comes 2 min later: wait for it, and say how long it took
    let punchMs = 0
    const holePunched = async (): Promise<void> => {
      const t = Date.now()
      await waitFor('ann and bob reaching each other hole-punched', async () =>
        reachOf(await status(ann), bob)?.how === 'holepunched' && reachOf(await status(bob), ann)?.how === 'holepunched', 170_000, 1000)
        .catch(async (err: unknown) => {
          const paths = async (from: Person, to: Person): Promise<string> => JSON.stringify((await status(from)).peers.find(x => x.peerId === to.peerId))
          throw new Error(`${String(err)}\nann's view of bob: ${await paths(ann, bob)}\nbob's view of ann: ${await paths(bob, ann)}\n--- bob's log ---\n${tail(bob.log, 4000)}\n--- ann's log ---\n${tail(ann.log, 4000)}`)
        })
      punchMs = Date.now() - t
    }
    const flow = await groupAcrossHomes(lab, dir, p, 12_000_000, holePunched)

    // how ann reaches her friends, and how ray sees itself and what it carried
    const annStatus = await status(ann)
    assert.equal(reachOf(annStatus, bob)?.how, 'holepunched', `ann reaches bob directly (WebRTC): ${JSON.stringify(annStatus.peers)}`)
    assert.equal(reachOf(await status(bob), ann)?.how, 'holepunched', 'and bob reaches ann the same way')
    assert.equal(reachOf(annStatus, ray)?.how, 'direct')
    assert.equal(annStatus.reachability.role, 'reserve')
    const rayStatus = await status(ray)
    assert.equal(rayStatus.reachability.role, 'serve')
    assert.equal(rayStatus.reachability.reachable, true)
    // the join went through ray's relay (a few KiB), the 12 MB of shares to bob and back did not
    const carried = rayStatus.reachability.carried
    const relayedForAnn = carried[ann.peerId ?? '']?.bytes ?? 0
    assert.ok(relayedForAnn > 0, `ray counts what it relayed for ann (her join): ${JSON.stringify(carried)}`)
    assert.ok(relayedForAnn < 2_000_000, `the shares between ann and bob did not go through ray's relay: ${JSON.stringify(carried)}`)

    // a stranger on the public segment: while nobody invites, ray's gater refuses it after Noise (its
    // dial may still see the handshake complete before the close), so it can neither reserve nor be relayed
    const rayAddr = `/ip4/${lab.hosts.r?.ip ?? ''}/tcp/4737/p2p/${ray.peerId ?? ''}`
    const closed = await stranger(lab, rayAddr, ann.peerId ?? '')
    assert.equal(closed.reserve.ok, false, JSON.stringify(closed))
    assert.equal(closed.relayedDial.ok, false, JSON.stringify(closed))
    // while bob has an open invite, ray lets it connect and relays it to bob only (to redeem the
    // invite): still no reservation, and no way to ann
    await cli(bob, 'group', 'invite', '--json')
    const open = await stranger(lab, rayAddr, ann.peerId ?? '')
    assert.equal(open.connect.ok, true, JSON.stringify(open))
    assert.equal(open.reserve.ok, false, JSON.stringify(open))
    assert.equal(open.relayedDial.ok, false, JSON.stringify(open))
    const toInviter = await stranger(lab, rayAddr, bob.peerId ?? '')
    assert.equal(toInviter.reserve.ok, false, JSON.stringify(toInviter))
    assert.equal(toInviter.relayedDial.ok, true, `relayed to the member who invites: ${JSON.stringify(toInviter)}`)
    // …but a stranger gets no direct path to anyone: the WebRTC signalling answers members only
    for (const r of [closed, open, toInviter]) assert.equal(r.webrtcDial.ok, false, JSON.stringify(r))

    // the direct path does not need ray any more: with ray stopped, ann restores from bob alone
    await stopDaemon(ray)
    rmSync(join(ann.home, 'store', 'shares'), { recursive: true, force: true })
    const again = join(dir, 'restored-without-ray')
    const t = Date.now()
    await cli(ann, 'restore', 'latest', '--target', again)
    const src = join(dir, 'src')
    assert.deepEqual(compareTrees(src, join(again, src), { mtimeResolutionNs: 1000n }), [])
    assert.equal(reachOf(await status(ann), bob)?.how, 'holepunched', 'bob is still reached directly')
    const withoutRayMs = Date.now() - t

    const mbps = (bytes: number, ms: number): string => (bytes / ms / 1000).toFixed(1)
    console.log(`      NAT lab: join across two NATs ${flow.joinMs} ms, hole-punched ${punchMs} ms later; backup of ${flow.sourceBytes} bytes ${flow.backupMs} ms (${mbps(flow.sourceBytes, flow.backupMs)} MB/s, to bob hole-punched); restore ${flow.restoreMs} ms, from bob alone with ray stopped ${withoutRayMs} ms; ray relayed ${relayedForAnn} bytes for ann`)
  })

  it('with symmetric NAT (MASQUERADE --random-fully) on both homes, join, backup and restore go over the relay', async function () {
    const { lab, dir, p } = await setUp(this, { publicHosts: ['r', 's'], homes: { a: ['a'], b: ['b'] }, symmetric: true })
    const flow = await groupAcrossHomes(lab, dir, p, 4_000_000)
    const s = await status(p.ann)
    assert.equal(s.peers.find(x => x.peerId === p.bob.peerId)?.reach?.how, 'relayed')
    // one of the two tried a direct path, and it failed (ICE cannot pair ports a symmetric NAT picks at random)
    await waitFor('a failed direct-path attempt in status', async () => {
      const paths = [(await status(p.ann)).peers.find(x => x.peerId === p.bob.peerId)?.directPath, (await status(p.bob)).peers.find(x => x.peerId === p.ann.peerId)?.directPath]
      return paths.some(d => d?.state === 'waiting' && d.failures >= 1)
    }, 60_000)
    const carried = (await status(p.ray)).reachability.carried
    assert.ok((carried[p.ann.peerId ?? '']?.bytes ?? 0) > flow.sourceBytes, `the relay carried ann's backup to bob: ${JSON.stringify(carried)}`)
    // ray's signed ledger statement says so, and ann sees it (format/ledger.md version 2)
    await waitFor('ann sees in ray\'s ledger statement what ray relayed for her', async () => {
      const friends = (await cli(p.ann, 'status', '--json')).json<{ friends: Array<{ name: string, relays: number, relaysForYou: number }> }>().friends
      const r = friends.find(f => f.relays > 0) // ray, the only relay
      return r !== undefined && r.relaysForYou > flow.sourceBytes && r.relays >= r.relaysForYou
    }, 30_000)
    console.log(`      symmetric NAT: join ${flow.joinMs} ms, backup of ${flow.sourceBytes} bytes ${flow.backupMs} ms, restore ${flow.restoreMs} ms`)
  })

  it('a laptop carried to another home finds its friends again on its own, with default settings, and backs up to them', async function () {
    // the refresh period users get (30 s), not the tests' 2 s
    const { lab, dir, p } = await setUp(this, { publicHosts: ['r', 's'], homes: { a: ['a'], b: ['b'] } }, true)
    await groupAcrossHomes(lab, dir, p, 2_000_000)
    const { ray, bob, ann } = p
    // ann takes her laptop from home A to bob's home: a new address behind another router
    lab.move('a', 'b')
    const t = Date.now()
    await waitFor('ann reaches ray (directly) and bob (now on her LAN) again, and holds a reservation on ray again', async () => {
      const s = await status(ann)
      return reachOf(s, ray)?.how === 'direct' && reachOf(s, bob)?.how === 'lan' && s.reachability.relays.includes(ray.peerId ?? '')
    }, 150_000)
    const reconnectMs = Date.now() - t
    await waitFor('bob reaches ann on his LAN', async () => reachOf(await status(bob), ann)?.how === 'lan', 60_000)
    // ray sees her come from home B's router now (her old connection, from home A's, is gone)
    const wanB = lab.routers.b?.wanIp ?? ''
    await waitFor('ray reaches ann through home B\'s router', async () => (reachOf(await status(ray), ann)?.addr ?? '').includes(`/ip4/${wanB}/`), 60_000)
    // a backup made after the move lands on friends at once
    const { sourceBytes: bytes } = await backupAndRestoreFromFriends(dir, 'after-the-move', ann, [bob, ray], 1_000_000, 2)
    console.log(`      moved: ann found ray and bob again ${reconnectMs} ms after her laptop changed network (refresh every 30 s); backed up ${bytes} bytes to them`)
  })
})
