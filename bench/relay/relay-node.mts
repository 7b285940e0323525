// One node of bench/relay/relay-throughput.mts: r (relay), b (reserves, sinks /bench/1), a (sends).
// role r: relay server; role b: reserves on R, sinks /bench/1; role a: dials B via R, sends N MiB, prints ms
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { multiaddr } from '@multiformats/multiaddr'
const [role, arg, mib] = process.argv.slice(2)
const node = await createLibp2p({
  addresses: { listen: role === 'r' ? ['/ip4/0.0.0.0/tcp/4737'] : role === 'b' ? ['/ip4/0.0.0.0/tcp/4737', `${arg}/p2p-circuit`] : [] },
  transports: [tcp(), circuitRelayTransport()],
  connectionEncrypters: [noise()], streamMuxers: [yamux()],
  services: { identify: identify(), ...(role === 'r' ? { relay: circuitRelayServer({ reservations: { applyDefaultLimit: false } }) } : {}) }
})
if (role === 'r') { console.log(node.getMultiaddrs().map(String).find(a => a.includes('198.18'))) }
if (role === 'b') {
  await node.handle('/bench/1', async (stream) => {
    let n = 0
    stream.addEventListener('message', (e) => { n += e.data.byteLength })
    stream.addEventListener('remoteCloseWrite', () => { stream.send(new TextEncoder().encode(String(n))); void stream.close() })
  }, { runOnLimitedConnection: true })
  for (;;) { const r = node.getMultiaddrs().map(String).find(a => a.includes('p2p-circuit') && a.includes('198.18')); if (r) { console.log(r); break } await new Promise(r => setTimeout(r, 100)) }
}
if (role === 'a') {
  const total = Number(mib) * 1024 * 1024
  const t0 = Date.now()
  const stream = await node.dialProtocol(multiaddr(arg!), '/bench/1', { runOnLimitedConnection: true })
  const t1 = Date.now()
  const chunk = new Uint8Array(64 * 1024)
  let sent = 0
  const done = new Promise<string>(res => stream.addEventListener('message', (e) => res(new TextDecoder().decode(e.data.subarray()))))
  while (sent < total) { if (!stream.send(chunk)) await new Promise(r => stream.addEventListener('drain', r, { once: true })); sent += chunk.byteLength }
  await stream.close()
  const got = await done
  const ms = Date.now() - t1
  console.log(JSON.stringify({ dialMs: t1 - t0, bytes: sent, received: Number(got), ms, MBps: +(sent / ms / 1000).toFixed(1) }))
  await node.stop(); process.exit(0)
}
