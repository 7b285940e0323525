/**
 * The persister's own check of what it holds (docs/placement-and-repair.md §10): each share is read
 * (range by range: memory holds 1 MiB of it, not the share) and checked against its header's BLAKE3, a bounded number of bytes per round, walking all
 * owners' shares in name order and starting over after the last. A damaged share is reported to its
 * owner (the audit protocol's `damaged` list; the owner's next audit round repairs it) and is no longer
 * "proven". Leaf caches of shares no longer held are dropped at the end of each pass.
 */
import { NotFoundError, errorMessage } from '../errors.js'
import { inspectShare } from '../protocols/audit.js'
import { shareRefName, type ProofCache, type ShareRef, type ShareStore } from '../store/index.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('scrub')

/** What a share that could not be checked costs a round's byte budget at least. */
const FAILED_CHECK_BYTES = 64 * 1024

export interface ScrubRound { checked: number, bytes: number, damaged: Array<{ owner: string, share: string }>, passCompleted: boolean }

export class Scrubber {
  /** `owner/share name` of the last share checked: the next round starts after it */
  private cursor = ''
  /**
   * Bytes this round may read: each round adds `maxBytesPerRound` (never saving more than one round's
   * worth), and a share is read whole, so a round that read past its budget (a 16 MiB share against a
   * 1 MiB budget) leaves a debt the next rounds repay by reading nothing. The rate set is kept on
   * average, whatever the size of the shares.
   */
  private allowance = 0

  constructor (
    private readonly owners: () => Promise<Array<{ owner: string, store: ShareStore }>>,
    private readonly cache: ProofCache,
    private readonly maxBytesPerRound: number
  ) {}

  async round (signal?: AbortSignal): Promise<ScrubRound> {
    const result: ScrubRound = { checked: 0, bytes: 0, damaged: [], passCompleted: false }
    this.allowance = Math.min(this.allowance + this.maxBytesPerRound, this.maxBytesPerRound)
    if (this.allowance <= 0) return result
    try {
      return await this.check(result, this.allowance, signal)
    } finally {
      this.allowance -= result.bytes
    }
  }

  private async check (result: ScrubRound, budget: number, signal?: AbortSignal): Promise<ScrubRound> {
    const owners = (await this.owners()).sort((a, b) => (a.owner < b.owner ? -1 : 1))
    for (const { owner, store } of owners) {
      const names = new Map<string, ShareRef>()
      for await (const ref of store.list()) names.set(shareRefName(ref), ref)
      const sorted = [...names.keys()].sort()
      for (const name of sorted) {
        const key = `${owner}/${name}`
        if (key <= this.cursor) continue
        if (result.bytes >= budget) return result
        signal?.throwIfAborted()
        const ref = names.get(name) as ShareRef
        let size: number | undefined
        let intact: boolean
        try {
          size = await store.size(ref)
          intact = (await inspectShare(store, ref, size, signal)).intact
        } catch (err: unknown) {
          if (signal?.aborted === true) throw err
          // deleted since it was listed: nothing to check; anything else (a folder made unreadable, a
          // failing disk) is logged and tried on the next pass, and costs the round its size, so a
          // fault that fails every share does not walk them all at once
          if (!(err instanceof NotFoundError)) log.error('checking %s of %s failed: %s', name, owner, errorMessage(err))
          result.bytes += Math.max(size ?? 0, FAILED_CHECK_BYTES)
          this.cursor = key
          continue
        }
        result.checked++
        result.bytes += size
        this.cursor = key
        const reported = (await this.cache.damaged(owner)).includes(name)
        if (!intact) {
          if (!reported) {
            await this.cache.addDamaged(owner, ref)
            await this.cache.drop(owner, ref)
            result.damaged.push({ owner, share: name })
          }
        } else if (reported) {
          // the owner put a good copy back
          await this.cache.clearDamaged(owner, ref)
        }
      }
      await this.cache.prune(owner, name => names.has(name))
      for (const name of await this.cache.damaged(owner)) {
        const ref = names.get(name)
        if (ref === undefined) await this.cache.clearDamaged(owner, { pack: parseName(name).pack, index: parseName(name).index })
      }
    }
    this.cursor = ''
    result.passCompleted = true
    return result
  }
}

function parseName (name: string): ShareRef {
  const [hex, index] = name.split('.') as [string, string]
  return { pack: Uint8Array.from(Buffer.from(hex, 'hex')) as ShareRef['pack'], index: Number(index) }
}
