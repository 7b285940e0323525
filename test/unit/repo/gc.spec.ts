/**
 * The lock-free garbage collection (docs/gc.md) with several devices of one person sharing one
 * namespace, on a manual clock: a backup on one device stopped at every step boundary while
 * another device forgets and prunes, across 0 to 3 grace periods; prunes that crash between their
 * phases; dedup against a condemned pack. After every run every snapshot of every device restores
 * byte-exact on every device and check --read-data passes everywhere.
 */
import assert from 'node:assert/strict'
import { PacksGoneError } from '../../../src/errors.js'
import { BlobType } from '../../../src/format/pack.js'
import { asPackId } from '../../../src/ids.js'
import type { PruneReport } from '../../../src/repo/index.js'
import { Devices, type Device } from '../../helpers/devices.js'
import { Rng } from '../../helpers/seeded.js'

const GRACE = 24 * 3600_000
const KiB = 1024

type Boundary = 'before' | 'look' | 'write' | 'after'
const BOUNDARIES: Boundary[] = ['before', 'look', 'write', 'after']

/** The other device forgets A's first snapshot and prunes, then `graces` times: a grace period passes, it prunes again. */
async function forgetAndPrune (w: Devices, s1: string, graces: number): Promise<void> {
  const b = w.device('B')
  await b.forget(s1)
  await b.prune()
  for (let g = 0; g < graces; g++) {
    w.advance(GRACE + 1)
    await b.prune()
  }
}

