/**
 * A relay role that follows the laptop (issue 12 items 2 and 4, docs/network.md §15.11), with real
 * daemons in the NAT lab and default settings (`daemon` with no option but the lab's listen address):
 *
 *   ray  (public) creates the group; bob (home B) and ann (home A, a laptop) join
 *   ann  behind NAT she keeps a reservation on ray's relay (role reserve)
 *   ann  carried to a network where she has a public address: without a restart she relays for
 *        members (role both: her reservations from home stay as a spare), is reachable directly, and
 *        bob reserves on her relay
 *   ann  carried back home: role reserve again, a reservation on ray, and her next backup lands on
 *        her friends and restores byte-exact
 *
 * Needs what the NAT lab needs (test/helpers/nat-lab.ts); skipped with the reason otherwise.
 */
import assert from 'node:assert/strict'
import { waitFor } from '../helpers/daemons.js'
import { backupAndRestoreFromFriends, cli, reachOf, startDaemon, status, useNatLab, type Person } from '../helpers/lab-people.js'
import { PUBLIC, type NatLab } from '../helpers/nat-lab.js'

describe('e2e: a laptop\'s relay role follows it from home to a public network and back', function () {
  this.timeout(420_000)
  const openLab = useNatLab('roaming')

  /**
   * ray (public), bob (home B) and ann (home A) with default daemon settings, in a new lab; `until`
   * waits for a condition and says how long it took (every daemon's log on a timeout).
   */
  async function threeFriends (test: Mocha.Context): Promise<{ lab: NatLab, dir: string, ray: Person, bob: Person, ann: Person, people: Person[], until: (what: string, check: () => Promise<boolean>, ms: number) => Promise<number> }> {
    const { lab, dir, person, logs } = await openLab(test, { publicHosts: ['r'], homes: { a: ['a'], b: ['b'] } })
    const ray = person('ray', 'r', [])
    const bob = person('bob', 'b', [])
    const ann = person('ann', 'a', [])
    const until = async (what: string, check: () => Promise<boolean>, ms: number): Promise<number> => {
      const t = Date.now()
      await waitFor(what, check, ms).catch((err: unknown) => { throw new Error(`${String(err)}
${logs()}`) })
      return Date.now() - t
    }
    return { lab, dir, ray, bob, ann, people: [ray, bob, ann], until }
  }

  it('ann serves as a relay while she has a public address, and keeps reservations again back home, without a restart', async function () {
    const { lab: l, dir, ray, bob, ann, people, until } = await threeFriends(this)

    await Promise.all(people.map(async p => await cli(p, 'init')))
    await Promise.all(people.map(async p => { await startDaemon(l, p) }))
    await cli(ray, 'group', 'create', 'roaming')
    await cli(bob, 'join', (await cli(ray, 'group', 'invite', '--json')).json<{ invite: string }>().invite)
    await cli(ann, 'join', (await cli(ray, 'group', 'invite', '--json')).json<{ invite: string }>().invite)
    await cli(ray, 'contribute', '1G')
    await cli(bob, 'contribute', '1G')
    await until('ann behind NAT with a reservation on ray', async () => {
      const r = (await status(ann)).reachability
      return r.role === 'reserve' && r.relays.includes(ray.peerId ?? '')
    }, 60_000)

    // to a network where the laptop has a public address of its own
    l.move('a', PUBLIC)
    const annIp = l.hosts.a?.ip ?? ''
    const toServe = await until('ann serving with her public address', async () => {
      const r = (await status(ann)).reachability
      // she keeps the reservations she made at home as a spare (network.md §15.11): serving as well is `both`
      return r.role === 'both' && r.addrs.some(a => a.startsWith(`/ip4/${annIp}/tcp/4737/`))
    }, 60_000)
    const annSelf = (await status(ann)).reachability
    assert.equal(annSelf.reachable, true, annSelf.how)
    assert.ok(annSelf.addrs[0]?.startsWith(`/ip4/${annIp}/tcp/4737/`), `friends get her public address first: ${annSelf.addrs.join(', ')}`)
    assert.ok(annSelf.how.includes(`directly at /ip4/${annIp}/tcp/4737/`) && annSelf.how.includes('relays for members'), annSelf.how)
    const bobOnAnn = await until('bob holding a reservation on ann\'s relay', async () => (await status(bob)).reachability.relays.includes(ann.peerId ?? ''), 120_000)

    // back home
    l.move('a', 'a')
    const toReserve = await until('ann behind NAT again, with a reservation on ray', async () => {
      const r = (await status(ann)).reachability
      return r.role === 'reserve' && r.relays.includes(ray.peerId ?? '')
    }, 90_000)
    await until('bob no longer counting on ann\'s relay', async () => !(await status(bob)).reachability.relays.includes(ann.peerId ?? ''), 90_000)
    const { backupMs, restoreMs } = await backupAndRestoreFromFriends(dir, 'src', ann, [ray, bob], 1_000_000)
    console.log(`      roaming: serve ${toServe} ms after the move to a public network, bob reserved on her ${bobOnAnn} ms later; reserve again ${toReserve} ms after the move home; backup ${backupMs} ms, restore ${restoreMs} ms`)
  })

  it('a daemon started before the network was up takes a role once it is: ann keeps a reservation on ray and bob reaches her', async function () {
    const { lab: l, ray, bob, ann, people, until } = await threeFriends(this)
    await Promise.all(people.map(async p => await cli(p, 'init')))
    // ann's laptop boots with its network down (loopback only): her daemon starts with role off
    l.exec('a', ['ip', 'link', 'set', 'eth0', 'down'])
    await Promise.all(people.map(async p => { await startDaemon(l, p) }))
    assert.equal((await status(ann)).reachability.role, 'off')
    // the network comes up
    l.exec('a', ['sh', '-ec', `ip link set eth0 up; ip route add default via ${l.routers.a?.lanIp ?? ''}`])
    await cli(ray, 'group', 'create', 'late network')
    await cli(bob, 'join', (await cli(ray, 'group', 'invite', '--json')).json<{ invite: string }>().invite)
    await cli(ann, 'join', (await cli(ray, 'group', 'invite', '--json')).json<{ invite: string }>().invite)
    const reserved = await until('ann behind NAT with a reservation on ray', async () => {
      const r = (await status(ann)).reachability
      return r.role === 'reserve' && r.relays.includes(ray.peerId ?? '')
    }, 90_000)
    // bob (home B) reaches her: through ray's relay or a direct path
    await until('bob reaching ann', async () => reachOf(await status(bob), ann) !== null, 90_000)
    console.log(`      late network: ann held a reservation on ray ${reserved} ms after her join`)
  })
})
