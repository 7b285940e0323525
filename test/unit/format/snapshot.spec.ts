import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { FormatError } from '../../../src/errors.js'
import {
  decodeSnapshotEnvelope, decodeSnapshotRecord, encodeSnapshotEnvelope, encodeSnapshotRecord, MAX_SEALED_SNAPSHOT_BYTES,
  MAX_SNAPSHOT_LIST_ITEMS, MAX_SNAPSHOT_RECORD_BYTES, snapshotSigningBytes
} from '../../../src/format/snapshot.js'
import type { SnapshotEnvelope, SnapshotRecord } from '../../../src/format/snapshot.js'
import { asSnapshotId, asTreeId } from '../../../src/ids.js'
import { concatBytes, fromHex, toHex, utf8Encode } from '../../../src/util/bytes.js'
import { envelopeFromJson, fullRecord, minimalRecord, recordFromJson } from '../../vectors/generate-snapshot.js'
import type { EnvelopeJson, RecordJson } from '../../vectors/generate-snapshot.js'

const SEED = 20240612
const I64 = { min: -(1n << 63n), max: (1n << 63n) - 1n }
// a leading U+FEFF must survive (a BOM-stripping UTF-8 decoder would lose it)
const textArb = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 30 }), fc.string({ maxLength: 5 }).map(s => '\ufeff' + s))
const idArb = fc.uint8Array({ minLength: 32, maxLength: 32 })

const recordArb: fc.Arbitrary<SnapshotRecord> = fc.record({
  version: fc.constant(1 as const),
  time: fc.bigInt(I64),
  endTime: fc.bigInt(I64),
  host: textArb,
  user: textArb,
  userId: idArb.map(toHex),
  paths: fc.array(textArb, { maxLength: 6 }),
  tags: fc.array(textArb, { maxLength: 6 }),
  tree: idArb.map(asTreeId),
  parent: idArb.map(asSnapshotId),
  summary: fc.record({
    filesNew: fc.maxSafeNat(), filesChanged: fc.maxSafeNat(), filesUnchanged: fc.maxSafeNat(), dirs: fc.maxSafeNat(),
    bytesRead: fc.maxSafeNat(), bytesAdded: fc.maxSafeNat(), errors: fc.maxSafeNat()
  }, { noNullPrototype: true }),
  program: textArb
}, { noNullPrototype: true, requiredKeys: ['version', 'time', 'endTime', 'host', 'user', 'userId', 'paths', 'tags', 'tree', 'summary', 'program'] })

const envelopeArb: fc.Arbitrary<SnapshotEnvelope> = fc.record({
  userId: idArb,
  sealed: fc.uint8Array({ minLength: 1, maxLength: 300 }),
  signature: fc.uint8Array({ minLength: 64, maxLength: 64 })
}, { noNullPrototype: true })

function throwsFormat (fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => err instanceof FormatError && err.code === 'ERR_FORMAT')
}

/** Decodes, or returns undefined on a FormatError; any other error fails the test. */
function tryDecode<T> (decode: () => T): T | undefined {
  try { return decode() } catch (err: unknown) {
    if (err instanceof FormatError) return undefined
    throw err
  }
}

