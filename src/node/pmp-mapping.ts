/**
 * Port mappings by NAT-PMP (RFC 6886), for home routers that speak no UPnP IGD (docs/network.md
 * §15.8): some Apple routers, OpenWrt or miniupnpd with UPnP off, and PCP servers that keep NAT-PMP
 * compatibility (RFC 6887 §9). The client is `@achingbrain/nat-port-mapper` 4.0.5's `pmpNat`.
 *
 *   when        only when UPnP found no router in its first search (asked 6 s after the node started:
 *               UPnP's first search lasts 5 s; a router that speaks both gets one mapping, by UPnP, as
 *               before); then every minute while neither answered. Once UPnP finds a router, NAT-PMP
 *               is not asked again
 *   gateway     the default IPv4 gateway, from /proc/net/route (Linux); elsewhere NAT-PMP is not
 *               asked (a log line says so)
 *   external    opcode 0 first: a private or reserved external address (a second NAT at the provider)
 *               is refused as upnp-nat refuses it (nothing mapped, asked again every 5 min); then
 *               again every 5 min, a new one moves the mapped address
 *   mapping     opcode 2 (TCP) for the TCP listen port of each private IPv4 listen address (§15.1's
 *               classes), the same external port suggested (the router may give another: its answer
 *               is used), lifetime 3600 s, renewed 5 min before it ends (a renewal that fails is tried
 *               every minute until the lease ends; then the address goes and the search starts again);
 *               a laptop on another network (new default gateway or listen address) drops the old
 *               mapping at the next turn (5 min at most) and maps on the new router
 *   announce    `/ip4/EXT/tcp/PORT` is added to the address manager as an ip mapping and confirmed at
 *               once, as upnp-nat's `autoConfirmAddress` does (port-mapping.ts says why)
 *   stop        lifetime 0 for each mapping (1 s at most), when the router gave the port asked: the
 *               library always suggests the internal port as the external one, RFC 6886 routers
 *               ignore it on deletion but miniupnpd deletes the mapping of that external port, which
 *               could be another device's; a mapping on another port lapses with its lease
 *
 * What the library does not do, and this module does around it: it sends each request once, with no
 * retransmission and no timeout, and a request that got no answer blocks every later one on the same
 * object; its `ttl` is written as seconds into the request while its auto-refresh reads it as
 * milliseconds; a socket error is emitted as an `error` event (a crash without a listener). So every
 * exchange here opens its own gateway object (one UDP socket, bound to port 5350 as the library does),
 * with auto-refresh off and the lifetime in seconds, waits 250 ms, then 0.5, 1 and 2 s on fresh ones
 * (RFC 6886 §3.1's doubling, 3.75 s in all), listens for `error`, and closes it.
 */
import { readFile } from 'node:fs/promises'
import { endianness } from 'node:os'
import { pmpNat, type Gateway } from '@achingbrain/nat-port-mapper'
import { isPrivateIp } from '@libp2p/utils'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Startable } from '@libp2p/interface'
import { errorMessage } from '../errors.js'
import { scopedLogger } from '../util/log.js'
import { ipClass } from './reachability.js'

const log = scopedLogger('pmp')

export interface PmpPolicy {
  /** the lifetime asked of the router */
  leaseMs: number
  /** how long before the lifetime ends the mapping is asked again */
  renewBeforeMs: number
  /** the first question, after the node started (UPnP's first search lasts 5 s) */
  firstAfterMs: number
  /** while no router answered (or a renewal failed): the wait before asking again */
  searchAgainMs: number
  /** how often the router's external address is asked (and how soon again after a private one) */
  externalCheckMs: number
  /** the wait for each answer, one fresh request each (RFC 6886 §3.1: 250 ms, doubling) */
  triesMs: number[]
  /** the wait for the router to delete the mappings when the node stops */
  stopMs: number
}

export const DEFAULT_PMP_POLICY: PmpPolicy = {
  leaseMs: 3_600_000,
  renewBeforeMs: 300_000,
  firstAfterMs: 6_000,
  searchAgainMs: 60_000,
  externalCheckMs: 300_000,
  triesMs: [250, 500, 1000, 2000],
  stopMs: 1000
}

