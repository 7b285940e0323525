/**
 * `/p2pbak/dialback/1.0.0` (docs/network.md §15.10): a member asks another member, one that reaches
 * it over a direct connection from outside its network, to dial some of its addresses back, so that
 * it learns whether friends elsewhere can connect to it there (AutoNAT among members). The checker
 * dials each address on a new connection whose Noise handshake must prove the asker's peer id, then
 * closes it.
 *
 *   request  {"op":"dialback","addrs":["/ip4/A/tcp/P", …]}   1 to 4 addresses, no body
 *   response {"status":"OK","results":[{"addr":"/ip4/A/tcp/P","ok":true} | {"addr":…,"ok":false,"error":"…"}]}
 *            | NOT_MEMBER | REFUSED (asked again too soon, or over a relay) | INVALID
 *
 * What a checker dials (it must not become a way to make it connect anywhere a member names):
 * TCP addresses only, of the class the policy allows (public ones), on the same IP address the
 * request came from (a connection through a relay or WebRTC shows none: refused). One request per
 * member device in `minIntervalMs`; addresses are dialled one after another, each for `dialTimeoutMs`,
 * on a new connection whose remote address must be the one asked about (libp2p may join a dial to
 * the asker already under way: then the result is `inconclusive`).
 */
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Connection, Libp2p, PeerId } from '@libp2p/interface'
import { ProtocolError, RefusedError, errorMessage } from '../errors.js'
import { exchange, serve, throwForStatus } from './framing.js'

export const DIALBACK_PROTOCOL = '/p2pbak/dialback/1.0.0'
/** addresses in one request */
export const MAX_DIALBACK_ADDRS = 4
const MAX_ADDR_CHARS = 200
const MAX_ERROR_CHARS = 200

export interface DialbackResult {
  addr: string
  /** the checker connected there, and the other end proved the asker's peer id */
  ok: boolean
  /** why not (a timeout, a refused connection, another peer answering); absent when ok */
  error?: string
  /**
   * no verdict (not a refutation; ask again later, or another member): the address is not one this
   * checker dials (another IP than the request came from, a private one), or its dial joined one
   * already under way to the asker, which connected elsewhere
   */
  inconclusive?: boolean
}

export interface DialbackPolicy {
  /** a request per member device at most this often. @default 30 s */
  minIntervalMs: number
  /** each dial's deadline. @default 5 s */
  dialTimeoutMs: number
}

export const DEFAULT_DIALBACK_POLICY: DialbackPolicy = { minIntervalMs: 30_000, dialTimeoutMs: 5_000 }

export interface DialbackServerHooks {
  isMember: (peer: PeerId) => boolean
  /** whether an address of this class may be dialled (public ones; tests on loopback allow loopback) */
  mayDial: (addr: Multiaddr) => boolean
  now: () => number
  policy?: DialbackPolicy
}

/** The host (IPv4 or IPv6 address) a direct connection comes from, or undefined (relayed, WebRTC). */
export function directHost (remoteAddr: Multiaddr): string | undefined {
  const text = remoteAddr.toString()
  if (text.includes('/p2p-circuit') || /\/webrtc(\/|$)/.test(text)) return undefined
  const c = remoteAddr.getComponents()
  const host = c[0]
  return (host?.name === 'ip4' || host?.name === 'ip6') && c[1]?.name === 'tcp' ? host.value : undefined
}

/** `/ip4|ip6/HOST/tcp/PORT` (an optional trailing `/p2p/<asker>`), or a ProtocolError. */
export function parseDialbackAddr (text: unknown, asker: string): Multiaddr {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_ADDR_CHARS) throw new ProtocolError('dialback: an address must be a string of 1 to 200 characters')
  let ma: Multiaddr
  try { ma = multiaddr(text) } catch (err: unknown) { throw new ProtocolError(`dialback: not a multiaddr: ${errorMessage(err)}`) }
  const c = ma.getComponents()
  const shape = (c[0]?.name === 'ip4' || c[0]?.name === 'ip6') && c[1]?.name === 'tcp' &&
    (c.length === 2 || (c.length === 3 && c[2]?.name === 'p2p' && c[2].value === asker))
  if (!shape) throw new ProtocolError('dialback: only /ip4|ip6/HOST/tcp/PORT addresses (of the asker) are dialled back')
  return multiaddr(`/${c[0]?.name ?? ''}/${c[0]?.value ?? ''}/tcp/${c[1]?.value ?? ''}`)
}