const mutationArb = fc.array(fc.record({ kind: fc.constantFrom('flip', 'insert', 'delete', 'truncate'), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 4 })
function mutate (bytes: Uint8Array, muts: Array<{ kind: string, at: number, value: number }>): Uint8Array {
  let b = Array.from(bytes)
  for (const m of muts) {
    const at = m.at % (b.length + 1)
    if (m.kind === 'flip' && at < b.length) b[at] = (b[at] as number) ^ (1 << (m.value % 8))
    if (m.kind === 'insert') b.splice(at, 0, m.value)
    if (m.kind === 'delete') b.splice(at, 1)
    if (m.kind === 'truncate') b = b.slice(0, at)
  }
  return Uint8Array.from(b)
}

interface VectorFile {
  records: Array<{ name: string, record: RecordJson, hex: string }>
  envelope: { envelope: EnvelopeJson, signingBytesHex: string, hex: string }
}

describe('format/snapshot', () => {
  describe('golden vectors (test/vectors/snapshot.json)', () => {
    const file = JSON.parse(readFileSync(new URL('../../vectors/snapshot.json', import.meta.url), 'utf8')) as VectorFile
    for (const v of file.records) {
      it(`record ${v.name}: encodes to the recorded bytes and decodes back`, () => {
        const record = recordFromJson(v.record)
        assert.equal(toHex(encodeSnapshotRecord(record)), v.hex)
        assert.deepStrictEqual(decodeSnapshotRecord(fromHex(v.hex)), record)
      })
    }
    it('records were generated from the example records', () => {
      assert.deepStrictEqual(file.records.map(r => r.hex), [fullRecord(), minimalRecord()].map(r => toHex(encodeSnapshotRecord(r))))
    })
    it('envelope and signing bytes', () => {
      const e = envelopeFromJson(file.envelope.envelope)
      assert.equal(toHex(encodeSnapshotEnvelope(e)), file.envelope.hex)
      assert.deepStrictEqual(decodeSnapshotEnvelope(fromHex(file.envelope.hex)), e)
      assert.equal(toHex(snapshotSigningBytes(e.userId, e.sealed)), file.envelope.signingBytesHex)
    })
  })

  describe('record', () => {
    it('round-trips any valid record, deterministically', () => {
      fc.assert(fc.property(recordArb, r => {
        const bytes = encodeSnapshotRecord(r)
        assert.deepStrictEqual(decodeSnapshotRecord(bytes), r)
        assert.deepStrictEqual(encodeSnapshotRecord(structuredClone(r)), bytes)
      }), { seed: SEED, numRuns: 300 })
    })

    const bad: Array<{ name: string, change: (r: SnapshotRecord) => unknown }> = [
      { name: 'version 2', change: r => ({ ...r, version: 2 }) },
      { name: 'time beyond int64', change: r => ({ ...r, time: 1n << 63n }) },
      { name: 'userId in upper case', change: r => ({ ...r, userId: r.userId.toUpperCase() }) },
      { name: 'userId of 31 bytes', change: r => ({ ...r, userId: r.userId.slice(2) }) },
      { name: 'tree id of 33 bytes', change: r => ({ ...r, tree: new Uint8Array(33) }) },
      { name: 'parent id of 0 bytes', change: r => ({ ...r, parent: new Uint8Array() }) },
      { name: 'negative summary count', change: r => ({ ...r, summary: { ...r.summary, errors: -1 } }) },
      { name: 'fractional summary count', change: r => ({ ...r, summary: { ...r.summary, bytesRead: 0.5 } }) },
      { name: 'host over 64 KiB', change: r => ({ ...r, host: 'h'.repeat(65537) }) },
      { name: 'a path with a lone surrogate', change: r => ({ ...r, paths: ['/a\udc00'] }) },
      { name: 'more than 100000 tags', change: r => ({ ...r, tags: new Array<string>(MAX_SNAPSHOT_LIST_ITEMS + 1).fill('') }) },
      { name: 'more than 16 MiB in all', change: r => ({ ...r, paths: new Array<string>(300).fill('p'.repeat(65536)) }) }
    ]
    for (const tc of bad) it(`encoder refuses ${tc.name}`, () => throwsFormat(() => encodeSnapshotRecord(tc.change(fullRecord()) as SnapshotRecord)))

    it('decoder refuses unknown version, reserved flags, critical extensions, trailing bytes, truncation', () => {
      const good = encodeSnapshotRecord(minimalRecord())
      const withFlags = (flags: number, tail: number[]): Uint8Array => concatBytes([Uint8Array.from([1, flags]), good.subarray(2), Uint8Array.from(tail)])
      throwsFormat(() => decodeSnapshotRecord(Uint8Array.from([2, ...good.subarray(1)])))
      throwsFormat(() => decodeSnapshotRecord(withFlags(4, [])))
      throwsFormat(() => decodeSnapshotRecord(withFlags(2, [1, 1, 0])))
      throwsFormat(() => decodeSnapshotRecord(withFlags(2, [0])))
      throwsFormat(() => decodeSnapshotRecord(concatBytes([good, Uint8Array.from([0])])))
      throwsFormat(() => decodeSnapshotRecord(new Uint8Array(MAX_SNAPSHOT_RECORD_BYTES + 1)))
      for (let n = 0; n < good.length; n++) throwsFormat(() => decodeSnapshotRecord(good.subarray(0, n)))
      // an ignorable (even) extension is skipped
      assert.deepStrictEqual(decodeSnapshotRecord(withFlags(2, [1, 4, 2, 0xee, 0xff])), minimalRecord())
    })

    it('decoder refuses a path count larger than the bytes left', () => {
      const good = encodeSnapshotRecord(minimalRecord())
      const pathCountAt = 1 + 1 + 1 + 1 + 1 + 1 + 32 // version, flags, time, endTime, host len, user len, userId
      const bytes = concatBytes([good.subarray(0, pathCountAt), Uint8Array.from([0xa0, 0x8d, 0x06]), good.subarray(pathCountAt + 1)])
      throwsFormat(() => decodeSnapshotRecord(bytes))
    })

    it('keeps a leading U+FEFF in every text field', () => {
      const r = { ...fullRecord(), host: '\ufeffh', user: '\ufeff', paths: ['\ufeff/p'], tags: ['\ufefft'], program: '\ufeffp2pbak' }
      assert.deepStrictEqual(decodeSnapshotRecord(encodeSnapshotRecord(r)), r)
    })

    it('decoder refuses invalid UTF-8 in a text field', () => {
      const r = { ...minimalRecord(), host: 'ab' }
      const bytes = encodeSnapshotRecord(r)
      const at = toHex(bytes).indexOf('026162') / 2 + 1
      bytes[at] = 0xff
      throwsFormat(() => decodeSnapshotRecord(bytes))
    })

    it('fuzz: arbitrary and mutated bytes give a valid record or a FormatError', () => {
      const input = fc.oneof(
        fc.uint8Array({ maxLength: 200 }).map(b => concatBytes([Uint8Array.from([1]), b])),
        fc.tuple(recordArb, mutationArb).map(([r, m]) => mutate(encodeSnapshotRecord(r), m))
      )
      fc.assert(fc.property(input, bytes => {
        const r = tryDecode(() => decodeSnapshotRecord(bytes))
        if (r !== undefined) assert.deepStrictEqual(decodeSnapshotRecord(encodeSnapshotRecord(r)), r)
      }), { seed: SEED + 1, numRuns: 2000 })
    })
  })

  describe('envelope', () => {
    it('round-trips, and its layout is magic || version || userId || len || sealed || signature', () => {
      fc.assert(fc.property(envelopeArb, e => {
        const bytes = encodeSnapshotEnvelope(e)
        assert.deepStrictEqual(decodeSnapshotEnvelope(bytes), e)
        assert.equal(new TextDecoder().decode(bytes.subarray(0, 8)), 'P2PBSNAP')
        assert.equal(bytes[8], 1)
        assert.deepStrictEqual(bytes.subarray(9, 41), e.userId)
        assert.deepStrictEqual(bytes.subarray(bytes.length - 64), e.signature)
      }), { seed: SEED + 2, numRuns: 200 })
    })

    it('signing bytes are domain-separated and bind the user id and every sealed byte', () => {
      const u = new Uint8Array(32).fill(7)
      const s = Uint8Array.from([1, 2, 3])
      assert.deepStrictEqual(snapshotSigningBytes(u, s), concatBytes([utf8Encode('p2pbak snapshot v1'), Uint8Array.from([0]), u, s]))
      assert.notDeepEqual(snapshotSigningBytes(u, s), snapshotSigningBytes(new Uint8Array(32).fill(8), s))
      assert.notDeepEqual(snapshotSigningBytes(u, s), snapshotSigningBytes(u, Uint8Array.from([1, 2, 4])))
      throwsFormat(() => snapshotSigningBytes(new Uint8Array(31), s))
    })

    const good = (): SnapshotEnvelope => ({ userId: new Uint8Array(32).fill(1), sealed: new Uint8Array(40).fill(2), signature: new Uint8Array(64).fill(3) })
    const badEnvelopes: Array<{ name: string, e: SnapshotEnvelope }> = [
      { name: 'userId of 33 bytes', e: { ...good(), userId: new Uint8Array(33) } },
      { name: 'signature of 63 bytes', e: { ...good(), signature: new Uint8Array(63) } },
      { name: 'empty sealed record', e: { ...good(), sealed: new Uint8Array() } },
      { name: 'sealed record over 16 MiB', e: { ...good(), sealed: new Uint8Array(MAX_SEALED_SNAPSHOT_BYTES + 1) } }
    ]
    for (const tc of badEnvelopes) it(`encoder refuses ${tc.name}`, () => throwsFormat(() => encodeSnapshotEnvelope(tc.e)))

    it('decoder refuses bad magic, unknown version, huge or empty lengths, truncation, trailing bytes', () => {
      const bytes = encodeSnapshotEnvelope(good())
      const patched = (at: number, v: number): Uint8Array => { const b = bytes.slice(); b[at] = v; return b }
      throwsFormat(() => decodeSnapshotEnvelope(patched(0, 0x51)))
      throwsFormat(() => decodeSnapshotEnvelope(patched(8, 2)))
      throwsFormat(() => decodeSnapshotEnvelope(patched(41, 0)))
      throwsFormat(() => decodeSnapshotEnvelope(concatBytes([bytes.subarray(0, 41), Uint8Array.from([0x81, 0x80, 0x80, 0x08])])))
      throwsFormat(() => decodeSnapshotEnvelope(concatBytes([bytes, Uint8Array.from([0])])))
      for (let n = 0; n < bytes.length; n++) throwsFormat(() => decodeSnapshotEnvelope(bytes.subarray(0, n)))
    })

    it('fuzz: arbitrary and mutated bytes give a valid envelope or a FormatError', () => {
      const input = fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.tuple(envelopeArb, mutationArb).map(([e, m]) => mutate(encodeSnapshotEnvelope(e), m)))
      fc.assert(fc.property(input, bytes => {
        const e = tryDecode(() => decodeSnapshotEnvelope(bytes))
        if (e !== undefined) assert.deepStrictEqual(encodeSnapshotEnvelope(e), bytes)
      }), { seed: SEED + 3, numRuns: 2000 })
    })
  })
})
