/**
 * DirectPaths' decisions (docs/network.md §15.7) when a friend behind NAT announces a port its router
 * just mapped: the libp2p node under it is a stand-in that records dials and answers them as a test
 * says, because the cases here (two dials of one address at once, a router that refuses the first
 * connection) are races a real network shows once in many runs (the NAT-PMP end-to-end test has the real one).
 */
import assert from 'node:assert/strict'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Connection } from '@libp2p/interface'
import { DirectPaths, FRESH_ADDRESS_TRIES } from '../../../src/node/direct-paths.js'
import type { P2pNode } from '../../../src/node/libp2p-node.js'

const SELF = '12D3KooWHihsc7Y9Rg6PCyBUD3vHm5dWQEZCsjV9jM3ZV2GzJBVV'
const RELAY = '12D3KooWNycJ5ChYiLRtEtBvWVt8mW8sYFEo37jgJmkTHhS6T6db'
const ANN = '12D3KooWRasuRHoi1xZEhhnYUq7iMy8u2e6MjMcPsueBdFe1jnNV'
/** ann's port, mapped on her router (a public address) */
const MAPPED = '/ip4/11.0.0.11/tcp/4737'

function conn (addr: string): Connection {
  const c = { remoteAddr: multiaddr(addr), remotePeer: { toString: () => ANN }, direction: 'outbound', status: 'open', streams: [], close: async () => { c.status = 'closed' } }
  return c as unknown as Connection
}

/** A node connected to ann through RELAY only; `dial` is what each dial does (it may add connections). */
function nodeWith (dial: (addrs: Multiaddr[]) => Promise<Connection>): { node: P2pNode, conns: Connection[], dials: string[][], addrs: string[] } {
  const conns = [conn(`/ip4/11.0.0.2/tcp/4737/p2p/${RELAY}/p2p-circuit/p2p/${ANN}`)]
  const dials: string[][] = []
  /** ann's addresses, as identify gave them */
  const addrs = [MAPPED]
  const node = {
    peerId: { toString: () => SELF },
    getConnections: () => conns,
    getMultiaddrs: () => [multiaddr('/ip4/10.0.2.2/tcp/4737')],
    peerStore: { get: async () => ({ addresses: addrs.map(a => ({ multiaddr: multiaddr(a) })), protocols: [] }) },
    dial: async (addrs: Multiaddr[]) => { dials.push(addrs.map(a => a.toString())); return await dial(addrs) },
    addEventListener: () => {},
    removeEventListener: () => {}
  }
  return { node: node as unknown as P2pNode, conns, dials, addrs }
}

describe('node/direct-paths: a friend\'s newly mapped address', () => {
  let now = 1_000_000
  const hooks = { isMember: () => true, now: () => now }

  it('is reached directly when its own dial fails because another dial of the same address won', async () => {
    const { node, conns, dials } = nodeWith(async () => {
      // what libp2p does with two dials of one address at once: the first connection stays, the
      // second is aborted, and the caller joined to the second gets this error
      conns.push(conn(`${MAPPED}/p2p/${ANN}`))
      throw new Error('Remote closed connection during opening')
    })
    const paths = new DirectPaths(node, hooks)
    await paths.upkeep()
    assert.equal(dials.length, 1)
    assert.deepEqual(paths.report()[ANN], { state: 'direct', via: 'tcp', attempts: 1, failures: 0 })
    assert.equal(conns[0]?.status, 'closed', 'the idle relayed connection is closed')
  })

  it(`is dialled ${FRESH_ADDRESS_TRIES} times before it waits like any other, and then waits`, async () => {
    const { node, dials } = nodeWith(async () => { throw new Error('Remote closed connection during opening') })
    const paths = new DirectPaths(node, hooks)
    await paths.upkeep()
    assert.equal(paths.report()[ANN]?.state, 'waiting')
    await paths.upkeep() // the next round: the address was dialled once only
    assert.equal(dials.length, 2, 'a second try, before the wait is over')
    await paths.upkeep()
    await paths.upkeep()
    assert.equal(dials.length, 2, 'no third before the wait is over')
    const wait = (paths.report()[ANN]?.nextAttemptAt ?? 0) - now
    assert.equal(wait, 2 * paths.policy.retryMs, 'the wait doubled after the second failure')
    now += wait
    await paths.upkeep()
    assert.equal(dials.length, 3, 'tried again once the wait is over')
  })

  it('that drops out of identify and comes back is not fresh again', async () => {
    const { node, dials, addrs } = nodeWith(async () => { throw new Error('connect ECONNREFUSED 11.0.0.11:4737') })
    const paths = new DirectPaths(node, hooks)
    await paths.upkeep()
    await paths.upkeep()
    assert.equal(dials.length, FRESH_ADDRESS_TRIES)
    const other = '/ip4/11.0.0.99/tcp/4737'
    addrs.splice(0, 1, other) // the mapping is gone, another came: it is fresh
    await paths.upkeep()
    assert.equal(dials.length, FRESH_ADDRESS_TRIES + 1)
    addrs.splice(0, 1, MAPPED) // the first comes back: tried twice already, it waits
    await paths.upkeep()
    await paths.upkeep()
    assert.equal(dials.length, FRESH_ADDRESS_TRIES + 1)
  })

  it('succeeds on the second try when the first is refused', async () => {
    let n = 0
    const { node, conns, dials } = nodeWith(async () => {
      if (++n === 1) throw new Error('connect ECONNREFUSED 11.0.0.11:4737')
      const c = conn(`${MAPPED}/p2p/${ANN}`)
      conns.push(c)
      return c
    })
    const paths = new DirectPaths(node, hooks)
    await paths.upkeep()
    await paths.upkeep()
    assert.equal(dials.length, 2)
    assert.deepEqual(paths.report()[ANN], { state: 'direct', via: 'tcp', attempts: 2, failures: 1 })
  })
})
