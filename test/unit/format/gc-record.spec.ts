import assert from 'node:assert/strict'
import {
  GcState, decodeGcEnvelope, decodeGcRecord, encodeGcEnvelope, encodeGcRecord, gcSigningBytes, isGcEnvelope, normalizeGcEntries, type GcRecord
} from '../../../src/format/gc-record.js'
import { encodeSnapshotEnvelope } from '../../../src/format/snapshot.js'

const example: GcRecord = {
  version: 1,
  time: 1767225600000n,
  host: 'laptop',
  entries: [{ pack: new Uint8Array(32).fill(0x11), state: GcState.Condemned }, { pack: new Uint8Array(32).fill(0x22), state: GcState.Forgotten }]
}

describe('format/gc-record', () => {
  it('encodes the example of docs/format/gc-records.md §4 byte for byte, and back', () => {
    const hex = '0100' + '80a0d5edee66' + '066c6170746f70' + '02' + '11'.repeat(32) + '01' + '22'.repeat(32) + '03'
    const bytes = encodeGcRecord(example)
    assert.equal(Buffer.from(bytes).toString('hex'), hex)
    assert.equal(bytes.byteLength, 82)
    assert.deepEqual(decodeGcRecord(bytes), example)
  })

  const bad: Array<[string, (b: Buffer) => Buffer]> = [
    ['an unknown version', b => Buffer.concat([Buffer.from([2]), b.subarray(1)])],
    ['reserved flags', b => { const c = Buffer.from(b); c[1] = 1; return c }],
    ['an unknown state', b => { const c = Buffer.from(b); c[c.length - 1] = 4; return c }],
    ['trailing bytes', b => Buffer.concat([b, Buffer.from([0])])],
    ['a truncated entry', b => b.subarray(0, b.length - 1)],
    ['entries out of order', b => { const c = Buffer.from(b); c.fill(0x33, 17, 49); return c }]
  ]
  for (const [name, mutate] of bad) {
    it(`rejects ${name}`, () => {
      assert.throws(() => decodeGcRecord(mutate(Buffer.from(encodeGcRecord(example)))), { code: 'ERR_FORMAT' })
    })
  }

  it('normalizes entries: sorted, one per id, the highest state', () => {
    const a = new Uint8Array(32).fill(2)
    const b = new Uint8Array(32).fill(1)
    const out = normalizeGcEntries([{ pack: a, state: GcState.Condemned }, { pack: b, state: GcState.Condemned }, { pack: a, state: GcState.Deleted }])
    assert.deepEqual(out.map(e => [e.pack[0], e.state]), [[1, 1], [2, 2]])
  })

  it('tells a gc envelope from a snapshot envelope by its magic', () => {
    const body = { userId: new Uint8Array(32).fill(7), sealed: new Uint8Array(48).fill(9), signature: new Uint8Array(64).fill(5) }
    for (const version of [1, 2] as const) {
      const parts = { version, ...body }
      const gc = encodeGcEnvelope(parts)
      assert.equal(Buffer.from(gc.subarray(0, 8)).toString(), 'P2PBGCRD')
      assert.equal(gc[8], version)
      assert.ok(isGcEnvelope(gc))
      assert.ok(!isGcEnvelope(encodeSnapshotEnvelope(body)))
      assert.deepEqual(decodeGcEnvelope(gc), parts)
      assert.equal(Buffer.from(gcSigningBytes(version, parts.userId, parts.sealed).subarray(0, 13)).toString(), `p2pbak gc v${version}\0`)
    }
    const three = encodeGcEnvelope({ version: 2, ...body })
    three[8] = 3
    assert.throws(() => decodeGcEnvelope(three), { code: 'ERR_FORMAT' })
  })
})
