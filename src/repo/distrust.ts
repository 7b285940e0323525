/**
 * A peer that lists made-up packs or records costs a reader one failed read per made-up id (issue 11,
 * finding 7). Readers that walk a listing (the index rebuild, the head) count, per peer that alone
 * brought an id, the reads that failed in a row, and stop reading that peer's lone claims after
 * MAX_SOLE_CLAIM_FAILURES: the rest are reported unread, and the next command tries again.
 */
import { UntrustedPeerError } from '../errors.js'

/** Lone claims of one peer that failed to read, in a row, before its other lone claims are not read. */
export const MAX_SOLE_CLAIM_FAILURES = 8

export class ClaimDistrust<Id extends Uint8Array = Uint8Array> {
  private readonly failed = new Map<string, number>()

  /** `claimantOf`: the one peer that brought an id, or undefined when others (or this disk) hold it too. */
  constructor (private readonly claimantOf: ((id: Id) => string | undefined) | undefined, private readonly what: string) {}

  /** An error to report instead of reading `id`, when its claimant is no longer believed. */
  refusal (id: Id): UntrustedPeerError | undefined {
    const peer = this.claimantOf?.(id)
    if (peer === undefined || (this.failed.get(peer) ?? 0) < MAX_SOLE_CLAIM_FAILURES) return undefined
    return new UntrustedPeerError(`not read: only ${peer} lists this ${this.what}, and the last ${MAX_SOLE_CLAIM_FAILURES} it alone listed could not be read`)
  }

  /** The read of `id` succeeded (true) or failed (false). */
  note (id: Id, ok: boolean): void {
    const peer = this.claimantOf?.(id)
    if (peer !== undefined) this.failed.set(peer, ok ? 0 : (this.failed.get(peer) ?? 0) + 1)
  }
}