/** What the UPnP search found so far (port-mapping.ts sets it when a router answers SSDP). */
export interface RouterSearch { upnpFound: boolean }

/**
 * The default IPv4 gateway in the text of Linux's /proc/net/route: the up route (flags RTF_UP and
 * RTF_GATEWAY) to 0.0.0.0/0 with the lowest metric. The kernel prints each address as the hex of its
 * 32 bits in the host's byte order (`0101000A` is 10.0.1.1 on a little-endian machine).
 */
export function defaultGatewayIn (procNetRoute: string, littleEndian = endianness() === 'LE'): string | undefined {
  let best: { ip: string, metric: number } | undefined
  for (const line of procNetRoute.split('\n').slice(1)) {
    const [, dest, gw, flags, , , metric, mask] = line.trim().split(/\s+/)
    if (dest !== '00000000' || mask !== '00000000' || gw === undefined || !/^[0-9A-Fa-f]{8}$/.test(gw)) continue
    if ((parseInt(flags ?? '0', 16) & 0x3) !== 0x3) continue
    const bytes = [0, 2, 4, 6].map(i => parseInt(gw.slice(i, i + 2), 16))
    const ip = (littleEndian ? bytes.reverse() : bytes).join('.')
    const m = Number(metric ?? 0)
    if (ip !== '0.0.0.0' && (best === undefined || m < best.metric)) best = { ip, metric: m }
  }
  return best?.ip
}

/** The default IPv4 gateway of this machine, or undefined (not Linux, no default route). */
export async function defaultGateway (): Promise<string | undefined> {
  if (process.platform !== 'linux') {
    log('NAT-PMP is not asked on %s: the default gateway is read from /proc/net/route (Linux only)', process.platform)
    return undefined
  }
  return defaultGatewayIn(await readFile('/proc/net/route', 'utf8'))
}

/** The NAT-PMP requests this module makes (an interface, so that tests can answer them). */
export interface PmpClient {
  externalIp: (gateway: string, signal: AbortSignal) => Promise<string>
  /** maps `internalPort` (TCP) for `leaseS` seconds, suggesting the same external port; the router may give another */
  map: (gateway: string, internalPort: number, leaseS: number, signal: AbortSignal) => Promise<{ externalPort: number }>
  /** lifetime 0 for `internalPort` (TCP): the router deletes the mapping */
  unmap: (gateway: string, internalPort: number, signal: AbortSignal) => Promise<void>
}

const isTimeout = (err: unknown): boolean => err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')

/** The library's NAT-PMP client, each exchange on a fresh gateway object, retried on silence (see the head of this file). */
export function libraryClient (tries: number[] = DEFAULT_PMP_POLICY.triesMs, open: (ip: string) => Gateway = ip => pmpNat(ip, { autoRefresh: false })): PmpClient {
  const once = async <T>(ip: string, ms: number, outer: AbortSignal, ask: (g: Gateway, signal: AbortSignal) => Promise<T>): Promise<T> => {
    const g = open(ip)
    const failed = new Promise<never>((_resolve, reject) => {
      (g as unknown as { on?: (e: 'error', l: (err: Error) => void) => void }).on?.('error', reject)
    })
    // raced below; one after the answer only closes the socket
    failed.catch((err: unknown) => { log('NAT-PMP socket to %s: %s', ip, errorMessage(err)) })
    try {
      return await Promise.race([ask(g, AbortSignal.any([outer, AbortSignal.timeout(ms)])), failed])
    } finally {
      await g.stop().catch((err: unknown) => { log('closing a NAT-PMP socket: %s', errorMessage(err)) })
    }
  }
  const retried = async <T>(ip: string, outer: AbortSignal, ask: (g: Gateway, signal: AbortSignal) => Promise<T>): Promise<T> => {
    let last: unknown
    for (const ms of tries) {
      if (outer.aborted) break
      try { return await once(ip, ms, outer, ask) } catch (err: unknown) {
        last = err
        if (!isTimeout(err) || outer.aborted) throw err // an answer that refuses is final
      }
    }
    throw last ?? new Error('NAT-PMP: no request was sent')
  }
  return {
    externalIp: async (ip, signal) => await retried(ip, signal, async (g, s) => await g.externalIp({ signal: s })),
    // internalHost '' keeps the library from asking the external address again inside `map`
    map: async (ip, port, leaseS, signal) => ({ externalPort: (await retried(ip, signal, async (g, s) => await g.map(port, '', { ttl: leaseS, autoRefresh: false, protocol: 'TCP', signal: s }))).externalPort }),
    unmap: async (ip, port, signal) => { await retried(ip, signal, async (g, s) => await g.map(port, '', { ttl: 0, autoRefresh: false, protocol: 'TCP', signal: s })) }
  }
}

