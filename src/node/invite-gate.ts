/**
 * This node's invites and the gate they open (docs/network.md §3, §15.3): while an invite is out,
 * anyone may connect (only `join` answers a stranger); when the last one is used, expires or is
 * revoked, and no member this node relays for has a window open, strangers' connections are closed.
 */
import type { GroupState } from './group-state.js'
import type { Home } from './home.js'
import type { P2pNode } from './libp2p-node.js'
import { InvalidInviteError, errorMessage } from '../errors.js'
import { InviteBook, decodeInviteCode, inviteId } from '../peers/index.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('invites')

export class InviteGate {
  readonly book: InviteBook
  /** when the soonest outstanding invite expires: strangers' connections end then (if it was the last) */
  private expiryTimer: NodeJS.Timeout | undefined

  /**
   * Whether strangers may still connect for another member's sake: a relay carrying strangers to a
   * member that told it of an open invite (RelayBook). The node sets it; false when not a relay.
   */
  strangersElsewhere: () => boolean = () => false

  constructor (private readonly home: Home, private readonly state: GroupState, private readonly node: P2pNode, private readonly isMember: (peerId: string) => boolean) {
    this.book = new InviteBook(state.file.invites)
    this.watch()
  }

  get peerId (): string { return this.node.peerId.toString() }

  /** Arms the timer that closes strangers' connections once the last outstanding invite expires. */
  watch (): void {
    clearTimeout(this.expiryTimer)
    this.expiryTimer = undefined
    const at = this.book.nextExpiry(Date.now())
    if (at === undefined) return
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = undefined
      if (this.book.outstanding(Date.now()) > 0) { this.watch(); return }
      this.shutIfClosed().catch((err: unknown) => { log.error('closing strangers\' connections after the last invite expired: %s', errorMessage(err)) })
    }, Math.min(Math.max(0, at - Date.now()) + 10, 2 ** 31 - 1))
    this.expiryTimer.unref()
  }

  /** Stops the invite timer (the node is stopping). */
  close (): void {
    clearTimeout(this.expiryTimer)
    this.expiryTimer = undefined
  }

  /** Whether an invite of this node is out now (anyone may connect). */
  open (now = Date.now()): boolean { return this.book.outstanding(now) > 0 }

  /** The latest expiry of the invites not yet redeemed (0: none open): relays let strangers through to us until then. */
  openUntil (now: number): number {
    return this.state.file.invites.filter(i => i.redeemed === undefined && i.expiresAt > now).reduce((m, i) => Math.max(m, i.expiresAt), 0)
  }

  /**
   * Closes strangers' connections once nothing lets strangers in any more: no invite of this node,
   * none a member told this relay of (network.md §15.3). Called when an invite is used, expires or
   * is revoked, when a member withdraws its notice, and at every refresh (a notice that expired).
   */
  async shutIfClosed (now = Date.now()): Promise<void> {
    if (this.open(now) || this.strangersElsewhere()) return
    if (this.node.getConnections().every(c => this.isMember(c.remotePeer.toString()))) return
    await this.dropStrangers()
  }

  /** Closes the connections of devices not on the roster. */
  async dropStrangers (): Promise<void> {
    for (const conn of this.node.getConnections()) {
      if (!this.isMember(conn.remotePeer.toString())) await conn.close().catch((err: unknown) => { log('closing a stranger\'s connection: %s', errorMessage(err)) })
    }
  }

  /**
   * Withdraws invites not used yet: the one whose code is given, or all of them (`code` undefined).
   * When none is left, strangers' connections are closed and the gate shuts. Returns how many.
   */
  async revoke (code?: string): Promise<number> {
    const now = Date.now()
    let n: number
    if (code === undefined) {
      n = this.book.revokeAll(now)
    } else {
      const invite = decodeInviteCode(this.home.sodium, code, now)
      if (invite.inviterDevice.peerId !== this.peerId) throw new InvalidInviteError(`this invite was issued by another device (${invite.inviterDevice.peerId}); revoke it there`)
      n = this.book.revoke(inviteId(invite.secret)) ? 1 : 0
    }
    this.state.file.invites = this.book.toJSON()
    await this.state.save()
    this.watch()
    await this.shutIfClosed(now)
    return n
  }
}