/** Serves dial-back requests of member devices. */
export async function startDialbackServer (node: Libp2p, h: DialbackServerHooks): Promise<void> {
  const policy = h.policy ?? DEFAULT_DIALBACK_POLICY
  const lastAsked = new Map<string, number>()
  await serve<{ op?: unknown, addrs?: unknown }>(node, DIALBACK_PROTOCOL, async (req, peer, connection) => {
    const asker = peer.toString()
    const { op, addrs } = req.header
    if (op !== 'dialback' || !Array.isArray(addrs) || addrs.length === 0 || addrs.length > MAX_DIALBACK_ADDRS) throw new ProtocolError(`dialback: malformed request (1 to ${MAX_DIALBACK_ADDRS} addresses)`)
    const wanted = addrs.map(a => ({ text: a as string, ma: parseDialbackAddr(a, asker) }))
    const from = connection === undefined ? undefined : directHost(connection.remoteAddr)
    if (from === undefined) throw new RefusedError('dialback: ask over a direct TCP connection (over a relay or WebRTC the address you connect from is not known)')
    const now = h.now()
    const last = lastAsked.get(asker)
    if (last !== undefined && now - last < policy.minIntervalMs) throw new RefusedError(`dialback: asked ${Math.round((now - last) / 1000)} s ago; ask again after ${Math.round(policy.minIntervalMs / 1000)} s`)
    lastAsked.set(asker, now)
    // forget askers that have not asked for a while (the map stays as small as the group)
    for (const [p, at] of lastAsked) if (now - at > policy.minIntervalMs) lastAsked.delete(p)
    // one at a time: libp2p joins dials to the same peer that overlap, and each must be told apart
    const results: DialbackResult[] = []
    for (const { text: addr, ma } of wanted) {
      const host = ma.getComponents()[0]?.value
      if (host !== from) results.push({ addr, ok: false, inconclusive: true, error: `not the address this request came from (${from})` })
      else if (!h.mayDial(ma)) results.push({ addr, ok: false, inconclusive: true, error: 'not an address this checker dials back (a private or loopback one)' })
      else results.push({ ...(await dialBack(node, ma, peer, policy.dialTimeoutMs)), addr })
    }
    return { header: { status: 'OK', results } }
  }, { maxBodyBytes: 0, maxHeaderBytes: 4096, timeoutMs: policy.dialTimeoutMs * MAX_DIALBACK_ADDRS + 5_000, maxInboundStreams: 4, authorize: h.isMember })
}

/**
 * Connects to `ma` as `peer` on a new connection (never an open one), then closes it. libp2p joins a
 * dial to the same peer already queued (a refresh, a direct path) even with `force`: that connection
 * is someone else's, so it is kept, and it counts only if it reached the very address asked about.
 */
async function dialBack (node: Libp2p, ma: Multiaddr, peer: PeerId, timeoutMs: number): Promise<DialbackResult> {
  const addr = ma.toString()
  let conn: Connection | undefined
  let joined = false
  try {
    conn = await node.dial(ma.encapsulate(`/p2p/${peer.toString()}`), {
      force: true,
      signal: AbortSignal.timeout(timeoutMs),
      onProgress: (evt: { type: string }) => { if (evt.type === 'dial-queue:already-in-dial-queue') joined = true }
    })
    if (!conn.remotePeer.equals(peer)) return { addr, ok: false, error: `another peer answered there (${conn.remotePeer.toString()})` }
    const remote = conn.remoteAddr.toString()
    const reached = remote === addr || remote.startsWith(`${addr}/`)
    if (joined || !reached) {
      // not ours to close
      conn = undefined
      if (!reached) return { addr, ok: false, inconclusive: true, error: `a dial under way connected at ${remote} instead` }
    }
    return { addr, ok: true }
  } catch (err: unknown) {
    const timedOut = err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')
    return { addr, ok: false, error: timedOut ? `no connection within ${timeoutMs} ms` : errorMessage(err).slice(0, MAX_ERROR_CHARS) }
  } finally {
    await conn?.close().catch((err: unknown) => { conn?.abort(err instanceof Error ? err : new Error(String(err))) })
  }
}

/**
 * Asks `checker` to dial `addrs` back (1 to 4 of ours); throws on a refusal or a malformed answer.
 * `connection`: the connection to ask over (the checker compares the addresses with its remote address).
 */
export async function requestDialback (node: Libp2p, checker: PeerId, addrs: string[], signal?: AbortSignal, connection?: Connection): Promise<DialbackResult[]> {
  if (addrs.length === 0 || addrs.length > MAX_DIALBACK_ADDRS) throw new RangeError(`dialback: 1 to ${MAX_DIALBACK_ADDRS} addresses`)
  const res = await exchange(node, checker, DIALBACK_PROTOCOL, { op: 'dialback', addrs }, undefined, { maxBodyBytes: 0, maxHeaderBytes: 8192, timeoutMs: DEFAULT_DIALBACK_POLICY.dialTimeoutMs * MAX_DIALBACK_ADDRS + 10_000, ...(signal !== undefined ? { signal } : {}), ...(connection !== undefined ? { connection } : {}) })
  throwForStatus(res.header, 'dialback')
  const results = res.header.results
  if (!Array.isArray(results)) throw new ProtocolError('dialback: answer without results')
  return addrs.map(addr => {
    const r: unknown = results.find((x: unknown) => typeof x === 'object' && x !== null && (x as { addr?: unknown }).addr === addr)
    if (r === undefined) return { addr, ok: false, error: 'the checker did not answer for this address' }
    const { ok, error, inconclusive } = r as { ok?: unknown, error?: unknown, inconclusive?: unknown }
    if (typeof ok !== 'boolean') throw new ProtocolError('dialback: a result without ok')
    return ok ? { addr, ok } : { addr, ok, error: typeof error === 'string' ? error.slice(0, MAX_ERROR_CHARS) : 'failed', ...(inconclusive === true ? { inconclusive: true } : {}) }
  })
}