/** The part of libp2p's address manager this module uses. */
export interface MappingBook {
  getAddressesWithMetadata: () => Array<{ multiaddr: Multiaddr, type: string }>
  addPublicAddressMapping: (internalIp: string, internalPort: number, externalIp: string, externalPort?: number, protocol?: 'tcp' | 'udp') => void
  removePublicAddressMapping: (internalIp: string, internalPort: number, externalIp: string, externalPort?: number, protocol?: 'tcp' | 'udp') => void
  confirmObservedAddr: (addr: Multiaddr, options?: { type?: 'ip-mapping', ttl?: number }) => void
}

export interface Clock {
  now: () => number
  setTimeout: (fn: () => void, ms: number) => unknown
  clearTimeout: (timer: unknown) => void
}

const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => { const t = setTimeout(fn, ms); t.unref(); return t },
  clearTimeout: t => { clearTimeout(t as ReturnType<typeof setTimeout>) }
}

export interface PmpDeps {
  search: RouterSearch
  policy?: PmpPolicy
  client?: PmpClient
  gateway?: () => Promise<string | undefined>
  clock?: Clock
}

interface Mapping { host: string, port: number, externalHost: string, externalPort: number, renewAt: number, expiresAt: number }

/** a confirmation that never lapses (what upnp-nat gives its mappings) */
const FOREVER_MS = (): number => 8_640_000_000_000_000 - Date.now()

/** `host:port` of every private IPv4 TCP listen address (what a home router can map to). */
function listenTargets (book: MappingBook): Array<{ host: string, port: number }> {
  const out = new Map<string, { host: string, port: number }>()
  for (const a of book.getAddressesWithMetadata()) {
    if (a.type !== 'transport') continue
    const m = /^\/ip4\/(\d+\.\d+\.\d+\.\d+)\/tcp\/(\d+)$/.exec(a.multiaddr.toString())
    if (m?.[1] === undefined || m[2] === undefined || ipClass(m[1]) !== 'private' || m[1].startsWith('169.254.')) continue
    out.set(`${m[1]}:${m[2]}`, { host: m[1], port: Number(m[2]) })
  }
  return [...out.values()]
}

/**
 * A libp2p service: the NAT-PMP mappings of a node behind NAT (see the head of this file). One timer;
 * each turn asks what is due (the search, a renewal, the external address) and sets the next one.
 */
export class PmpMapping implements Startable {
  private readonly policy: PmpPolicy
  private readonly client: PmpClient
  private readonly findGateway: () => Promise<string | undefined>
  private readonly clock: Clock
  private readonly mappings = new Map<string, Mapping>()
  private gateway: string | undefined
  private timer: unknown
  private turn: Promise<void> = Promise.resolve()
  private abort = new AbortController()
  private searchAt = 0
  private externalAt = 0
  private stopped = true

  constructor (private readonly components: { addressManager: MappingBook }, private readonly deps: PmpDeps) {
    this.policy = deps.policy ?? DEFAULT_PMP_POLICY
    this.client = deps.client ?? libraryClient(this.policy.triesMs)
    this.findGateway = deps.gateway ?? defaultGateway
    this.clock = deps.clock ?? realClock
  }

  start (): void { this.stopped = false; this.abort = new AbortController() }

