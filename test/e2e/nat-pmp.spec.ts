/**
 * A port mapping from a home router that speaks NAT-PMP only (issue 12, docs/network.md §15.8), with
 * real daemons in the NAT lab (test/helpers/nat-lab.ts): both homes behind a symmetric NAT (MASQUERADE
 * --random-fully, where WebRTC hole punching fails), router A runs miniupnpd with UPnP off and NAT-PMP
 * on (as some Apple and OpenWrt routers), router B runs nothing. Default settings everywhere.
 *
 *   ray  (public) creates the group and invites bob (home B), then ann (home A)
 *   ann  her daemon's SSDP search finds no router; it asks its default gateway (router A) by NAT-PMP
 *        for its external address and a mapping of TCP port 4737; `status` says she is reachable
 *        directly at router A's WAN address by NAT-PMP; bob dials her there over TCP (no relay, no WebRTC)
 *   ann  backs up to bob and ray; ray's relay carries next to nothing for her; she restores
 *        byte-exact from her friends; when her daemon stops, the mapping is gone from router A
 *
 * Needs what the NAT lab needs, plus miniupnpd (Debian's miniupnpd-nftables) and nft (.ci/run installs
 * them); skipped with the reason otherwise. The daemons log with DEBUG=$NAT_DEBUG (default `p2pbak:*`;
 * `p2pbak:pmp` is in it; add `nat-port-mapper:pmp` for the library's packets); NAT_KEEP=1 keeps their logs in the test's
 * temporary directory.
 */
import assert from 'node:assert/strict'
import { waitFor } from '../helpers/daemons.js'
import { cli, directOverMapping, startDaemon, status, useNatLab } from '../helpers/lab-people.js'

/** miniupnpd will not map on the lab's usual 198.18.0.0/24 (reserved): any range works in the namespaces */
const PUBLIC_NET = '11.0.0'

describe('e2e: a port mapping from a NAT-PMP-only home router reaches a home behind a symmetric NAT directly', function () {
  this.timeout(300_000)
  const openLab = useNatLab('pmp', { upnp: true })

  it('ann\'s daemon maps its port on router A by NAT-PMP, bob reaches her directly over TCP, her backup does not go through ray\'s relay, and the mapping goes when her daemon stops', async function () {
    const { lab, dir, person } = await openLab(this, { publicHosts: ['r'], homes: { a: ['a'], b: ['b'] }, symmetric: true, upnp: ['a'], natpmpOnly: true, publicNet: PUBLIC_NET })
    const ray = person('ray', 'r')
    const bob = person('bob', 'b')
    const ann = person('ann', 'a')
    const people = [ray, bob, ann]
    const routerA = lab.routers.a?.wanIp ?? ''

    await Promise.all(people.map(async p => await cli(p, 'init')))
    const t = Date.now()
    await Promise.all(people.map(async p => { await startDaemon(lab, p) }))
    await cli(ray, 'group', 'create', 'three homes')
    await cli(bob, 'join', (await cli(ray, 'group', 'invite', '--json')).json<{ invite: string }>().invite)
    await cli(ann, 'join', (await cli(ray, 'group', 'invite', '--json')).json<{ invite: string }>().invite)
    await cli(ray, 'contribute', '1G')
    await cli(bob, 'contribute', '1G')

    // ann's daemon asked router A for a mapping of its port by NAT-PMP, and says she is reachable there
    const mappedAddr = `/ip4/${routerA}/tcp/4737`
    await waitFor('ann\'s port mapping in her status', async () => (await status(ann)).reachability.mapped.includes(mappedAddr), 60_000)
    const mappedMs = Date.now() - t
    const annSelf = (await status(ann)).reachability
    assert.equal(annSelf.role, 'reserve')
    assert.equal(annSelf.reachable, true)
    assert.ok(annSelf.how.includes(`directly at ${routerA}:4737 (port mapped on the router by NAT-PMP)`), annSelf.how)
    assert.ok(annSelf.addrs[0]?.startsWith(`${mappedAddr}/p2p/`), `the mapped address comes first in what friends get: ${annSelf.addrs.join(', ')}`)
    assert.deepEqual(lab.portMappings('a'), [`iif "wan" @nh,72,8 0x6 th dport 4737 dnat ip to ${lab.hosts.a?.ip ?? ''}:4737`], `router A maps one TCP port, to ann: ${lab.upnpLog('a').slice(-2000)}`)
    const routerLog = lab.upnpLog('a')
    assert.match(routerLog, /NAT-PMP port mapping request : 4737->10\.0\.1\.2:4737 tcp lifetime=3600s/, `ann asked by NAT-PMP for 1 h: ${routerLog.slice(-2000)}`)
    assert.doesNotMatch(routerLog, /SSDP|HTTP/, 'router A speaks no UPnP (nothing answered an SSDP search)')
    // bob has no mapping (router B has neither UPnP nor NAT-PMP), and says so only by being reached through ray
    assert.deepEqual((await status(bob)).reachability.mapped, [])

    // bob reaches ann directly over TCP; her backup does not cross the relay; the mapping goes with her daemon
    const { directMs, sourceBytes: bytes, backupMs, restoreMs, relayed } = await directOverMapping(lab, dir, { ray, bob, ann }, mappedAddr)

    console.log(`      NAT-PMP: mapped ${mappedMs} ms after the daemons started (join included); bob direct to ann ${directMs} ms after; backup of ${bytes} bytes ${backupMs} ms; restore ${restoreMs} ms; ray relayed ${relayed} bytes for ann and bob`)
  })
})
