/**
 * A stranger (a libp2p node of no group) trying to use a member's relay, run inside a NAT-lab
 * namespace by test/e2e/nat-traversal.spec.ts:
 *
 *   node --import tsx --import ./src/util/polyfill.ts test/helpers/relay-stranger.ts RELAY_ADDR TARGET_PEER_ID
 *
 * It tries (1) to reserve a slot on the relay (listen on RELAY_ADDR/p2p-circuit) and (2) to open a
 * relayed connection to TARGET through it, and (3) a WebRTC connection to TARGET signalled through
 * the relay (a direct path, docs/network.md §15.7). The last stdout line is a {@link StrangerResult}:
 * what each attempt ended with.
 */
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { webRTC } from '@libp2p/webrtc'
import { multiaddr } from '@multiformats/multiaddr'

export interface Attempt { ok: boolean, error?: string }
export interface StrangerResult { connect: Attempt, reserve: Attempt, relayedDial: Attempt, webrtcDial: Attempt }

const [relayAddr, target] = process.argv.slice(2)
if (relayAddr === undefined || target === undefined) throw new Error('usage: relay-stranger.ts RELAY_ADDR TARGET_PEER_ID')

async function attempt (fn: () => Promise<unknown>): Promise<Attempt> {
  try {
    await fn()
    return { ok: true }
  } catch (err: unknown) {
    return { ok: false, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }
  }
}

async function main (): Promise<StrangerResult> {
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/0.0.0.0/tcp/0'] },
    transports: [tcp(), circuitRelayTransport(), webRTC({ rtcConfiguration: { iceServers: [] } })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  })
  try {
    const relay = multiaddr(relayAddr as string)
    const connect = await attempt(async () => await node.dial(relay, { signal: AbortSignal.timeout(10_000) }))
    // a reservation: what a relay client does when it listens on a relay's /p2p-circuit address
    const tm = (node as unknown as { components: { transportManager: { listen: (a: unknown[]) => Promise<void> } } }).components.transportManager
    const reserve = await attempt(async () => {
      await tm.listen([relay.encapsulate('/p2p-circuit')])
      if (!node.getMultiaddrs().some(a => a.toString().includes('/p2p-circuit'))) throw new Error('no relayed address after listening')
    })
    const relayedDial = await attempt(async () => await node.dial(relay.encapsulate(`/p2p-circuit/p2p/${target as string}`), { signal: AbortSignal.timeout(15_000) }))
    const webrtcDial = await attempt(async () => await node.dial(relay.encapsulate(`/p2p-circuit/webrtc/p2p/${target as string}`), { signal: AbortSignal.timeout(15_000) }))
    return { connect, reserve, relayedDial, webrtcDial }
  } finally {
    await node.stop()
  }
}

main().then((r) => {
  process.stdout.write(`${JSON.stringify(r)}\n`)
  process.exit(0)
}, (err: unknown) => {
  process.stderr.write(`relay-stranger: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(2)
})
