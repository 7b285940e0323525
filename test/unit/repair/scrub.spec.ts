/** The persister's scrub (src/repair/scrub.ts): how much it reads per round. */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Scrubber } from '../../../src/repair/index.js'
import { MemoryShareStore, ProofCache } from '../../../src/store/index.js'
import { seededBytes, testRef } from '../../compliance/share-store.js'

const OWNER = 'ab'.repeat(32)
const SHARE = 64 * 1024

describe('repair/scrub', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'p2pbak-scrub-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('keeps its rate on average when shares are larger than a round\'s slice: the excess is repaid by later rounds', async () => {
    const store = new MemoryShareStore()
    for (let i = 1; i <= 4; i++) await store.put(testRef(i), seededBytes(i, SHARE))
    const perRound = SHARE / 4
    const scrub = new Scrubber(async () => [{ owner: OWNER, store }], new ProofCache(join(dir, 'proofs')), perRound)
    const read: number[] = []
    for (let r = 0; r < 12; r++) read.push((await scrub.round()).bytes)
    // a share is read whole (one per 4 rounds); before, every round read one: 12 shares instead of 3
    assert.deepEqual(read, [SHARE, 0, 0, 0, SHARE, 0, 0, 0, SHARE, 0, 0, 0])
  })

  it('reads several small shares in one round, up to its slice', async () => {
    const store = new MemoryShareStore()
    for (let i = 1; i <= 8; i++) await store.put(testRef(i), seededBytes(i, 1000))
    const scrub = new Scrubber(async () => [{ owner: OWNER, store }], new ProofCache(join(dir, 'proofs')), 3000)
    assert.equal((await scrub.round()).checked, 3)
    assert.equal((await scrub.round()).checked, 3)
    const last = await scrub.round()
    assert.equal(last.checked, 2)
    assert.equal(last.passCompleted, true)
  })

  it('a fault that fails every share (an unreadable folder, a failing disk) costs each round its slice, not a walk of everything', async () => {
    class FailingStore extends MemoryShareStore {
      reads = 0
      override async getRange (): Promise<Uint8Array> { this.reads++; throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }) }
    }
    const store = new FailingStore()
    for (let i = 1; i <= 40; i++) await store.put(testRef(i), seededBytes(i, 1000))
    const scrub = new Scrubber(async () => [{ owner: OWNER, store }], new ProofCache(join(dir, 'proofs')), 3 * SHARE)
    const first = await scrub.round()
    assert.equal(first.checked, 0)
    assert.equal(first.passCompleted, false)
    assert.equal(store.reads, 3) // each failure costs at least 64 KiB of the slice
    await scrub.round()
    assert.equal(store.reads, 6) // and the next round goes on from there
  })
})
