/**
 * Every decoder that reads peer or disk input, fuzzed (issue 11, "Also"): random bytes, random JSON,
 * and valid messages mutated (bytes flipped, cut short, extended, fields swapped for odd values).
 * Each either decodes or throws a typed P2pbakError (a clear ERR_ code and message) — never a
 * TypeError, RangeError or a hang. Valid inputs come from the test vectors (test/vectors/*.json).
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { isP2pbakError } from '../../../src/errors.js'
import { decodeShareHeader } from '../../../src/format/share.js'
import { decodeTree } from '../../../src/format/tree.js'
import { decodeSnapshotEnvelope, decodeSnapshotRecord } from '../../../src/format/snapshot.js'
import { GcState, decodeGcEnvelope, decodeGcRecord, encodeGcEnvelope, encodeGcRecord } from '../../../src/format/gc-record.js'
import { decodeKeyInfo, decodePackHeader, decodePackPrefix } from '../../../src/format/pack.js'
import { decodePage, parseRequest } from '../../../src/protocols/shard/wire.js'
import { decodeBase64, decodeBase64Url, parseCanonicalJson } from '../../../src/peers/canonical.js'
import { decodeLedger, decodeOffer, decodeRoster, parseDeviceCert, parseInvite, parseLedger, parseOffer, parseRoster } from '../../../src/peers/index.js'
import { parseNotifySettings } from '../../../src/node/alert-settings.js'
import { bindingRequestId, bindingResponse, parseBindingResponse } from '../../../src/protocols/stun.js'
import { parseDialbackAddr } from '../../../src/protocols/dialback.js'

const vector = (name: string): Record<string, unknown> => JSON.parse(readFileSync(new URL(`../../vectors/${name}.json`, import.meta.url), 'utf8')) as Record<string, unknown>
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const utf8 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'))

/** The decoder answered, or refused with a typed error; anything else (and anything slow) fails the property. */
function decodesOrRefuses (what: string, fn: () => unknown): void {
  const t = performance.now()
  try {
    fn()
  } catch (err: unknown) {
    if (!isP2pbakError(err)) throw new Error(`${what}: an untyped ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`)
    assert.match(err.code, /^ERR_[A-Z_]+$/)
    assert.ok(err.message.length > 0)
  }
  const ms = performance.now() - t
  assert.ok(ms < 2000, `${what} took ${Math.round(ms)} ms`)
}

/** A valid message with a few bytes flipped, cut short or extended. */
function mutated (valid: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.array(fc.tuple(fc.nat(Math.max(0, valid.byteLength - 1)), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 8 }).map(flips => {
      const b = new Uint8Array(valid)
      for (const [i, x] of flips) if (i < b.byteLength) b[i] = (b[i] as number) ^ x
      return b
    }),
    fc.nat(valid.byteLength).map(n => valid.slice(0, n)),
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map(tail => new Uint8Array([...valid, ...tail]))
  )
}

/** A valid JSON object with one value replaced by something odd. */
function mutatedJson (valid: Record<string, unknown>): fc.Arbitrary<unknown> {
  const keys = Object.keys(valid)
  const odd = fc.oneof(fc.constant(null), fc.constant(undefined), fc.string(), fc.integer(), fc.double(), fc.constant(2 ** 53), fc.constant(-1),
    fc.boolean(), fc.array(fc.anything(), { maxLength: 3 }), fc.constant({}), fc.constant('x'.repeat(10_000)),
    // decoded JSON may name an object's own methods: `String()` of these throws a TypeError (CI seed 1347478540)
    fc.constant({ toString: 0 }), fc.constant([{ toString: 0 }]), fc.constant({ valueOf: 0, toString: 0 }), fc.constant(Object.create(null) as unknown))
  return fc.tuple(fc.constantFrom(...keys, '__proto__', 'extra'), odd).map(([k, v]) => ({ ...valid, [k]: v }))
}

const RUNS = { numRuns: 200 }
const randomBytes = fc.uint8Array({ maxLength: 4096 })

