/**
 * Builds the js-libp2p node: TCP, Noise, yamux, identify, ping, optional mDNS and a Kademlia DHT on
 * a private protocol name (members only, all their addresses), with a connection gater that admits
 * only peers the caller allows (the group's roster, plus peers holding an invite while they join)
 * and a guard that keeps identify and the DHT for members. Requires src/util/polyfill.ts to be
 * loaded first on Node 20.
 */
import { createLibp2p, type Libp2p, type Libp2pOptions } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, identifyPush } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { generateKeyPair, generateKeyPairFromSeed, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { Connection, PeerId, PrivateKey, Startable, Stream, StreamHandler, StreamHandlerOptions } from '@libp2p/interface'
import { scopedLogger } from '../util/log.js'
import { errorMessage } from '../errors.js'

const log = scopedLogger('node:libp2p')
import type { RelayParts } from './relay.js'

export const DHT_PROTOCOL = '/p2pbak/lan/kad/1.0.0'
/** WebRTC's signalling (direct-paths.ts): only members may start a direct connection */
export const WEBRTC_SIGNALING_PROTOCOL = '/webrtc-signaling/0.0.1'
/**
 * libp2p's own services that answer whoever opens a stream and would tell a stranger something:
 * identify (listen addresses, protocols), identify push, and our DHT (peer ids and addresses of
 * members). Only peers that `servePeer` accepts get them; the p2pbak protocols check membership
 * themselves (and `join` must stay open). Ping stays open: it reveals nothing a connection does not,
 * and libp2p's connection monitor aborts a connection whose pings fail (a joiner's, mid-join).
 * WebRTC's signalling is guarded too: a stranger let in to redeem an invite gets no direct path.
 */
export const GUARDED_PROTOCOLS: readonly string[] = ['/ipfs/id/1.0.0', '/ipfs/id/push/1.0.0', DHT_PROTOCOL, WEBRTC_SIGNALING_PROTOCOL]

export interface P2pNodeInit {
  /** the device key (persisted by the caller) */
  privateKey: PrivateKey
  /** multiaddrs to listen on. @default ['/ip4/127.0.0.1/tcp/0'] */
  listen?: string[]
  /** multiaddrs to tell peers (identify, DHT, invites) instead of the listen addresses */
  announce?: string[]
  /** discover peers on the LAN. @default false (multicast must not leave test machines) */
  mdns?: boolean
  /** mDNS query interval in ms. @default 10000 */
  mdnsInterval?: number
  /** run the DHT. @default true */
  dht?: boolean
  /** the local address outgoing TCP connections are made from (tests tell nodes on one loopback apart) */
  dialFrom?: string
  /**
   * Decides who may connect (after Noise authenticated their peer id). Absent: everyone (used only
   * before a node belongs to a group).
   */
  allowPeer?: (peerId: PeerId) => boolean
  /**
   * Decides who gets an answer from identify and the DHT on a connection they opened streams on
   * (a stranger holding an invite may connect to join, but learns nothing else). Absent: everyone.
   */
  servePeer?: (peerId: PeerId) => boolean
  /** circuit relay among members (relay.ts): its transport, server, reservations and gater hooks */
  relay?: RelayParts
  /** more libp2p services (port mappings from the home router, port-mapping.ts) */
  services?: Record<string, unknown>
  /** more transports (the WebRTC one of members behind NAT, direct-paths.ts) */
  transports?: P2pTransport[]
  /** DHT records under `/p2pbak/...` keys: which values to store, and which of several is best */
  records?: {
    validate: (key: Uint8Array, value: Uint8Array) => void
    select: (key: Uint8Array, values: Uint8Array[]) => number
  }
}

export type P2pNode = Libp2p
/** a transport factory, as libp2p takes it */
export type P2pTransport = NonNullable<Libp2pOptions['transports']>[number]

type TcpDialOpts = NonNullable<NonNullable<Parameters<typeof tcp>[0]>['dialOpts']>

export async function createP2pNode (init: P2pNodeInit): Promise<P2pNode> {
  const allow = init.allowPeer
  const serve = init.servePeer
  const services = {
    // with a guard, identify runs only on members' connections (below): a stranger is never
    // identified, so it never enters the DHT's routing table and is never sent a query or a record
    identify: identify({ runOnConnectionOpen: serve === undefined }),
    // a new address (a relay reservation, a port mapping) reaches the connected members at once (only
    // identified peers, i.e. members, are pushed to; the guard takes pushes from members only)
    identifyPush: identifyPush(),
    // libp2p's connection monitor pings too: one outbound ping stream per peer is not enough
    ping: ping({ maxOutboundStreams: 8, maxInboundStreams: 8 }),
    ...(serve !== undefined ? { guard: protocolGuard(serve) } : {}),
    ...(init.dht !== false
      ? {
          dht: kadDHT({
            protocol: DHT_PROTOCOL,
            clientMode: false,
            // only members take part (the guard), so every address a member announces is worth keeping:
            // a friend on another network is found at its public (forwarded) address
            peerInfoMapper: passthroughMapper,
            ...(init.records !== undefined ? { validators: { p2pbak: init.records.validate }, selectors: { p2pbak: init.records.select } } : {})
          })
        }
      : {}),
    ...init.relay?.services,
    ...init.services
  }
  const node = await createLibp2p({
    start: false,
    privateKey: init.privateKey,
    addresses: { listen: [...(init.listen ?? ['/ip4/127.0.0.1/tcp/0']), ...(init.relay?.listen ?? [])], ...(init.announce !== undefined ? { announce: init.announce } : {}) },
    // net.connect takes localAddress; @libp2p/tcp passes dialOpts through to it
    transports: [tcp(init.dialFrom !== undefined ? { dialOpts: { localAddress: init.dialFrom } as TcpDialOpts } : {}), ...(init.relay !== undefined ? [init.relay.transport] : []), ...(init.transports ?? [])],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // friends behind one address (a home NAT, or nodes on loopback) must not trip the per-host
    // inbound rate limit (libp2p's default: 5 a second)
    connectionManager: { inboundConnectionThreshold: 50 },
    // loaded only when asked for (`daemon --mdns`): a node without it does not pay for its modules
    peerDiscovery: init.mdns === true ? [(await import('@libp2p/mdns')).mdns({ interval: init.mdnsInterval ?? 10_000 })] : [],
    services,
    connectionGater: {
      ...init.relay?.gater,
      ...(allow === undefined
        ? {}
        : {
            denyInboundEncryptedConnection: async (peerId: PeerId) => !allow(peerId),
            denyOutboundEncryptedConnection: async (peerId: PeerId) => !allow(peerId),
            denyDialPeer: async (peerId: PeerId) => !allow(peerId)
          })
    }
  })
  if (serve !== undefined) {
    node.addEventListener('connection:open', (evt) => {
      if (serve(evt.detail.remotePeer)) void identifyConnection(node, evt.detail)
    })
  }
  await node.start()
  return node
}

/** Runs identify on a connection (a failure is logged: a closed connection needs none). */
export async function identifyConnection (node: P2pNode, connection: Connection): Promise<void> {
  const service = (node.services as { identify?: { identify: (c: Connection, o?: { signal?: AbortSignal }) => Promise<unknown> } }).identify
  await service?.identify(connection, { signal: AbortSignal.timeout(10_000) }).catch((err: unknown) => { log('identify with %s failed: %s', connection.remotePeer.toString(), errorMessage(err)) })
}

/** Raised on a stream a stranger opened on a guarded protocol; libp2p aborts the stream with it. */
class StrangerRefusedError extends Error {
  readonly code = 'ERR_NOT_MEMBER'
}

interface HandlerRegistry {
  getHandler: (protocol: string) => { handler: StreamHandler, options: StreamHandlerOptions }
  handle: (protocol: string, handler: StreamHandler, options?: StreamHandlerOptions) => Promise<void>
}

/**
 * A libp2p service that wraps the handlers of GUARDED_PROTOCOLS so that they answer only peers
 * `serve` accepts; a stranger's stream is aborted before the handler sees it. It rewraps after the
 * other services registered their handlers (start) and before the node listens (the transports'
 * afterStart only begins listening, and the rewrap is synchronous). libp2p 3.3's stream middleware
 * would be the natural tool, but it keeps the handler in the shared middleware list (js-libp2p PR
 * #3534) and then runs it on outbound streams too.
 */
function protocolGuard (serve: (peerId: PeerId) => boolean): (components: { registrar: HandlerRegistry }) => Startable {
  return ({ registrar }) => ({
    start: () => {},
    stop: () => {},
    afterStart: () => {
      for (const protocol of GUARDED_PROTOCOLS) {
        let record: { handler: StreamHandler, options: StreamHandlerOptions }
        try { record = registrar.getHandler(protocol) } catch { continue } // not running (the DHT may be off)
        const inner = record.handler
        const guarded: StreamHandler = (stream: Stream, connection: Connection) => {
          if (!serve(connection.remotePeer)) {
            stream.abort(new StrangerRefusedError(`${connection.remotePeer.toString()} is not a member of this node's group`))
            return
          }
          return inner(stream, connection)
        }
        void registrar.handle(protocol, guarded, { ...record.options, force: true }).catch((err: unknown) => { log.error('guarding %s for members failed: %s', protocol, errorMessage(err)) })
      }
    }
  })
}

export async function newDeviceKey (): Promise<PrivateKey> {
  return await generateKeyPair('Ed25519')
}

/** The Ed25519 device key of a 32-byte seed (a write-only machine's, carried by its key file). */
export async function deviceKeyFromSeed (seed: Uint8Array): Promise<PrivateKey> {
  return await generateKeyPairFromSeed('Ed25519', seed)
}

export function encodeDeviceKey (key: PrivateKey): Uint8Array { return privateKeyToProtobuf(key) }
export function decodeDeviceKey (bytes: Uint8Array): PrivateKey { return privateKeyFromProtobuf(bytes) }
