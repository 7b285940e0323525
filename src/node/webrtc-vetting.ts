/**
 * A WebRTC connection counts only once a stream ran over it (docs/network.md §15.7).
 *
 * When a hole punch fails, the side that answered the signalling may still be handed a connection:
 * @libp2p/webrtc 6.0.33 treats the initiator's reset of the signalling stream (its dial timed out) as
 * the end of the candidates and upgrades a peer connection whose ICE never completed. That connection
 * reports itself open, but no data channel ever opens on it: every stream on it times out, libp2p
 * prefers it to the relayed connection for new streams, and the direct-path logic took it for a
 * direct path and closed the relayed one.
 *
 * So a WebRTC connection is *proven* when libp2p's identify (run on every new connection) completed
 * over it; until then it is not a direct path (status, `DirectPaths`), and one not proven within
 * `waitMs` is closed.
 */
import type { Connection, IdentifyResult } from '@libp2p/interface'
import { errorMessage } from '../errors.js'
import { scopedLogger } from '../util/log.js'
import type { P2pNode } from './libp2p-node.js'
import { isWebrtc } from './reachability.js'

const log = scopedLogger('direct')

/**
 * How long a new WebRTC connection may take to carry its first exchange (identify): past
 * identify's own deadline (10 s, libp2p-node.ts): identify gets the whole of its time first.
 */
export const WEBRTC_PROOF_MS = 12_000

type Events = Pick<P2pNode, 'addEventListener' | 'removeEventListener'>

export class WebrtcVetting {
  private readonly proven = new WeakSet<Connection>()
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>()
  private readonly waiters = new Map<string, Array<(proven: boolean) => void>>()
  /** WebRTC connections closed because nothing ever ran over them */
  closed = 0

  private readonly onOpen = (evt: CustomEvent<Connection>): void => { this.watch(evt.detail) }

  /** Starts the clock of a WebRTC connection not proven yet (once). */
  private watch (conn: Connection): void {
    if (this.usable(conn) || this.timers.has(conn.id)) return
    const timer = setTimeout(() => {
      this.timers.delete(conn.id)
      if (this.proven.has(conn)) return
      this.settle(conn.id, false)
      if (conn.status !== 'open') return
      this.closed++
      log('the WebRTC connection to %s carried nothing in %d ms (its ICE did not complete: the hole punch failed); closed', conn.remotePeer.toString(), this.waitMs)
      try {
        conn.abort(new Error('no stream ran over this WebRTC connection: the hole punch failed'))
      } catch (err: unknown) {
        log.error('closing the WebRTC connection to %s: %s', conn.remotePeer.toString(), errorMessage(err))
      }
    }, this.waitMs)
    timer.unref?.()
    this.timers.set(conn.id, timer)
  }

  private readonly onIdentify = (evt: CustomEvent<IdentifyResult>): void => {
    const conn = evt.detail.connection
    if (!isWebrtc(conn.remoteAddr.toString())) return
    this.proven.add(conn)
    this.clear(conn.id)
    this.settle(conn.id, true)
  }

  private readonly onClose = (evt: CustomEvent<Connection>): void => {
    this.clear(evt.detail.id)
    this.settle(evt.detail.id, false)
  }

  constructor (private readonly node: Events, readonly waitMs = WEBRTC_PROOF_MS) {}

  /** `open`: the connections open already (those that came before the vetting started get their clock now). */
  start (open: readonly Connection[] = []): void {
    this.node.addEventListener('connection:open', this.onOpen)
    this.node.addEventListener('connection:close', this.onClose)
    this.node.addEventListener('peer:identify', this.onIdentify)
    for (const conn of open) if (conn.status === 'open') this.watch(conn)
  }

  stop (): void {
    this.node.removeEventListener('connection:open', this.onOpen)
    this.node.removeEventListener('connection:close', this.onClose)
    this.node.removeEventListener('peer:identify', this.onIdentify)
    for (const t of this.timers.values()) clearTimeout(t)
    this.timers.clear()
    for (const id of [...this.waiters.keys()]) this.settle(id, false)
  }

  /**
   * Resolves true once `conn` is usable (at once for a connection not over WebRTC), false when it
   * closes or is closed unproven.
   */
  async whenProven (conn: Connection): Promise<boolean> {
    if (this.usable(conn)) return true
    if (conn.status !== 'open') return false
    this.watch(conn)
    return await new Promise<boolean>(resolve => {
      const list = this.waiters.get(conn.id) ?? []
      list.push(resolve)
      this.waiters.set(conn.id, list)
    })
  }

  /** Whether a connection may count as a path to its peer: every one except a WebRTC one not proven yet. */
  usable (conn: Pick<Connection, 'remoteAddr'>): boolean {
    return !isWebrtc(conn.remoteAddr.toString()) || this.proven.has(conn as Connection)
  }

  private settle (id: string, proven: boolean): void {
    const list = this.waiters.get(id)
    this.waiters.delete(id)
    for (const resolve of list ?? []) resolve(proven)
  }

  private clear (id: string): void {
    const t = this.timers.get(id)
    if (t !== undefined) clearTimeout(t)
    this.timers.delete(id)
  }
}