describe('fuzz: every decoder of peer or disk input refuses garbage with a typed error', function () {
  this.timeout(120_000)

  it('share headers', () => {
    fc.assert(fc.property(randomBytes, b => decodesOrRefuses('decodeShareHeader', () => decodeShareHeader(b))), RUNS)
  })

  it('trees (random and mutated vectors)', () => {
    const trees = (vector('tree').vectors as Array<{ hex: string }>).map(v => hex(v.hex))
    fc.assert(fc.property(randomBytes, b => decodesOrRefuses('decodeTree', () => decodeTree(b))), RUNS)
    for (const t of trees) fc.assert(fc.property(mutated(t), b => decodesOrRefuses('decodeTree', () => decodeTree(b))), RUNS)
  })

  it('gc records and envelopes (random and mutated valid ones)', () => {
    const record = encodeGcRecord({
      version: 1, time: 1767225600000n, host: 'laptop',
      entries: [{ pack: new Uint8Array(32).fill(0x11), state: GcState.Condemned }, { pack: new Uint8Array(32).fill(0x22), state: GcState.Forgotten }]
    })
    const envelopes = ([1, 2] as const).map(version => encodeGcEnvelope({ version, userId: new Uint8Array(32).fill(7), sealed: new Uint8Array(130).fill(9), signature: new Uint8Array(64).fill(5) }))
    fc.assert(fc.property(randomBytes, b => decodesOrRefuses('decodeGcRecord', () => decodeGcRecord(b))), RUNS)
    fc.assert(fc.property(mutated(record), b => decodesOrRefuses('decodeGcRecord', () => decodeGcRecord(b))), RUNS)
    fc.assert(fc.property(randomBytes, b => decodesOrRefuses('decodeGcEnvelope', () => decodeGcEnvelope(b))), RUNS)
    for (const e of envelopes) fc.assert(fc.property(mutated(e), b => decodesOrRefuses('decodeGcEnvelope', () => decodeGcEnvelope(b))), RUNS)
  })

  it('snapshot records and envelopes', () => {
    const snap = vector('snapshot')
    const records = (snap.records as Array<{ hex: string }>).map(r => hex(r.hex))
    const envelope = hex((snap.envelope as { hex: string }).hex)
    fc.assert(fc.property(randomBytes, b => {
      decodesOrRefuses('decodeSnapshotRecord', () => decodeSnapshotRecord(b))
      decodesOrRefuses('decodeSnapshotEnvelope', () => decodeSnapshotEnvelope(b))
    }), RUNS)
    for (const r of records) fc.assert(fc.property(mutated(r), b => decodesOrRefuses('decodeSnapshotRecord', () => decodeSnapshotRecord(b))), RUNS)
    fc.assert(fc.property(mutated(envelope), b => decodesOrRefuses('decodeSnapshotEnvelope', () => decodeSnapshotEnvelope(b))), RUNS)
  })

  it('pack prefixes, key infos and headers', () => {
    const pack = vector('pack') as { prefix: string, keyInfo: string }
    fc.assert(fc.property(randomBytes, fc.nat(1 << 20), (b, end) => {
      decodesOrRefuses('decodePackPrefix', () => decodePackPrefix(b))
      decodesOrRefuses('decodeKeyInfo', () => decodeKeyInfo(b))
      decodesOrRefuses('decodePackHeader', () => decodePackHeader(b, end))
    }), RUNS)
    fc.assert(fc.property(mutated(hex(pack.prefix)), b => decodesOrRefuses('decodePackPrefix', () => decodePackPrefix(b))), RUNS)
    fc.assert(fc.property(mutated(hex(pack.keyInfo)), b => decodesOrRefuses('decodeKeyInfo', () => decodeKeyInfo(b))), RUNS)
  })

  it('shard requests: random headers, mutated valid ones, odd bodies; listing pages', () => {
    const ref = { pack: 'ab'.repeat(32), index: 3 }
    const sig = `${'A'.repeat(86)}==`
    const valid: Array<Record<string, unknown>> = [
      { op: 'put', ...ref }, { op: 'putPart', ...ref, offset: 0, total: 10 }, { op: 'get', ...ref }, { op: 'getRange', ...ref, offset: 1, length: 2 },
      { op: 'has', ...ref }, { op: 'size', ...ref }, { op: 'delete', ...ref }, { op: 'list', limit: 10 }, { op: 'listRecords', cursor: 'cd'.repeat(32) },
      { op: 'putRecord', id: 'ef'.repeat(32) }, { op: 'getRecord', id: 'ef'.repeat(32) }, { op: 'usage' },
      // signed replaces (shard.md §7.3)
      { op: 'put', ...ref, ts: 1, sig }, { op: 'putPart', ...ref, offset: 0, total: 10, ts: 1, sig }, { op: 'putRecord', id: 'ef'.repeat(32), ts: 1, sig }
    ]
    fc.assert(fc.property(fc.anything(), fc.uint8Array({ maxLength: 64 }), (h, body) => decodesOrRefuses('parseRequest', () => parseRequest(h, body))), RUNS)
    for (const v of valid) fc.assert(fc.property(mutatedJson(v), fc.uint8Array({ maxLength: 16 }), (h, body) => decodesOrRefuses('parseRequest', () => parseRequest(h, body))), { numRuns: 60 })
    fc.assert(fc.property(randomBytes, fc.integer({ min: 1, max: 64 }), fc.option(fc.uint8Array({ minLength: 32, maxLength: 33 }), { nil: undefined }),
      (b, entry, after) => decodesOrRefuses('decodePage', () => decodePage(b, entry, after))), RUNS)
  })

  it('rosters, device certificates and invites (random JSON and mutated vectors)', () => {
    const group = vector('group') as Record<string, Record<string, unknown>>
    const cert = group.deviceCert?.cert as Record<string, unknown>
    fc.assert(fc.property(fc.anything(), v => {
      decodesOrRefuses('parseRoster', () => parseRoster(v))
      decodesOrRefuses('parseDeviceCert', () => parseDeviceCert(v))
      decodesOrRefuses('parseInvite', () => parseInvite(v))
    }), RUNS)
    fc.assert(fc.property(randomBytes, b => decodesOrRefuses('decodeRoster', () => decodeRoster(b))), RUNS)
    fc.assert(fc.property(mutatedJson(cert), v => decodesOrRefuses('parseDeviceCert', () => parseDeviceCert(v))), RUNS)
    const roster = JSON.parse((group.rosterChain as unknown as string[])[1] as string) as Record<string, unknown>
    assert.ok(findRoster(roster) === roster, 'the group vectors hold a roster')
    fc.assert(fc.property(mutatedJson(roster), v => decodesOrRefuses('parseRoster', () => parseRoster(v))), RUNS)
    fc.assert(fc.property(mutated(utf8(JSON.stringify(roster))), b => decodesOrRefuses('decodeRoster', () => decodeRoster(b))), RUNS)
    const invite = findInvite(group.invite)
    assert.ok(invite !== undefined, 'the group vectors hold an invite')
    fc.assert(fc.property(mutatedJson(invite), v => decodesOrRefuses('parseInvite', () => parseInvite(v))), RUNS)
  })

  it('offers and ledger statements', () => {
    const offers = (vector('offer').offers as Array<{ record: string }>).map(o => o.record)
    const ledger = vector('ledger')
    fc.assert(fc.property(randomBytes, fc.anything(), (b, v) => {
      decodesOrRefuses('decodeOffer', () => decodeOffer(b))
      decodesOrRefuses('parseOffer', () => parseOffer(v))
      decodesOrRefuses('decodeLedger', () => decodeLedger(b))
      decodesOrRefuses('parseLedger', () => parseLedger(v))
    }), RUNS)
    for (const o of offers) {
      fc.assert(fc.property(mutated(utf8(o)), b => decodesOrRefuses('decodeOffer', () => decodeOffer(b))), RUNS)
      fc.assert(fc.property(mutatedJson(JSON.parse(o) as Record<string, unknown>), v => decodesOrRefuses('parseOffer', () => parseOffer(v))), RUNS)
    }
    const statements = ledger.statements as string[]
    for (const s of statements.slice(0, 2)) fc.assert(fc.property(mutatedJson(JSON.parse(s) as Record<string, unknown>), v => decodesOrRefuses('parseLedger', () => parseLedger(v))), RUNS)
    for (const s of statements.slice(0, 2)) fc.assert(fc.property(mutated(utf8(s)), b => decodesOrRefuses('decodeLedger', () => decodeLedger(b))), RUNS)
  })

  it('canonical JSON, base64, and the notify settings of config.json', () => {
    fc.assert(fc.property(fc.string({ maxLength: 512 }), fc.anything(), (s, v) => {
      decodesOrRefuses('parseCanonicalJson', () => parseCanonicalJson(s, 'fuzz'))
      // the base64 decoders say "not base64" with undefined, never throw
      assert.doesNotThrow(() => { decodeBase64(s); decodeBase64Url(s) })
      decodesOrRefuses('parseNotifySettings', () => parseNotifySettings(v))
    }), RUNS)
  })

  it('STUN datagrams (anyone on the internet may send one) and dial-back addresses', () => {
    const request = hex('000100002112a442b7e7a701bc34d686fa87dfae')
    assert.ok(bindingRequestId(request) !== undefined, 'a valid Binding request to mutate')
    const response = bindingResponse(hex('b7e7a701bc34d686fa87dfae'), '192.0.2.1', 32853)
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 600 }), mutated(request), mutated(response)), (msg) => {
      // the STUN codec says "not for us" with undefined, never throws
      assert.doesNotThrow(() => { bindingRequestId(msg); parseBindingResponse(msg) })
    }), RUNS)
    const peer = '12D3KooWD5Sssd8JhZD5GGHRbaetgbvbtWq9AEcSxEaEqhZYVcsF'
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 260 }), fc.constantFrom('/ip4/203.0.113.7/tcp/4737', `/ip4/203.0.113.7/tcp/4737/p2p/${peer}`, '/ip6/2001:db8::1/tcp/1').chain(a => fc.nat({ max: a.length }).map(n => a.slice(0, n))), fc.anything()), (a) => {
      decodesOrRefuses('parseDialbackAddr', () => parseDialbackAddr(a, peer))
    }), RUNS)
  })
})

/** The invite object of the group vectors (the one with a groupId and a secret or token). */
function findInvite (v: unknown): Record<string, unknown> | undefined {
  if (typeof v !== 'object' || v === null) return undefined
  const o = v as Record<string, unknown>
  if ('groupId' in o && !('members' in o)) return o
  for (const x of Object.values(o)) {
    const found = findInvite(x)
    if (found !== undefined) return found
  }
  return undefined
}

/** The first roster object in the group vectors (its shape: groupId, members, serial). */
function findRoster (v: unknown): Record<string, unknown> | undefined {
  if (typeof v !== 'object' || v === null) return undefined
  const o = v as Record<string, unknown>
  if ('groupId' in o && 'members' in o && 'serial' in o) return o
  for (const x of Object.values(o)) {
    const found = findRoster(x)
    if (found !== undefined) return found
  }
  return undefined
}
