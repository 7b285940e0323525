/**
 * In-process NetworkNodes on 127.0.0.1 for multi-node tests: a fresh home (cheap KDF, no passphrase)
 * per name, or an already open one to restart a node on; and the matching clean-up.
 */
import { join } from 'node:path'
import { Home } from '../../src/node/home.js'
import { GroupState } from '../../src/node/group-state.js'
import { NetworkNode } from '../../src/node/network.js'
import type { RelayMode } from '../../src/node/relay.js'

const KDF = { opslimit: 1, memlimit: 8192 }

export interface NetPeer { name: string, dir: string, home: Home, net: NetworkNode }

/** Starts a node for ROOT/NAME (created unless `home` is given), listening on 127.0.0.1, DHT off unless asked. */
export async function startNetPeer (root: string, name: string, opts: { dht?: boolean, home?: Home, relay?: RelayMode } = {}): Promise<NetPeer> {
  const dir = join(root, name)
  let home = opts.home
  if (home === undefined) {
    await Home.init({ home: dir, passphrase: null, kdf: KDF })
    home = await Home.open({ home: dir, passphrase: async () => null })
  }
  const net = await NetworkNode.start(home, await GroupState.load(home), { listen: ['/ip4/127.0.0.1/tcp/0'], dht: opts.dht === true, ...(opts.relay !== undefined ? { relay: opts.relay } : {}) })
  return { name, dir, home, net }
}

/** Stops every node, then closes each home once. */
export async function stopNetPeers (peers: readonly NetPeer[]): Promise<void> {
  for (const p of peers) await p.net.stop().catch(() => {})
  for (const h of new Set(peers.map(p => p.home))) await h.closeNow().catch(() => {})
}
