/**
 * The share stores of friends' nodes this node talks to (protocols/shard RemoteShareStore), one per
 * member device, sharing the node's rate limits (`--limit-upload`, `--limit-download`) and summing
 * their transfer counters for the backup summary.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { RefusedError } from '../errors.js'
import { RemoteShareStore } from '../protocols/shard/index.js'
import { sumTransferCounts, type TransferCounts } from '../repo/index.js'
import { TokenBucket } from '../util/token-bucket.js'
import type { P2pNode } from './libp2p-node.js'

/** A KiB/s setting as a byte-rate limit; absent (or 0): none. */
function rateLimit (kib: number | undefined): TokenBucket | undefined {
  return kib === undefined || kib <= 0 ? undefined : new TokenBucket(kib * 1024)
}

export interface RemoteOwner {
  /** the user id the shares are stored under */
  userId: string
  /** signs a delete or a replace with the user key; throws RefusedError when this device cannot (write-only) */
  sign: ((message: Uint8Array) => string) | null
}

export class RemoteStores {
  private readonly stores = new Map<string, RemoteShareStore>()
  /** the rate limits every share store of this node shares */
  private readonly limits: { upload?: TokenBucket, download?: TokenBucket } = {}

  /** `now`: the clock delete and replace signatures are dated by (the node's; tests run it in virtual time) */
  constructor (private readonly node: P2pNode, private readonly owner: () => RemoteOwner, limits: { uploadKiB?: number | undefined, downloadKiB?: number | undefined } = {}, private readonly now: () => number = Date.now) {
    this.setLimits(limits)
  }

  /** New rate limits (KiB/s; absent or 0: none) for every store, open ones included. */
  setLimits (l: { uploadKiB?: number | undefined, downloadKiB?: number | undefined }): void {
    this.limits.upload = rateLimit(l.uploadKiB)
    this.limits.download = rateLimit(l.downloadKiB)
  }

  /** The store of one member device (made on first use). */
  storeFor (peerId: string): RemoteShareStore {
    let s = this.stores.get(peerId)
    if (s === undefined) {
      const { userId, sign } = this.owner()
      s = new RemoteShareStore({
        node: this.node,
        peer: peerIdFromString(peerId),
        ownerUserId: userId,
        limits: this.limits,
        now: this.now,
        signDelete: (message: Uint8Array) => {
          if (sign === null) throw new RefusedError('a write-only key cannot delete')
          return sign(message)
        }
      })
      this.stores.set(peerId, s)
    }
    return s
  }

  /** Closes every store: the streams they kept for their next requests close with them. */
  async close (): Promise<void> {
    await Promise.all([...this.stores.values()].map(async (s) => { await s.close() }))
  }

  /** Requests to friends' shard servers so far, with their retries (every store's counters summed). */
  transferCounts (): TransferCounts { return sumTransferCounts([...this.stores.values()].map(s => s.stats)) }
}