  afterStart (): void {
    this.searchAt = this.clock.now() + this.policy.firstAfterMs
    this.plan()
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer)
    this.timer = undefined
    this.abort.abort()
    await this.turn
    const gateway = this.gateway
    const signal = AbortSignal.timeout(this.policy.stopMs)
    await Promise.all([...this.mappings.values()].map(async m => {
      this.unannounce(m)
      if (gateway === undefined) return
      if (m.externalPort !== m.port) {
        // the library suggests the internal port as the external one, and miniupnpd deletes by that
        // port: it could be another device's mapping. Ours lapses with its lease
        log('NAT-PMP: the mapping of %s:%d (to port %d) is left to lapse with its lease', m.externalHost, m.externalPort, m.port)
        return
      }
      try {
        await this.client.unmap(gateway, m.port, signal)
        log('NAT-PMP: deleted the mapping of %s:%d on %s', m.externalHost, m.externalPort, gateway)
      } catch (err: unknown) {
        log.error('NAT-PMP: could not delete the mapping of %s:%d on %s (it lapses with its lease): %s', m.externalHost, m.externalPort, gateway, errorMessage(err))
      }
    }))
    this.mappings.clear()
  }

  /** `/ip4/EXT/tcp/PORT` of every mapping made by NAT-PMP now */
  addrs (): string[] { return [...this.mappings.values()].map(m => `/ip4/${m.externalHost}/tcp/${m.externalPort}`) }

  /** settles once the turn under way (if any) is over: for tests */
  async idle (): Promise<void> { await this.turn }

  private plan (): void {
    if (this.stopped) return
    let at: number | undefined
    if (this.mappings.size === 0) {
      if (!this.deps.search.upnpFound) at = this.searchAt
    } else {
      at = Math.min(this.externalAt, ...[...this.mappings.values()].map(m => m.renewAt))
    }
    if (at === undefined) { log('NAT-PMP: a UPnP router answered, NAT-PMP is not asked'); return }
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined
      this.turn = this.step().catch((err: unknown) => { log.error('NAT-PMP: %s', errorMessage(err)) }).finally(() => { this.plan() })
    }, Math.max(0, at - this.clock.now()))
  }

  private async step (): Promise<void> {
    if (this.stopped) return
    if (this.mappings.size > 0) await this.checkMoved()
    if (this.mappings.size === 0) { await this.search(); return }
    const now = this.clock.now()
    if (now >= this.externalAt) await this.checkExternal()
    for (const m of [...this.mappings.values()]) if (!this.stopped && this.clock.now() >= m.renewAt) await this.renew(m)
  }

  /** a laptop carried to another network (§15.9): mappings on the old router are dropped, not deleted */
  private async checkMoved (): Promise<void> {
    const gateway = await this.findGateway()
    const targets = listenTargets(this.components.addressManager)
    for (const m of [...this.mappings.values()]) {
      if (gateway === this.gateway && targets.some(t => t.host === m.host && t.port === m.port)) continue
      log('NAT-PMP: %s:%d moved (default gateway %s, was %s): the mapping of %s:%d is no longer announced', m.host, m.port, gateway ?? 'none', this.gateway ?? 'none', m.externalHost, m.externalPort)
      this.drop(m)
    }
  }

  private async search (): Promise<void> {
    this.searchAt = this.clock.now() + this.policy.searchAgainMs
    if (this.deps.search.upnpFound) return
    const gateway = await this.findGateway()
    const targets = listenTargets(this.components.addressManager)
    if (gateway === undefined || targets.length === 0) {
      log('NAT-PMP not asked: %s', gateway === undefined ? 'no default IPv4 gateway' : 'no private IPv4 TCP listen address')
      return
    }
    let external: string
    try {
      external = await this.client.externalIp(gateway, this.abort.signal)
    } catch (err: unknown) {
      log('NAT-PMP: no answer from %s (%s); asking again in %d s', gateway, errorMessage(err), this.policy.searchAgainMs / 1000)
      return
    }
    if (this.stopped || this.deps.search.upnpFound) return
    if (isPrivateIp(external) !== false) {
      log.error('NAT-PMP: the router %s says its external address is %s, which is private or reserved (a second NAT at the provider): no port mapped', gateway, external)
      this.searchAt = this.clock.now() + this.policy.externalCheckMs
      return
    }
    this.gateway = gateway
    this.externalAt = this.clock.now() + this.policy.externalCheckMs
    for (const t of targets) {
      try {
        const asked = this.clock.now()
        const { externalPort } = await this.client.map(gateway, t.port, Math.round(this.policy.leaseMs / 1000), this.abort.signal)
        const m: Mapping = { ...t, externalHost: external, externalPort, renewAt: asked + this.policy.leaseMs - this.policy.renewBeforeMs, expiresAt: asked + this.policy.leaseMs }
        this.mappings.set(`${t.host}:${t.port}`, m)
        this.announce(m)
        log('NAT-PMP: %s mapped %s:%d to %s:%d for %d s', gateway, external, externalPort, t.host, t.port, this.policy.leaseMs / 1000)
      } catch (err: unknown) {
        log.error('NAT-PMP: %s did not map TCP port %d to %s: %s', gateway, t.port, t.host, errorMessage(err))
      }
    }
  }

  private async renew (m: Mapping): Promise<void> {
    const gateway = this.gateway
    if (gateway === undefined) return
    const asked = this.clock.now()
    try {
      const { externalPort } = await this.client.map(gateway, m.port, Math.round(this.policy.leaseMs / 1000), this.abort.signal)
      if (this.stopped) return
      if (externalPort !== m.externalPort) { this.unannounce(m); m.externalPort = externalPort; this.announce(m) }
      m.renewAt = asked + this.policy.leaseMs - this.policy.renewBeforeMs
      m.expiresAt = asked + this.policy.leaseMs
      log('NAT-PMP: renewed %s:%d for %d s', m.externalHost, m.externalPort, this.policy.leaseMs / 1000)
    } catch (err: unknown) {
      if (this.stopped) return
      const now = this.clock.now()
      if (now + this.policy.searchAgainMs < m.expiresAt) {
        log.error('NAT-PMP: could not renew the mapping of %s:%d (%s); trying again in %d s', m.externalHost, m.externalPort, errorMessage(err), this.policy.searchAgainMs / 1000)
        m.renewAt = now + this.policy.searchAgainMs
      } else {
        log.error('NAT-PMP: could not renew the mapping of %s:%d before its lease ends (%s): no longer announced', m.externalHost, m.externalPort, errorMessage(err))
        this.drop(m)
      }
    }
  }

  private async checkExternal (): Promise<void> {
    const gateway = this.gateway
    this.externalAt = this.clock.now() + this.policy.externalCheckMs
    if (gateway === undefined) return
    let external: string
    try {
      external = await this.client.externalIp(gateway, this.abort.signal)
    } catch (err: unknown) {
      log.error('NAT-PMP: could not ask %s for its external address (the mapping stays announced): %s', gateway, errorMessage(err))
      return
    }
    if (this.stopped) return
    for (const m of [...this.mappings.values()]) {
      if (m.externalHost === external) continue
      if (isPrivateIp(external) !== false) {
        log.error('NAT-PMP: the router\'s external address is now %s, private or reserved: the mapping of %s:%d is no longer announced', external, m.externalHost, m.externalPort)
        this.drop(m)
        continue
      }
      log('NAT-PMP: the router\'s external address moved from %s to %s', m.externalHost, external)
      this.unannounce(m)
      m.externalHost = external
      this.announce(m)
    }
  }

  private drop (m: Mapping): void {
    this.unannounce(m)
    this.mappings.delete(`${m.host}:${m.port}`)
    this.searchAt = this.clock.now()
  }

  private announce (m: Mapping): void {
    const book = this.components.addressManager
    book.addPublicAddressMapping(m.host, m.port, m.externalHost, m.externalPort, 'tcp')
    book.confirmObservedAddr(multiaddr(`/ip4/${m.externalHost}/tcp/${m.externalPort}`), { type: 'ip-mapping', ttl: FOREVER_MS() })
  }

  private unannounce (m: Mapping): void {
    this.components.addressManager.removePublicAddressMapping(m.host, m.port, m.externalHost, m.externalPort, 'tcp')
  }
}
