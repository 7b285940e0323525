/**
 * The lock-free garbage collection with a write-only machine among the devices (docs/gc.md §6.3):
 * it opens the condemnation records with its gc view key and looks before it commits, as full
 * devices do; a pack it relied on that a prune condemned meanwhile fails the run (it cannot copy a
 * pack's data out), and the next run stores that data anew. Every snapshot of every device then
 * restores byte-exact on the full devices, and check --read-data passes.
 */
import assert from 'node:assert/strict'
import { PacksGoneError } from '../../../src/errors.js'
import { GcState, encodeGcEnvelope, encodeGcRecord, gcSigningBytes } from '../../../src/format/gc-record.js'
import { contentHash } from '../../../src/crypto/index.js'
import { openGcRecord, readGcHead, sealGcRecord } from '../../../src/repo/index.js'
import { Devices, type Device } from '../../helpers/devices.js'
import { Rng } from '../../helpers/seeded.js'

const GRACE = 24 * 3600_000
const KiB = 1024

type Boundary = 'before' | 'look' | 'write' | 'after'
const BOUNDARIES: Boundary[] = ['before', 'look', 'write', 'after']

/** A backup as the backup job runs it: once more when the look found a relied-on pack gone. */
async function backupAsJob (dev: Device, src: string, onStep?: (step: 'look' | 'write') => Promise<void>): Promise<{ id: string, retried: boolean }> {
  try {
    return { id: await dev.backup(src, onStep !== undefined ? { onStep } : {}), retried: false }
  } catch (err: unknown) {
    if (!(err instanceof PacksGoneError)) throw err
    return { id: await dev.backup(src), retried: true }
  }
}

