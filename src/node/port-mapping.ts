/**
 * Port mappings from the home router (docs/network.md §15.8): a daemon behind NAT (relay role
 * `reserve` or `both`) asks its router, where the router allows it, to forward a public port to its
 * TCP listen port (UPnP IGD, `@libp2p/upnp-nat` 4.0.28), and gives friends the router's public
 * address with that port first. A friend in another home then dials it directly over TCP, even
 * through a symmetric NAT where WebRTC hole punching fails, and no relay carries its shares.
 *
 *   discovery   SSDP M-SEARCH on the LAN at start, one a second for 5 s, again every minute until
 *               a gateway answers (then upnp-nat searches for 1 min every 5 min, one M-SEARCH
 *               every 10 s, for routers that appear later); a router with UPnP off never
 *               answers, and nothing else happens
 *   mapping     AddAnyPortMapping (WANIPConnection:2) of the listen port, TCP, the same external
 *               port if free (the router may give another), lease 1 h (the least upnp-nat asks),
 *               renewed 5 min before it ends; described `p2pbak` on the router (not the peer id)
 *   external    the router's external address is asked every 5 min; a new one moves the mapped address
 *   announce    the mapped address is confirmed at once (`autoConfirmAddress`), see below, and joins
 *               the node's addresses (identify pushes it to connected members; invites; the DHT)
 *   stop        DeletePortMapping when the daemon stops (1 s at most: a mapping left behind by a
 *               crash lapses with its lease). upnp-nat names the listen port there, not the
 *               external one: a mapping the router gave another port number lapses instead
 *
 * Why no confirmation by AutoNAT: AutoNAT asks other peers to dial the address back, and only
 * members ever talk to this node (a stranger is refused after Noise). A router that accepted the
 * mapping and reports a public external address (a private one, a second NAT at the provider, is
 * refused by upnp-nat) forwards the port; where something upstream still drops it, a friend's dial
 * of that address fails within `dialInOrder`'s 5 s and the relayed addresses are tried next.
 *
 * NAT-PMP (RFC 6886) is asked where UPnP found no router in its first search: pmp-mapping.ts. The
 * UPnP client is made here (the one upnp-nat would make, same settings) and watched, so that
 * NAT-PMP knows whether an SSDP search found a router.
 *
 * The same module confirms a node's public listen addresses (every role, {@link OwnAddresses}):
 * libp2p 3 would otherwise wait for AutoNAT before announcing them.
 */
import type { FindGatewaysOptions, Gateway, UPnPNAT } from '@achingbrain/nat-port-mapper'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Startable } from '@libp2p/interface'
import type { P2pNode } from './libp2p-node.js'
import { addrClass } from './reachability.js'
import { reserves, type RelayRole } from './relay.js'
import type { MappingBook, PmpMapping, PmpPolicy, RouterSearch } from './pmp-mapping.js'

export interface PortMappingPolicy {
  /** the lease asked of the router (upnp-nat asks at least 1 h) */
  leaseMs: number
  /** how long before the lease ends it is renewed */
  renewBeforeMs: number
  /** what the router's mapping list shows */
  description: string
  /** while no router answered: the wait between two searches (5 s each) */
  searchAgainMs: number
  /** how often the router is asked for its external address (a new one moves the mapped address) */
  externalCheckMs: number
}

export const DEFAULT_PORT_MAPPING_POLICY: PortMappingPolicy = {
  leaseMs: 3_600_000,
  renewBeforeMs: 300_000,
  description: 'p2pbak',
  searchAgainMs: 60_000,
  externalCheckMs: 300_000
}

/** The part of libp2p's address manager that says where each address comes from, and takes confirmations. */
interface AddressBook {
  getAddressesWithMetadata: () => Array<{ multiaddr: Multiaddr, type: string, verified: boolean }>
  confirmObservedAddr: (addr: Multiaddr, options?: { type?: 'transport', ttl?: number }) => void
}

interface NodeEvents {
  addEventListener: (type: 'transport:listening', listener: () => void) => void
  removeEventListener: (type: 'transport:listening', listener: () => void) => void
}

/** a confirmation that never lapses (what upnp-nat gives its mappings) */
const FOREVER_MS = (): number => 8_640_000_000_000_000 - Date.now()

/**
 * A libp2p service over the node's own addresses. libp2p 3 announces a listen address on a public
 * interface only once something confirmed it (AutoNAT, which would need strangers to dial back):
 * this confirms every public TCP listen address at once, as the relay role already takes them for
 * reachable (relay.ts relayRoleFor; a firewall in front is the owner's to open, as with `--announce`).
 * It also says which addresses a router's port mapping gave.
 */
class OwnAddresses implements Startable {
  constructor (private readonly components: { addressManager: AddressBook, events: NodeEvents }) {}

