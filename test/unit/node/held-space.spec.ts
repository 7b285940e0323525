/**
 * The persister's count of what it holds for each member (issue 11, finding 6): records count
 * against the quota after a refresh as shares do, a node that contributes nothing refuses every put
 * (repeats included), a repeat is not checked further otherwise, and one person's number of shares
 * and records is capped.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HeldSpace, MAX_RECORDS_PER_OWNER } from '../../../src/node/held-space.js'
import type { LedgerBook } from '../../../src/node/ledger-book.js'
import type { Roles } from '../../../src/node/group-state.js'
import type { Refusal } from '../../../src/protocols/shard/index.js'
import { testRef } from '../../compliance/share-store.js'

const OWNER = 'ab'.repeat(32)

describe('node/held-space: the persister counts everything it holds', function () {
  let dir: string
  let roles: Roles
  let held: HeldSpace
  /** the ledger's refusal is not under test here: it never refuses */
  const ledger = { refusal: () => undefined } as unknown as LedgerBook

  const text = (r: Refusal | undefined): string => r === undefined ? '' : typeof r === 'string' ? r : r.error

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'p2pbak-held-'))
    roles = { contributeBytes: 10_000, publish: null } as unknown as Roles
    held = new HeldSpace(dir, () => roles, ledger)
  })
  afterEach(async () => { await held.close(); await rm(dir, { recursive: true, force: true }) })

  it('records count against the quota after a refresh, as shares do', async () => {
    const store = await held.store(OWNER)
    await store.put(testRef(1), new Uint8Array(3000))
    await store.putRecord(new Uint8Array(32).fill(1), new Uint8Array(6000))
    const shares = await held.refresh()
    assert.deepEqual(shares, { [OWNER]: 3000 }, 'the ledger reports share bytes')
    assert.equal(held.usedBytes, 9000, 'the quota counts both')
    assert.deepEqual(held.admit(OWNER, 1001, 'share'), { error: 'this node\'s quota of 10000 bytes is used up', full: true }, 'refused for want of room (`"reason":"FULL"` on the wire)')
    assert.equal(held.admit(OWNER, 1000, 'share'), undefined)
  })

  it('a node that contributes nothing refuses every put, a repeat included; otherwise a repeat is not checked', async () => {
    roles.contributeBytes = 0
    assert.match(text(held.admit(OWNER, 0)), /does not contribute storage/)
    assert.match(text(held.admit(OWNER, 10, 'share')), /does not contribute storage/)
    roles.contributeBytes = 10
    assert.equal(held.admit(OWNER, 10, 'share'), undefined)
    // full now: a repeat put (nothing added) still goes through
    assert.equal(held.admit(OWNER, 0), undefined)
    assert.match(text(held.admit(OWNER, 1, 'share')), /used up/)
  })

  it('the number of records one person keeps is capped, whatever their size', async () => {
    roles.contributeBytes = 1e12
    let refused: Refusal | undefined
    let n = 0
    for (; n <= MAX_RECORDS_PER_OWNER && refused === undefined; n++) refused = held.admit(OWNER, 1, 'record')
    assert.equal(n, MAX_RECORDS_PER_OWNER + 1)
    assert.equal(typeof refused, 'string', 'not for want of room: the person must prune')
    assert.match(text(refused), /most records it keeps for one person/)
    assert.equal(held.admit('cd'.repeat(32), 1, 'record'), undefined, 'another person has their own count')
  })

  it('the data of a removed member goes once the grace has passed since this node saw the removal', async () => {
    const store = await held.store(OWNER)
    await store.put(testRef(2), new Uint8Array(100))
    const DAY = 86_400_000
    const t0 = 1_800_000_000_000
    assert.deepEqual(await held.releaseRemoved([OWNER], 30 * DAY, t0), [])
    assert.deepEqual(await held.releaseRemoved([OWNER], 30 * DAY, t0 + 29 * DAY), [], 'counted from when it was first seen removed')
    assert.equal(await (await held.store(OWNER)).has(testRef(2)), true)
    assert.deepEqual(await held.releaseRemoved([OWNER], 30 * DAY, t0 + 30 * DAY), [OWNER])
    assert.deepEqual(await held.refresh(), {})
    assert.deepEqual(await readdir(join(dir, 'held')), [], 'the folder and its note are gone')
    // a person still on the roster is never named here: their data stays whatever its age
    const other = await held.store('cd'.repeat(32))
    await other.put(testRef(3), new Uint8Array(10))
    assert.deepEqual(await held.releaseRemoved([OWNER], 0, t0 + 400 * DAY), [])
    assert.deepEqual(await held.refresh(), { ['cd'.repeat(32)]: 10 })
  })

  it('the automatic quota is a share of the space this node could give (free + held), fixed between refreshes: puts cannot fill the disk', async () => {
    roles = { contributeBytes: null, publish: null } as unknown as Roles
    let free = 100_000
    held.freeDiskBytes = async () => free
    const store = await held.store(OWNER)
    await held.refresh()
    assert.equal(held.quotaBytes(), 10_000)
    // within one refresh window: at most the quota, however many puts
    let taken = 0
    while (held.admit(OWNER, 1000, 'share') === undefined) taken += 1000
    assert.equal(taken, 10_000)
    // the bytes land on disk (free shrinks by as much): the next refresh gives nothing more
    await store.put(testRef(4), new Uint8Array(10_000))
    free -= 10_000
    await held.refresh()
    assert.equal(held.quotaBytes(), 10_000)
    assert.match(text(held.admit(OWNER, 1, 'share')), /used up/)
  })

  it('a quota larger than the disk: the offer stops at the free space, and a put that would not fit is refused for want of room', async () => {
    class SmallDisk extends HeldSpace { override async freeDiskBytes (): Promise<number> { return 5000 } }
    const small = new SmallDisk(dir, () => roles, ledger)
    try {
      roles.contributeBytes = 1e9
      assert.equal(small.roomOnDisk, undefined, 'not known before the first refresh')
      await small.refresh()
      assert.equal(small.roomOnDisk, 5000)
      assert.equal(small.admit(OWNER, 4000, 'share'), undefined)
      assert.equal(small.roomOnDisk, 1000, 'what was admitted since the refresh comes off')
      assert.deepEqual(small.admit(OWNER, 2000, 'share'), { error: 'the persister\'s disk is full', full: true })
      assert.equal(small.admit(OWNER, 1000, 'share'), undefined)
    } finally {
      await small.close()
    }
  })

  it('a check with charge false counts nothing (the first part of an upload)', async () => {
    for (let i = 0; i < 20; i++) assert.equal(held.admit(OWNER, 9000, undefined, false), undefined)
    assert.equal(held.usedBytes, 0)
    assert.equal(held.admit(OWNER, 9000, 'share'), undefined)
    assert.match(text(held.admit(OWNER, 9000, undefined, false)), /used up/)
  })

  it('a member whose store cannot be opened is tried again later, and the others are still counted', async () => {
    const bad = 'cd'.repeat(32)
    const store = await held.store(OWNER)
    await store.put(testRef(5), new Uint8Array(500))
    // a file where the member's folder should be: its store cannot open
    const { writeFile, unlink } = await import('node:fs/promises')
    await writeFile(join(dir, 'held', bad), 'not a folder')
    await assert.rejects(held.store(bad))
    assert.deepEqual(await held.refresh(), { [OWNER]: 500, [bad]: 0 })
    assert.equal(held.usedBytes, 500)
    // once the cause is gone, the same member opens: the failure was not kept
    await unlink(join(dir, 'held', bad))
    await (await held.store(bad)).put(testRef(6), new Uint8Array(7))
    assert.deepEqual(await held.refresh(), { [OWNER]: 500, [bad]: 7 })
  })

  it('one removed member whose data cannot be released stops neither the others nor the round', async () => {
    const bad = 'cd'.repeat(32)
    await (await held.store(OWNER)).put(testRef(7), new Uint8Array(10))
    await (await held.store(bad)).put(testRef(8), new Uint8Array(10))
    // the note of the bad one cannot be written: a folder stands where the file goes
    const { mkdir } = await import('node:fs/promises')
    await mkdir(join(dir, 'held', `${bad}.removed`, 'x'), { recursive: true })
    const t0 = 1_800_000_000_000
    assert.deepEqual(await held.releaseRemoved([bad, OWNER], 0, t0), [OWNER])
  })
})
