/**
 * Builds the js-libp2p node: TCP, Noise, yamux, identify, ping, optional mDNS and a Kademlia DHT on
 * a private protocol name, with a connection gater that admits only peers the caller allows (the
 * group's roster, plus peers holding an invite while they join). Requires src/util/polyfill.ts to be
 * loaded first on Node 20.
 */
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { mdns } from '@libp2p/mdns'
import { kadDHT, removePublicAddressesMapper } from '@libp2p/kad-dht'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PeerId, PrivateKey } from '@libp2p/interface'

export const DHT_PROTOCOL = '/p2pbak/lan/kad/1.0.0'

export interface P2pNodeInit {
  /** the device key (persisted by the caller) */
  privateKey: PrivateKey
  /** multiaddrs to listen on. @default ['/ip4/127.0.0.1/tcp/0'] */
  listen?: string[]
  /** discover peers on the LAN. @default false (multicast must not leave test machines) */
  mdns?: boolean
  /** mDNS query interval in ms. @default 10000 */
  mdnsInterval?: number
  /** run the DHT. @default true */
  dht?: boolean
  /**
   * Decides who may connect (after Noise authenticated their peer id). Absent: everyone (used only
   * before a node belongs to a group).
   */
  allowPeer?: (peerId: PeerId) => boolean
}

export type P2pNode = Libp2p

export async function createP2pNode (init: P2pNodeInit): Promise<P2pNode> {
  const allow = init.allowPeer
  const services = {
    identify: identify(),
    // libp2p's connection monitor pings too: one outbound ping stream per peer is not enough
    ping: ping({ maxOutboundStreams: 8, maxInboundStreams: 8 }),
    ...(init.dht !== false ? { dht: kadDHT({ protocol: DHT_PROTOCOL, clientMode: false, peerInfoMapper: removePublicAddressesMapper }) } : {})
  }
  return await createLibp2p({
    privateKey: init.privateKey,
    addresses: { listen: init.listen ?? ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // friends behind one address (a home NAT, or nodes on loopback) must not trip the per-host
    // inbound rate limit (libp2p's default: 5 a second)
    connectionManager: { inboundConnectionThreshold: 50 },
    peerDiscovery: init.mdns === true ? [mdns({ interval: init.mdnsInterval ?? 10_000 })] : [],
    services,
    connectionGater: allow === undefined
      ? {}
      : {
          denyInboundEncryptedConnection: async (peerId: PeerId) => !allow(peerId),
          denyOutboundEncryptedConnection: async (peerId: PeerId) => !allow(peerId),
          denyDialPeer: async (peerId: PeerId) => !allow(peerId)
        }
  })
}

export async function newDeviceKey (): Promise<PrivateKey> {
  return await generateKeyPair('Ed25519')
}

export function encodeDeviceKey (key: PrivateKey): Uint8Array { return privateKeyToProtobuf(key) }
export function decodeDeviceKey (bytes: Uint8Array): PrivateKey { return privateKeyFromProtobuf(bytes) }