describe('repo/gc: a write-only machine looks before it commits', function () {
  this.timeout(120_000)
  let w: Devices
  afterEach(async () => { await w?.stop() })

  for (const boundary of BOUNDARIES) {
    for (const graces of [0, 1, 2]) {
      it(`W (write-only) backs up, stopped ${boundary === 'before' ? 'before it starts' : boundary === 'after' ? 'after its snapshot' : `before its ${boundary === 'look' ? 'last look at the records' : 'record (after the look)'}`}, while B forgets W's first snapshot and prunes across ${graces} grace period(s)`, async () => {
        const rng = new Rng(2000 + BOUNDARIES.indexOf(boundary) * 10 + graces)
        w = await new Devices(GRACE).start(['W', 'B'], { writeOnly: ['W'] })
        const wo = w.device('W')
        const b = w.device('B')
        const src = w.write('srcW', { 'w1.bin': rng.bytes(300 * KiB), 'w2.bin': rng.bytes(300 * KiB) })
        const s1 = await wo.backup(src)
        await b.backup(w.write('srcB', { 'b1.bin': rng.bytes(200 * KiB) }))
        // w1 stays, w2 changes: W's next backup deduplicates w1 against the pack only s1 uses
        w.write('srcW', { 'w2.bin': rng.bytes(300 * KiB) })
        let acted = false
        const act = async (at: Boundary): Promise<void> => {
          if (at !== boundary || acted) return
          acted = true
          await b.forget(s1)
          await b.prune()
          for (let g = 0; g < graces; g++) { w.advance(GRACE + 1); await b.prune() }
        }
        await act('before')
        const { retried } = await backupAsJob(wo, src, async (step) => { await act(step) })
        await act('after')
        if (retried) assert.ok(boundary === 'look' || boundary === 'write', 'only a prune during the run makes it run again')
        for (let i = 0; i < 3; i++) { w.advance(GRACE + 1); await b.prune() }
        assert.deepEqual(await w.verify(), [])
      })
    }
  }

  it('W never deduplicates against a condemned pack: it stores the data anew, and the condemned pack goes', async () => {
    const rng = new Rng(21)
    w = await new Devices(GRACE).start(['W', 'B'], { writeOnly: ['W'] })
    const wo = w.device('W')
    const b = w.device('B')
    const src = w.write('src', { 'x.bin': rng.bytes(300 * KiB) })
    const s1 = await wo.backup(src)
    await b.forget(s1)
    const r = await b.prune()
    assert.ok(r.packsCondemned >= 1, JSON.stringify(r))
    const added = wo.repo.stats.blobsAdded
    const s2 = await wo.backup(src)
    assert.ok(wo.repo.stats.blobsAdded > added, 'the data was stored again')
    const condemned = [...wo.repo.index.gc.entries()].map(e => Buffer.from(e.pack).toString('hex'))
    assert.equal(condemned.length, r.packsCondemned, 'W took note of the condemned packs')
    for (const p of condemned) assert.ok(!wo.repo.relied.has(p))
    w.advance(GRACE + 1)
    const swept = await b.prune()
    assert.equal(swept.packsDeleted, r.packsCondemned, JSON.stringify(swept))
    assert.ok(w.expected.has(s2))
    assert.deepEqual(await w.verify(), [])
  })

  it('W drops a copy of a snapshot record that a full device forgot, instead of sending it back', async () => {
    const rng = new Rng(22)
    w = await new Devices(GRACE).start(['W', 'B'], { writeOnly: ['W'] })
    const wo = w.device('W')
    const s1 = await wo.backup(w.write('src', { 'x.bin': rng.bytes(100 * KiB) }))
    const id = Buffer.from(s1, 'hex')
    const envelope = await w.shared.getRecord(id)
    await w.device('B').forget(s1)
    w.expected.delete(s1)
    // W's copy comes back (its daemon re-sends the records it holds)
    await w.shared.putRecord(id, envelope)
    const head = await readGcHead(wo.repo.packs, wo.repo.sodium, wo.repo.identity)
    assert.deepEqual(head.forgotten.map(f => Buffer.from(f).toString('hex')), [s1], 'W sees that it was forgotten')
    assert.deepEqual(head.snapshots, [], 'the snapshot records stay sealed to it')
    await wo.sync()
    await assert.rejects(w.shared.getRecord(id), { code: 'ERR_NOT_FOUND' })
    assert.deepEqual(await w.verify(), [])
  })

  it('gc records: version 2 opens with the gc view key; version 1 (sealed to the owner) only on full devices, and a prune rewrites it', async () => {
    w = await new Devices(GRACE).start(['W', 'B'], { writeOnly: ['W'] })
    const wo = w.device('W')
    const b = w.device('B')
    const full = b.repo.identity
    const record = { version: 1 as const, time: 1n, host: 'B', entries: [{ pack: new Uint8Array(32).fill(3), state: GcState.Condemned }] }
    const v2 = sealGcRecord(b.repo.sodium, full, record)
    assert.equal(v2.envelope[8], 2)
    assert.deepEqual(openGcRecord(wo.repo.sodium, wo.repo.identity, v2.envelope).record, record)
    assert.deepEqual(openGcRecord(b.repo.sodium, full, v2.envelope).record, record)
    // an envelope of version 1, as this program wrote before the gc view key
    const sealed = b.repo.sodium.seal(encodeGcRecord(record), full.boxPublicKey)
    const signature = b.repo.sodium.sign(gcSigningBytes(1, full.signPublicKey, sealed), full.signSecretKey as Uint8Array)
    const v1 = encodeGcEnvelope({ version: 1, userId: full.signPublicKey, sealed, signature })
    assert.deepEqual(openGcRecord(b.repo.sodium, full, v1).record, record)
    assert.throws(() => openGcRecord(wo.repo.sodium, wo.repo.identity, v1), { code: 'ERR_WRITE_ONLY' })
    // a forged version (the signature covers it): refused as altered
    const relabelled = encodeGcEnvelope({ version: 2, userId: full.signPublicKey, sealed, signature })
    assert.throws(() => openGcRecord(b.repo.sodium, full, relabelled), { code: 'ERR_UNAUTHENTICATED' })
    await w.shared.putRecord(contentHash(v1), v1)
    const before = await readGcHead(wo.repo.packs, wo.repo.sodium, wo.repo.identity)
    assert.equal(before.unread?.length, 1, 'W reports the record it cannot read')
    await b.prune()
    const after = await readGcHead(wo.repo.packs, wo.repo.sodium, wo.repo.identity)
    assert.deepEqual([after.unread?.length, after.damaged.length, after.gc.length], [0, 0, 1], 'the prune wrote it again as version 2')
    assert.equal(after.gc[0]?.record.entries.length, 1)
  })
})