  start (): void { this.components.events.addEventListener('transport:listening', this.confirmPublic) }
  afterStart (): void { this.confirmPublic() }
  stop (): void { this.components.events.removeEventListener('transport:listening', this.confirmPublic) }

  private readonly confirmPublic = (): void => {
    const book = this.components.addressManager
    for (const a of book.getAddressesWithMetadata()) {
      if (a.type === 'transport' && !a.verified && addrClass(a.multiaddr) === 'public') book.confirmObservedAddr(a.multiaddr, { type: 'transport', ttl: FOREVER_MS() })
    }
  }

  /** `/ip4/PUBLIC/tcp/PORT` of every confirmed mapping now */
  mapped (): string[] {
    return [...new Set(this.components.addressManager.getAddressesWithMetadata().filter(a => a.type === 'ip-mapping' && a.verified).map(a => a.multiaddr.toString()))]
  }
}

/** The UPnP client upnp-nat would make, telling `search` when an SSDP search found a router. */
function watchedUpnp (upnpNat: typeof import('@achingbrain/nat-port-mapper').upnpNat, policy: PortMappingPolicy, search: RouterSearch): UPnPNAT {
  const client = upnpNat({ description: policy.description, ttl: policy.leaseMs, refreshThreshold: policy.renewBeforeMs })
  return {
    findGateways: async function * (options?: FindGatewaysOptions): AsyncGenerator<Gateway, void, unknown> {
      for await (const gateway of client.findGateways(options)) {
        search.upnpFound = true
        yield gateway
      }
    },
    getGateway: async (descriptor, options) => await client.getGateway(descriptor, options)
  }
}

/**
 * The libp2p services over this node's addresses: its own public listen addresses confirmed
 * ({@link OwnAddresses}, every role), and for a node behind NAT (`reserve`, `both`) upnp-nat and,
 * where UPnP finds no router, NAT-PMP (pmp-mapping.ts); no port mapping otherwise (a public address
 * needs none, and a loopback node must not search the LAN), nor when `portMapping` is false
 * (`daemon --no-port-mapping`). The mapping libraries (about 40 modules) are loaded only then.
 */
export async function addressServices (role: RelayRole, portMapping: boolean, policy: PortMappingPolicy = DEFAULT_PORT_MAPPING_POLICY, pmpPolicy?: PmpPolicy): Promise<Record<string, unknown>> {
  const own = { ownAddresses: (components: { addressManager: AddressBook, events: NodeEvents }) => new OwnAddresses(components) }
  if (!portMapping || !reserves(role)) return own
  const [{ uPnPNAT }, { upnpNat }, { DEFAULT_PMP_POLICY, PmpMapping }] = await Promise.all([import('@libp2p/upnp-nat'), import('@achingbrain/nat-port-mapper'), import('./pmp-mapping.js')])
  const search: RouterSearch = { upnpFound: false }
  return {
    ...own,
    pmp: (components: { addressManager: MappingBook }) => new PmpMapping(components, { search, policy: pmpPolicy ?? DEFAULT_PMP_POLICY }),
    upnp: uPnPNAT({
      autoConfirmAddress: true,
      // the client upnp-nat would make (description, lease, renewal), watched for NAT-PMP's sake
      portMappingClient: watchedUpnp(upnpNat, policy, search),
      // no gateway at start (UPnP off): search again every minute, not continuously
      initialGatewaySearchInterval: policy.searchAgainMs,
      externalAddressCheckInterval: policy.externalCheckMs
    })
  }
}

/** The addresses a port mapping on the router gives this node now (empty without one). */
export function mappedAddrs (node: P2pNode): string[] {
  return (node.services as { ownAddresses?: OwnAddresses }).ownAddresses?.mapped() ?? []
}

/** How the mappings of {@link mappedAddrs} were made, for `status`: `UPnP`, `NAT-PMP`, or both. */
export function mappedBy (node: P2pNode): string {
  const byPmp = (node.services as { pmp?: PmpMapping }).pmp?.addrs() ?? []
  const mapped = mappedAddrs(node)
  const ways = [mapped.some(a => !byPmp.includes(a)) ? 'UPnP' : undefined, mapped.some(a => byPmp.includes(a)) ? 'NAT-PMP' : undefined]
  return ways.filter(w => w !== undefined).join(' and ')
}

/** `IP:PORT` of a mapped multiaddr, for people (`/ip4/198.51.100.7/tcp/4737` → `198.51.100.7:4737`). */
export function hostPort (addr: string): string {
  const m = /^\/ip([46])\/([^/]+)\/(?:tcp|udp)\/(\d+)/.exec(addr)
  if (m === null) return addr
  return m[1] === '6' ? `[${m[2] ?? ''}]:${m[3] ?? ''}` : `${m[2] ?? ''}:${m[3] ?? ''}`
}