describe('repo/gc: several devices, no lock, nothing lost', function () {
  this.timeout(120_000)
  let w: Devices
  afterEach(async () => { await w?.stop() })

  for (const boundary of BOUNDARIES) {
    for (const graces of [0, 1, 2, 3]) {
      it(`A backs up, stopped ${boundary === 'before' ? 'before it starts' : boundary === 'after' ? 'after its snapshot' : `before its ${boundary === 'look' ? 'last look at the records' : 'record (after the look)'}`}, while B forgets and prunes across ${graces} grace period(s)`, async () => {
        const rng = new Rng(1000 + BOUNDARIES.indexOf(boundary) * 10 + graces)
        w = await new Devices(GRACE).start(['A', 'B'])
        const a = w.device('A')
        const b = w.device('B')
        const srcA = w.write('srcA', { 'a1.bin': rng.bytes(300 * KiB), 'a2.bin': rng.bytes(300 * KiB) })
        const s1 = await a.backup(srcA)
        await b.backup(w.write('srcB', { 'b1.bin': rng.bytes(200 * KiB) }))
        // a1 stays, a2 changes: the next backup of A deduplicates a1 against the pack that only s1 uses
        w.write('srcA', { 'a2.bin': rng.bytes(300 * KiB) })
        let acted = false
        const act = async (at: Boundary): Promise<void> => {
          if (at !== boundary || acted) return
          acted = true
          await forgetAndPrune(w, s1, graces)
        }
        await act('before')
        let gone = false
        try {
          await a.backup(srcA, { onStep: async (step) => { await act(step) } })
        } catch (err: unknown) {
          if (!(err instanceof PacksGoneError)) throw err
          gone = true
        }
        await act('after')
        if (gone) {
          // nothing was written; run again, as the message says: the data is stored anew
          assert.ok(graces > 0, 'a backup fails only once a pack it relied on was deleted')
          await a.backup(srcA)
        }
        // later prunes by either device collect what is left, and lose nothing
        for (let i = 0; i < 3; i++) {
          w.advance(GRACE + 1)
          await b.prune()
          await a.prune()
        }
        assert.deepEqual(await w.verify(), [])
      })
    }
  }

  it('three devices: two back up while the third prunes between each of their steps; all restore everywhere', async () => {
    const rng = new Rng(7)
    w = await new Devices(GRACE).start(['A', 'B', 'C'])
    const [a, b, c] = ['A', 'B', 'C'].map(n => w.device(n))
    if (a === undefined || b === undefined || c === undefined) throw new Error('devices')
    const shared = rng.bytes(300 * KiB)
    const srcA = w.write('srcA', { 'shared.bin': shared, 'a.bin': rng.bytes(200 * KiB) })
    const srcB = w.write('srcB', { 'shared.bin': shared, 'b.bin': rng.bytes(200 * KiB) })
    const a1 = await a.backup(srcA)
    const b1 = await b.backup(srcB)
    w.write('srcA', { 'a.bin': rng.bytes(200 * KiB) })
    w.write('srcB', { 'b.bin': rng.bytes(200 * KiB) })
    // C forgets both first snapshots and prunes at every step of both backups, a grace period apart
    await c.forget(a1)
    await c.forget(b1)
    // one prune at a time on C (as its writer lock would have it)
    let chain: Promise<void> = Promise.resolve()
    const step = async (): Promise<void> => {
      chain = chain.then(async () => { await c.prune(); w.advance(GRACE / 2 + 1) })
      await chain
    }
    let failures = 0
    const run = async (dev: typeof a, src: string): Promise<void> => {
      try {
        await dev.backup(src, { onStep: step })
      } catch (err: unknown) {
        if (!(err instanceof PacksGoneError)) throw err
        failures++
        await dev.backup(src)
      }
    }
    await Promise.all([run(a, srcA), run(b, srcB)])
    for (let i = 0; i < 3; i++) { w.advance(GRACE + 1); await c.prune() }
    assert.deepEqual(await w.verify(), [])
    assert.ok(failures <= 2)
  })

  it('a prune killed between its phases: the condemnation stands, the next prune finishes it', async () => {
    const rng = new Rng(11)
    w = await new Devices(GRACE).start(['A', 'B'])
    const a = w.device('A')
    const b = w.device('B')
    const src = w.write('src', { 'x.bin': rng.bytes(300 * KiB) })
    const s1 = await a.backup(src)
    w.write('src', { 'x.bin': rng.bytes(300 * KiB) })
    await a.backup(src)
    await b.forget(s1)
    await assert.rejects(b.prune({ onPhase: async (p) => { if (p === 'condemned') throw new Error('killed') } }), /killed/)
    const before = (await w.shared.usage()).shares
    // the other device sees the condemnation at once: its next prune waits the grace period on its own clock
    w.advance(GRACE / 2)
    const early = await a.prune()
    assert.equal(early.packsDeleted, 0)
    assert.ok(early.packsWaiting >= 1, JSON.stringify(early))
    w.advance(GRACE / 2 + 1)
    const r = await b.prune()
    assert.ok(r.packsDeleted >= 1, JSON.stringify(r))
    assert.ok((await w.shared.usage()).shares < before)
    assert.deepEqual(await w.verify(), [])
  })

  it('a prune killed after its sweep deleted packs but before the record says so: the next prune repeats the deletes', async () => {
    const rng = new Rng(12)
    w = await new Devices(0).start(['A'])
    const a = w.device('A')
    const src = w.write('src', { 'x.bin': rng.bytes(300 * KiB) })
    const s1 = await a.backup(src)
    w.write('src', { 'x.bin': rng.bytes(300 * KiB) })
    await a.backup(src)
    await a.forget(s1)
    await assert.rejects(a.prune({ onPhase: async (p) => { if (p === 'swept') throw new Error('killed') } }), /killed/)
    await a.prune()
    assert.deepEqual(await w.verify(), [])
  })

  it('two sweeps at once, each device placing a live blob in the pack the other condemned: neither deletes the last copy (docs/gc.md §4.3)', async () => {
    const rng = new Rng(14)
    w = await new Devices(GRACE).start(['A', 'B'])
    const a = w.device('A')
    const b = w.device('B')
    const x = rng.bytes(100 * KiB) // one chunk: the blob both packs hold
    const s1 = await a.backup(w.write('src', { 'x.bin': x }))
    const bx = a.repo.blobId(x)
    /** stores `blob` again, beside a blob nothing uses, in a pack of its own; returns that pack's id */
    const copy = async (d: Device, extra: Uint8Array): Promise<Uint8Array> => {
      await d.repo.saveBlob(BlobType.Data, bx, x, { force: true })
      await d.repo.saveBlob(BlobType.Data, d.repo.blobId(extra), extra, { force: true })
      await d.repo.flush()
      const at = d.repo.index.getBlob(bx)?.pack
      assert.ok(at !== undefined)
      return at
    }
    // A's pack P = {x, c1}; B indexes it, then stores Q = {x, c2}: B places x in Q
    const p = await copy(a, rng.bytes(50 * KiB))
    await b.sync()
    const q = await copy(b, rng.bytes(50 * KiB))
    // A indexes Q (x would go to Q), then places x in P again, as a rebuild that met P last would
    await a.sync()
    await a.repo.index.addPack(a.repo.index.getPack(p) ?? assert.fail('P indexed'), (await a.repo.reader.readHeader(asPackId(p))).map(e => ({ ...e, pack: p })))
    await a.repo.index.flush()
    // each condemns its complete pack while s1 is out of sight (a snapshot its prune did not see):
    // A condemns P; B, whose index places only c1 in P, notes P with c1 alone, and condemns Q
    const hide = new Set([s1])
    assert.ok((await a.prune({ ignoreSnapshots: hide })).packsCondemned >= 1)
    assert.ok((await b.prune({ ignoreSnapshots: hide })).packsCondemned >= 1)
    await a.prune() // A notes Q with c2 alone
    w.advance(GRACE + 1)
    // both sweep at once: neither's merged record is written before the other read the head
    const sweeping = new Set<string>()
    const waiting = new Set<string>()
    let release = (): void => {}
    const both = new Promise<void>(resolve => { release = resolve })
    const arrive = (name: string): void => { waiting.add(name); if (waiting.size === 2) release() }
    for (const d of [a, b]) {
      const put = d.repo.packs.putRecord.bind(d.repo.packs)
      d.repo.packs.putRecord = async (id, data, options) => {
        if (sweeping.has(d.name)) { arrive(d.name); await both }
        await put(id, data, options)
      }
    }
    const sweep = async (d: Device): Promise<PruneReport> => await d.prune({ onPhase: async (phase) => { if (phase === 'condemned') sweeping.add(d.name) } }).finally(() => { arrive(d.name) })
    const [ra, rb] = await Promise.all([sweep(a), sweep(b)])
    assert.ok(ra.packsRevived + rb.packsRevived >= 1, JSON.stringify({ ra, rb }))
    // and the rounds after, again at once: a device that revived a pack does not rely on it while
    // the other may still delete it
    for (let round = 0; round < 2; round++) {
      w.advance(GRACE + 1)
      sweeping.clear()
      waiting.clear()
      const next = new Promise<void>(resolve => { release = resolve })
      for (const d of [a, b]) {
        const put = Object.getPrototypeOf(d.repo.packs).putRecord.bind(d.repo.packs) as typeof d.repo.packs.putRecord
        d.repo.packs.putRecord = async (id, data, options) => {
          if (sweeping.has(d.name)) { arrive(d.name); await next }
          await put(id, data, options)
        }
      }
      await Promise.all([sweep(a), sweep(b)])
    }
    const held = [p, q].filter(id => a.repo.index.getPack(id) !== undefined || b.repo.index.getPack(id) !== undefined)
    assert.ok(held.length >= 1, 'a pack holding x is left')
    assert.deepEqual(await w.verify(), [])
  })

  // 2026-12-07: test/e2e/daemon-retention.spec.ts failed one run in about eight on a loaded machine:
  // the laptop's restore of its newest snapshot said "blob … is not in the index" because the desktop
  // had condemned that backup's packs meanwhile (gc.md §6.1 case t > c), and a condemned pack's blobs
  // leave the index. The pack is still there, and the next sweep revives it
  it('a snapshot whose new packs another device condemned while it was written restores at once, before any sweep revives them; check passes', async () => {
    const rng = new Rng(2024)
    w = await new Devices(GRACE).start(['A', 'B'])
    const a = w.device('A')
    const b = w.device('B')
    await b.backup(w.write('srcB', { 'b.bin': rng.bytes(100 * KiB) }))
    const srcA = w.write('srcA', { 'a1.bin': rng.bytes(300 * KiB), 'a2.bin': rng.bytes(200 * KiB) })
    let condemned = 0
    // B prunes after A's last look and before A's record: B sees A's new packs, not its snapshot
    await a.backup(srcA, { onStep: async (step) => { if (step === 'write') condemned = (await b.prune()).packsCondemned } })
    assert.ok(condemned >= 2, `B condemned A's new packs (${condemned})`)
    assert.deepEqual(await w.verify(), [])
    // the next sweep on B, a grace period later, revives them: nothing is lost either way
    w.advance(GRACE + 1)
    assert.ok((await b.prune()).packsRevived >= 2)
    assert.deepEqual(await w.verify(), [])
  })

  it('no backup deduplicates against a condemned pack: the data is stored again, and the condemned pack goes', async () => {
    const rng = new Rng(13)
    w = await new Devices(GRACE).start(['A', 'B'])
    const a = w.device('A')
    const b = w.device('B')
    const bytes = rng.bytes(300 * KiB)
    const src = w.write('src', { 'x.bin': bytes })
    const s1 = await a.backup(src)
    await b.forget(s1)
    const r = await b.prune()
    assert.ok(r.packsCondemned >= 1, JSON.stringify(r))
    // the same file comes back on A: A learns of the condemnation and stores the data anew
    const s2 = await a.backup(src)
    const condemned = [...a.repo.index.gc.entries()].map(e => Buffer.from(e.pack).toString('hex'))
    assert.equal(condemned.length, r.packsCondemned)
    for (const p of condemned) assert.ok(!a.repo.relied.has(p), 'the new snapshot relies on no condemned pack')
    assert.ok(a.repo.stats.blobsAdded > 0)
    w.advance(GRACE + 1)
    const swept = await b.prune()
    assert.equal(swept.packsDeleted, r.packsCondemned, JSON.stringify(swept))
    assert.ok(w.expected.has(s2))
    assert.deepEqual(await w.verify(), [])
  })
})
