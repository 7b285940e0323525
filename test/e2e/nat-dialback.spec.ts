/**
 * Whether friends elsewhere can really connect (issue 12 item 1, docs/network.md §15.10): members dial
 * each other's public addresses back, with real daemons in the NAT lab (test/helpers/nat-lab.ts) and
 * default settings but the refresh period.
 *
 *   ray  (public) creates the group and invites ann (home A, router A runs miniupnpd)
 *   ann  maps her port on router A by UPnP; ray dials her back there
 *        - router A lets the mapping in: `status` says ray connected to it, she is reachable directly
 *        - something upstream drops it (a provider's filter, here a rule on router A): ray could not
 *          connect, `status` says so, she is reached through ray's relay, and friends get the mapped
 *          address last
 *   ray  ann dials ray's public address back: `status` says she connected there
 *
 * Needs what nat-upnp.spec.ts needs (root, iproute2, iptables, miniupnpd, nft); skipped with the
 * reason otherwise.
 */
import assert from 'node:assert/strict'
import { waitFor } from '../helpers/daemons.js'
import { cli, startDaemon, status, tail, useNatLab, type Person, type StatusJson } from '../helpers/lab-people.js'
import type { NatLab } from '../helpers/nat-lab.js'

const PUBLIC_NET = '11.0.0'
type Verdict = { addr: string, ok: boolean, by: string, atMs: number, error?: string }
const verdicts = (s: StatusJson): Verdict[] => (s.reachability as unknown as { dialback: Verdict[] }).dialback

describe('e2e: members dial each other\'s public addresses back (AutoNAT among members)', function () {
  this.timeout(240_000)
  const openLab = useNatLab('dialback', { upnp: true })

  /** ray (public) and ann (home A, UPnP on her router) in one group; `blocked`: router A drops new connections to the mapped port. */
  async function twoHomes (test: Mocha.Context, blocked: boolean): Promise<{ lab: NatLab, ray: Person, ann: Person, mappedAddr: string, rayAddr: string }> {
    const { lab, person } = await openLab(test, { publicHosts: ['r'], homes: { a: ['a'] }, upnp: ['a'], publicNet: PUBLIC_NET })
    const ray = person('ray', 'r')
    const ann = person('ann', 'a')
    const people = [ray, ann]
    if (blocked) lab.exec('router-a', ['iptables', '-I', 'FORWARD', '1', '-i', 'wan', '-p', 'tcp', '--dport', '4737', '-m', 'conntrack', '--ctstate', 'NEW', '-j', 'DROP'])
    await Promise.all(people.map(async p => await cli(p, 'init')))
    await Promise.all(people.map(async p => { await startDaemon(lab, p) }))
    await cli(ray, 'group', 'create', 'two homes')
    await cli(ann, 'join', (await cli(ray, 'group', 'invite', '--json')).json<{ invite: string }>().invite)
    return { lab, ray, ann, mappedAddr: `/ip4/${lab.routers.a?.wanIp ?? ''}/tcp/4737`, rayAddr: `/ip4/${lab.hosts.r?.ip ?? ''}/tcp/4737` }
  }

  const verdictOn = async (lab: NatLab, p: Person, addr: string, label: string): Promise<Verdict> => {
    let found: Verdict | undefined
    await waitFor(label, async () => { found = verdicts(await status(p)).find(v => v.addr === addr); return found !== undefined }, 90_000)
      .catch((err: unknown) => { throw new Error(`${String(err)}: ${JSON.stringify(lab.portMappings('a'))}\n--- ${p.name}'s log ---\n${tail(p.log, 5000)}`) })
    return found as Verdict
  }

  it('ray connects to ann\'s port mapping, and ann to ray\'s public address: both say so', async function () {
    const { lab, ray, ann, mappedAddr, rayAddr } = await twoHomes(this, false)
    const onAnn = await verdictOn(lab, ann, mappedAddr, 'ray\'s dial-back of ann\'s mapped port')
    assert.deepEqual([onAnn.ok, onAnn.by], [true, ray.peerId], JSON.stringify(onAnn))
    const annSelf = (await status(ann)).reachability
    assert.equal(annSelf.reachable, true)
    assert.ok(annSelf.how.includes(`checked by dial-back: ${ray.peerId ?? ''} connected to ${mappedAddr.split('/')[2] ?? ''}:4737`), annSelf.how)
    assert.ok(annSelf.addrs[0]?.startsWith(`${mappedAddr}/p2p/`), annSelf.addrs.join(', '))
    const onRay = await verdictOn(lab, ray, rayAddr, 'ann\'s dial-back of ray\'s public address')
    assert.deepEqual([onRay.ok, onRay.by], [true, ann.peerId], JSON.stringify(onRay))
    // the text people read
    const text = (await cli(ann, 'status')).stdout
    assert.ok(new RegExp(`this node is reachable: .*checked by dial-back: \\S+ connected to ${mappedAddr.split('/')[2] ?? ''}:4737 at `).test(text), text)
  })

  it('a mapping something upstream drops: ray cannot connect, ann says so, is reached through ray\'s relay and gives the mapped address last', async function () {
    const { lab, ray, ann, mappedAddr } = await twoHomes(this, true)
    const onAnn = await verdictOn(lab, ann, mappedAddr, 'ray\'s dial-back of ann\'s mapped port')
    assert.deepEqual([onAnn.ok, onAnn.by], [false, ray.peerId], JSON.stringify(onAnn))
    assert.match(onAnn.error ?? '', /within 5000 ms|timed out|abort/i)
    await waitFor('ann\'s reservation on ray', async () => (await status(ann)).reachability.relays.includes(ray.peerId ?? ''), 60_000)
    const annSelf = (await status(ann)).reachability
    assert.equal(annSelf.reachable, true, 'through the relay')
    assert.ok(!annSelf.how.includes('port mapped on the router'), annSelf.how)
    assert.ok(annSelf.how.includes(`not directly: ${ray.peerId ?? ''} could not connect to ${mappedAddr.split('/')[2] ?? ''}:4737`), annSelf.how)
    const at = annSelf.addrs.findIndex(a => a.startsWith(`${mappedAddr}/`))
    const relayed = annSelf.addrs.findIndex(a => a.includes('/p2p-circuit'))
    assert.ok(at > relayed && relayed >= 0, `the mapped address comes after the relayed ones: ${annSelf.addrs.join(', ')}`)
    const text = (await cli(ann, 'status')).stdout
    assert.ok(new RegExp(`this node is reachable: behind NAT, through the relay of \\S+; not directly: \\S+ could not connect to ${mappedAddr.split('/')[2] ?? ''}:4737 \\(no connection within 5000 ms\\)`).test(text), text)
  })
})
