/**
 * The check before a signed replace (src/protocols/shard/stripe-guard.ts, shard.md §7.3): a share of
 * another stripe of the same pack is never replaced; a copy that is missing or no share header is
 * damage, replaced; a failure to read the held header says nothing about the copy and fails the put.
 */
import assert from 'node:assert/strict'
import { FormatError, NotFoundError, OtherStripeError, ProtocolError } from '../../../src/errors.js'
import { encodeShareHeader } from '../../../src/format/share.js'
import { refuseOtherStripe } from '../../../src/protocols/shard/stripe-guard.js'
import { asPackId } from '../../../src/ids.js'

const ref = { pack: asPackId(new Uint8Array(32).fill(3)), index: 1 }
const header = (k: number, m: number): Uint8Array => encodeShareHeader({ k, m, index: 1, packLength: 1000, packId: ref.pack, dataHash: new Uint8Array(32).fill(9) })
const quiet = (): void => {}

describe('shard client: before replacing a held share', () => {
  it('refuses over a share of another stripe, lets a replace of the same stripe or of damage through', async () => {
    const ours = header(1, 2)
    await assert.rejects(refuseOtherStripe(ref, ours, async () => header(1, 1), 'P', quiet), OtherStripeError)
    await refuseOtherStripe(ref, ours, async () => header(1, 2), 'P', quiet)
    await refuseOtherStripe(ref, ours, async () => new Uint8Array(88).fill(7), 'P', quiet)
    await refuseOtherStripe(ref, ours, async () => { throw new NotFoundError('gone') }, 'P', quiet)
    await refuseOtherStripe(ref, ours, async () => { throw new FormatError('shorter than a header') }, 'P', quiet)
  })

  it('fails the put when the held header cannot be read for another reason (a timeout, a reset): no replace on a guess', async () => {
    const reset = new ProtocolError('stream reset', { transport: 'broken' })
    await assert.rejects(refuseOtherStripe(ref, header(1, 2), async () => { throw reset }, 'P', quiet), (err: unknown) => err === reset)
  })
})
