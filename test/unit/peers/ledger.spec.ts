import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { loadBackend, writeOnlyIdentity } from '../../../src/crypto/index.js'
import type { Identity, SodiumBackend } from '../../../src/crypto/index.js'
import { FormatError, InvalidArgumentError, NotMemberError, UnauthenticatedError } from '../../../src/errors.js'
import {
  DEFAULT_RECIPROCITY_GRACE_BYTES, DEFAULT_RECIPROCITY_MULTIPLE, MAX_LEDGER_CLOCK_SKEW_MS, MAX_LEDGER_ENTRIES,
  addDevice, addMember, createRoster, decodeLedger, decodeRoster, encodeLedger, issueDeviceCert, latestLedgers,
  ledgerBalances, ledgerEntries, ledgerRelayed, ledgerSigningBytes, reciprocityLimit, reciprocityRefusal, removeMember, signLedger,
  verifyLedger,
  LEDGER_DISPUTE_CAP_BYTES
} from '../../../src/peers/index.js'
import type { LedgerFields, LedgerStatement, ReciprocityBalance, ReciprocityPolicy, Roster } from '../../../src/peers/index.js'
import { toHex, utf8Decode, utf8Encode } from '../../../src/util/bytes.js'
import { GiB, MiB, buildLedgerVectors } from '../../vectors/generate-ledger.js'
import { fakePeerId, identityFrom, leafPaths, tamperAt } from './fixtures.js'
import type { Json } from './fixtures.js'

const T0 = 1_700_000_000_000
const hex = (n: number): fc.Arbitrary<string> => fc.uint8Array({ minLength: n, maxLength: n }).map(toHex)
const sigArb = fc.uint8Array({ minLength: 64, maxLength: 64 }).map(b => Buffer.from(b).toString('base64'))

describe('peers: reciprocity ledger', () => {
  let sodium: SodiumBackend
  let alice: Identity, bob: Identity, carol: Identity, dave: Identity
  let roster: Roster
  /** [device peer id, its person] for every device on `roster` */
  let devices: Array<[string, Identity]>
  const fields = (over: Partial<LedgerFields> = {}): LedgerFields => ({
    groupId: roster.groupId, peerId: fakePeerId(1), time: T0, holds: { [bob.userId]: 5 * GiB }, placed: { [carol.userId]: 7 }, ...over
  })
  before(async () => {
    sodium = await loadBackend()
    ;[alice, bob, carol, dave] = [1, 2, 3, 4].map(n => identityFrom(sodium, n)) as [Identity, Identity, Identity, Identity]
    const cert = (who: Identity, n: number): ReturnType<typeof issueDeviceCert> => issueDeviceCert(sodium, who, fakePeerId(n), `device ${n}`, T0)
    roster = createRoster(sodium, alice, 'family', cert(alice, 1), T0)
    roster = addMember(sodium, roster, alice, { userId: bob.userId, name: 'Bob', device: cert(bob, 2) }, T0)
    roster = addDevice(sodium, roster, bob, cert(bob, 3), T0)
    roster = addMember(sodium, roster, alice, { userId: carol.userId, name: 'Carol', device: cert(carol, 4) }, T0)
    devices = [[fakePeerId(1), alice], [fakePeerId(2), bob], [fakePeerId(3), bob], [fakePeerId(4), carol]]
  })

  describe('statements', () => {
    it('a signed statement verifies against the roster and keeps what the device stated', () => {
      const s = signLedger(sodium, alice, fields())
      assert.deepEqual({ ...s, signature: '' }, { version: 1, userId: alice.userId, ...fields(), signature: '' })
      assert.match(s.signature, /^[A-Za-z0-9+/]{86}==$/)
      assert.deepEqual(verifyLedger(sodium, s, { roster, now: T0 }), s)
      assert.deepEqual(decodeLedger(encodeLedger(s)), s)
    })

    it('every single-field change, and renaming an owner, makes verification fail', () => {
      const s = signLedger(sodium, alice, fields())
      const paths = leafPaths(s as unknown as Json)
      assert.equal(paths.length, 8)
      for (const path of paths) {
        assert.throws(() => verifyLedger(sodium, tamperAt(s, path)), (err: unknown) => err instanceof UnauthenticatedError || err instanceof FormatError, path.join('.'))
      }
      const renamed = { ...s, holds: { [carol.userId]: 5 * GiB } }
      assert.throws(() => verifyLedger(sodium, renamed), UnauthenticatedError)
    })

    it('a statement signed by one person in another person\'s name is refused', () => {
      const byBob = signLedger(sodium, bob, fields({ peerId: fakePeerId(2) }))
      assert.throws(() => verifyLedger(sodium, { ...byBob, userId: alice.userId }), UnauthenticatedError)
    })

    it('the roster check: right group, device on the roster under its signer, member not removed', () => {
      const otherGroup = signLedger(sodium, alice, fields({ groupId: 'ab'.repeat(16) }))
      assert.doesNotThrow(() => verifyLedger(sodium, otherGroup))
      assert.throws(() => verifyLedger(sodium, otherGroup, { roster }), /belongs to group/)
      assert.throws(() => verifyLedger(sodium, signLedger(sodium, alice, fields({ peerId: fakePeerId(99) })), { roster }), NotMemberError)
      assert.throws(() => verifyLedger(sodium, signLedger(sodium, alice, fields({ peerId: fakePeerId(2) })), { roster }), UnauthenticatedError)
      assert.throws(() => verifyLedger(sodium, signLedger(sodium, dave, fields({ peerId: fakePeerId(1) })), { roster }), UnauthenticatedError)
      const fromCarol = signLedger(sodium, carol, fields({ peerId: fakePeerId(4) }))
      verifyLedger(sodium, fromCarol, { roster })
      const without = removeMember(sodium, roster, alice, carol.userId, T0 + 1)
      assert.throws(() => verifyLedger(sodium, fromCarol, { roster: without }), NotMemberError)
    })

    it('a statement dated beyond the allowed clock skew is refused (it would shadow the device\'s later ones)', () => {
      const s = signLedger(sodium, alice, fields({ time: T0 + MAX_LEDGER_CLOCK_SKEW_MS }))
      verifyLedger(sodium, s, { now: T0 })
      assert.throws(() => verifyLedger(sodium, s, { now: T0 - 1 }), UnauthenticatedError)
    })

    it('malformed fields and write-only identities are refused when signing', () => {
      const bad: Array<Partial<LedgerFields>> = [
        { holds: { [bob.userId]: -1 } }, { holds: { [bob.userId]: 1.5 } }, { placed: { [bob.userId]: Number.MAX_SAFE_INTEGER + 1 } },
        { holds: { [bob.userId.toUpperCase()]: 1 } }, { placed: { alice: 1 } }, { groupId: 'xyz' }, { peerId: 'not-base58!' },
        { time: -1 }, { holds: Object.fromEntries(Array.from({ length: MAX_LEDGER_ENTRIES + 1 }, (_, i) => [toHex(new Uint8Array(32).fill(0)).slice(0, 56) + i.toString(16).padStart(8, '0'), 1])) }
      ]
      for (const over of bad) assert.throws(() => signLedger(sodium, alice, fields(over)), InvalidArgumentError, JSON.stringify(over).slice(0, 80))
      assert.throws(() => signLedger(sodium, writeOnlyIdentity(alice), fields()), InvalidArgumentError)
      const max = Object.fromEntries(Array.from({ length: MAX_LEDGER_ENTRIES }, (_, i) => ['0'.repeat(56) + i.toString(16).padStart(8, '0'), Number.MAX_SAFE_INTEGER]))
      const big = signLedger(sodium, alice, fields({ holds: max, placed: max }))
      assert.deepEqual(decodeLedger(encodeLedger(big)), big)
    })

    it('decoding demands canonical JSON with exactly the statement\'s fields', () => {
      const s = signLedger(sodium, alice, fields())
      const text = utf8Decode(encodeLedger(s))
      assert.throws(() => decodeLedger(utf8Encode(text + '\n')), /canonical/)
      assert.throws(() => decodeLedger(utf8Encode(JSON.stringify(s))), /canonical/)
      assert.throws(() => decodeLedger(utf8Encode(text.replace('"time":', '"x":1,"time":'))), FormatError)
      assert.throws(() => decodeLedger(encodeLedger({ ...s, extra: 1 } as LedgerStatement)), /unknown field "extra"/)
      const { placed: _p, ...noPlaced } = s
      assert.throws(() => decodeLedger(encodeLedger(noPlaced as LedgerStatement)), /lacks the field "placed"/)
      assert.throws(() => decodeLedger(new Uint8Array(300 * 1024).fill(0x20)), /more than/)
      assert.throws(() => decodeLedger(utf8Encode('[]')), FormatError)
    })

    it('any well-formed statement encodes canonically and decodes to itself; damage never decodes to garbage', () => {
      const map = fc.dictionary(hex(32), fc.maxSafeNat(), { maxKeys: 6 })
      const arb = fc.record({
        version: fc.constant(1 as const), groupId: hex(16), userId: hex(32), peerId: fc.constantFrom(fakePeerId(1), fakePeerId(7), '1'),
        time: fc.maxSafeNat(), holds: map, placed: map, signature: sigArb
      }).map(s => JSON.parse(JSON.stringify(s)) as LedgerStatement) // plain objects, as a decoder makes
      fc.assert(fc.property(arb, fc.nat(), fc.integer({ min: 1, max: 255 }), (s, at, x) => {
        const bytes = encodeLedger(s)
        assert.deepEqual(decodeLedger(bytes), s)
        assert.deepEqual(encodeLedger(decodeLedger(bytes)), bytes)
        bytes[at % bytes.length] = (bytes[at % bytes.length] as number) ^ x
        try { encodeLedger(decodeLedger(bytes)) } catch (err: unknown) { if (!(err instanceof FormatError)) throw err }
      }), { seed: 51, numRuns: 300 })
    })
  })

  describe('version 2: what a relay carried (format/ledger.md §2, §5.5)', () => {
    it('a statement with relayed bytes is version 2; without any (or all zero) it stays version 1', () => {
      const v2 = signLedger(sodium, alice, fields({ relayed: { [bob.userId]: 3 * MiB, [carol.userId]: 0 } }))
      assert.equal(v2.version, 2)
      assert.deepEqual(v2.relayed, { [bob.userId]: 3 * MiB })
      assert.deepEqual(verifyLedger(sodium, v2, { roster, now: T0 }), v2)
      assert.deepEqual(decodeLedger(encodeLedger(v2)), v2)
      const v1 = signLedger(sodium, alice, fields({ relayed: { [bob.userId]: 0 } }))
      assert.equal(v1.version, 1)
      assert.equal('relayed' in v1, false)
      assert.deepEqual(v1, signLedger(sodium, alice, fields()), 'byte for byte what a version 1 writer signs')
    })

    it('the relayed figures are signed, and each version has exactly its fields', () => {
      const v2 = signLedger(sodium, alice, fields({ relayed: { [bob.userId]: 3 * MiB } }))
      assert.throws(() => verifyLedger(sodium, { ...v2, relayed: { [bob.userId]: 4 * MiB } }), UnauthenticatedError)
      const { relayed: _r, ...noRelayed } = v2
      assert.throws(() => decodeLedger(encodeLedger(noRelayed as LedgerStatement)), /lacks the field "relayed"/)
      const v1 = signLedger(sodium, alice, fields())
      assert.throws(() => decodeLedger(encodeLedger({ ...v1, relayed: {} } as LedgerStatement)), /unknown field "relayed"/)
      assert.throws(() => decodeLedger(encodeLedger({ ...v2, version: 3 } as unknown as LedgerStatement)), /version 3/)
    })

    it('what each person relayed for each other member comes from their devices\' newest statements and changes no balance', () => {
      const a1 = signLedger(sodium, alice, fields({ relayed: { [bob.userId]: 5 * MiB, [carol.userId]: 1, [alice.userId]: 9, [dave.userId]: 9 } }))
      const b2old = signLedger(sodium, bob, fields({ peerId: fakePeerId(2), holds: {}, placed: {}, relayed: { [carol.userId]: 100 } }))
      const b2 = signLedger(sodium, bob, fields({ peerId: fakePeerId(2), time: T0 + 1, holds: {}, placed: {}, relayed: { [carol.userId]: 7 } }))
      const b3 = signLedger(sodium, bob, fields({ peerId: fakePeerId(3), holds: {}, placed: {}, relayed: { [carol.userId]: 8 } }))
      assert.deepEqual(ledgerRelayed([a1, b2old, b2, b3], roster), [
        { relay: alice.userId, member: bob.userId, bytes: 5 * MiB },
        { relay: alice.userId, member: carol.userId, bytes: 1 },
        { relay: bob.userId, member: carol.userId, bytes: 15 }
      ].sort((x, y) => x.relay < y.relay ? -1 : x.relay > y.relay ? 1 : x.member < y.member ? -1 : 1))
      const plain = [signLedger(sodium, alice, fields()), b2, b3].map(x => ({ ...x }))
      assert.deepEqual(ledgerBalances([a1, b2, b3], roster), ledgerBalances(plain, roster))
    })
  })

  describe('balances', () => {
    /** Unsigned statements are enough here: ledgerBalances trusts what it is given (verification happens on receipt). */
    const st = (peer: number, who: Identity, time: number, holds: Record<string, number>, placed: Record<string, number> = {}): LedgerStatement =>
      ({ version: 1, groupId: roster.groupId, userId: who.userId, peerId: fakePeerId(peer), time, holds, placed, signature: 'A'.repeat(86) + '==' })

    it('uses = what others hold for you (or what you placed, if more); gives = what you hold that the owner confirms', () => {
      const A = alice.userId; const B = bob.userId; const C = carol.userId
      const all = [
        st(1, alice, 5, { [B]: 4 * GiB, [A]: 99 * GiB }, { [B]: GiB, [C]: GiB }), // alice's own holds[A] never counts
        st(2, bob, 5, { [A]: 600 * MiB }, { [A]: 3 * GiB }),
        st(3, bob, 5, { [A]: 300 * MiB }),
        st(4, carol, 5, { [A]: 2 * GiB }, { [dave.userId]: GiB }) // dave is no member: ignored
      ]
      assert.deepEqual(ledgerEntries(all, roster).map(e => [e.holder, e.owner, e.holderSays, e.ownerSays]).sort(), [
        [A, B, 4 * GiB, 3 * GiB], [B, A, 900 * MiB, GiB], [C, A, 2 * GiB, GiB]
      ].sort())
      assert.deepEqual(Object.fromEntries(ledgerBalances(all, roster)), {
        [A]: { uses: GiB + 2 * GiB, gives: 3 * GiB },
        [B]: { uses: 4 * GiB, gives: 900 * MiB },
        [C]: { uses: 0, gives: GiB }
      })
    })

    it('a member who claims to hold huge amounts of a friend\'s data adds at most the dispute cap to that friend\'s use (finding 8)', () => {
      const A = alice.userId; const B = bob.userId; const C = carol.userId
      const honest = [
        st(1, alice, 5, { [B]: 2 * GiB }, { [B]: GiB, [C]: GiB }),
        st(2, bob, 5, { [A]: GiB }, { [A]: 2 * GiB }),
        st(4, carol, 5, { [A]: GiB })
      ]
      const before = ledgerBalances(honest, roster).get(A) as ReciprocityBalance
      assert.deepEqual(before, { uses: 2 * GiB, gives: 2 * GiB })
      // carol signs that she holds 2^53 − 1 bytes of alice's data
      const griefing = st(4, carol, 6, { [A]: Number.MAX_SAFE_INTEGER })
      const after = ledgerBalances([...honest, griefing], roster).get(A) as ReciprocityBalance
      assert.equal(after.uses, before.uses + LEDGER_DISPUTE_CAP_BYTES, 'carol\'s claim beyond what alice placed counts at most the cap')
      assert.equal(after.gives, before.gives)
      // bob, a persister, still takes alice's next gigabyte (2 GiB given: limit 4 GiB, 3 GiB used)
      assert.equal(reciprocityRefusal(A, GiB, ledgerBalances([...honest, griefing], roster, { self: B })), undefined)
      // the claim counts in full only for carol's own decisions: she may refuse alice herself
      assert.ok((ledgerBalances([...honest, griefing], roster, { self: C }).get(A) as ReciprocityBalance).uses > 1e15)
    })

    it('the newest statement of each device wins; other groups, strangers and impostors are ignored', () => {
      const B = bob.userId
      const newest = st(1, alice, 10, { [B]: GiB })
      const noise = [
        st(1, alice, 9, { [B]: 50 * GiB }),
        { ...st(1, alice, 11, { [B]: 70 * GiB }), groupId: 'cd'.repeat(16) },
        st(1, carol, 12, { [B]: 80 * GiB }), // carol signing for alice's device
        st(99, carol, 12, { [B]: 80 * GiB }) // a device not on the roster
      ]
      assert.deepEqual(latestLedgers([...noise, newest], roster), [newest])
      assert.equal(ledgerBalances([newest, ...noise], roster).get(B)?.uses, GiB)
      const without = removeMember(sodium, roster, alice, carol.userId, T0 + 1)
      const fromCarol = st(4, carol, 10, { [B]: GiB })
      assert.equal(ledgerBalances([fromCarol], roster).get(B)?.uses, GiB)
      assert.equal(ledgerBalances([fromCarol], without).get(B)?.uses, 0)
      assert.equal(ledgerBalances([fromCarol], without).has(carol.userId), false)
    })

    const members = (): string[] => [alice.userId, bob.userId, carol.userId]
    /** Statements by arbitrary devices (some not on the roster, some signed in the wrong name) about members and strangers. */
    const statementsArb = (): fc.Arbitrary<LedgerStatement[]> => {
      const user = fc.constantFrom(...members(), dave.userId)
      const map = fc.dictionary(user, fc.nat(1e13), { maxKeys: 4 })
      const one = fc.record({ dev: fc.nat(devices.length), signer: fc.nat(9), time: fc.integer({ min: 1, max: 5 }), holds: map, placed: map, sig: sigArb })
        .map(r => {
          const [peerId, owner] = devices[r.dev] ?? [fakePeerId(50), dave]
          const who = r.signer === 0 ? carol : owner // now and then a signer impersonating another's device
          return { ...st(1, who, r.time, r.holds, r.placed), peerId, signature: r.sig }
        })
      return fc.array(one, { maxLength: 12 })
    }

    it('order does not matter, and older statements of a device change nothing', () => {
      fc.assert(fc.property(statementsArb(), fc.nat(), (all, seed) => {
        const base = ledgerBalances(all, roster)
        const shuffled = [...all].sort((a, b) => ((a.time * 7919 + seed) % 13) - ((b.time * 7919 + seed) % 13))
        assert.deepEqual(ledgerBalances(shuffled, roster), base)
        const older = all.map(s => ({ ...s, time: s.time - 1, holds: { [alice.userId]: 1e12 }, placed: {} }))
        assert.deepEqual(ledgerBalances([...older, ...all], roster), base)
      }), { seed: 52, numRuns: 200 })
    })

    it('no self-attestation: whatever a person states about themselves, their standing is no better than the truth', () => {
      // a true matrix truth[holder][owner]; honest statements report it; then one person lies freely
      const truthArb = fc.array(fc.nat(1e12), { minLength: 9, maxLength: 9 })
      fc.assert(fc.property(truthArb, fc.nat(2), statementsArb(), (cells, liar, lies) => {
        const users = members()
        const truth = (h: number, o: number): number => h === o ? 0 : cells[h * 3 + o] as number
        const honest: LedgerStatement[] = []
        users.forEach((_, h) => {
          const holds = Object.fromEntries(users.map((o, j) => [o, truth(h, j)]))
          const placed = Object.fromEntries(users.map((y, j) => [y, truth(j, h)]))
          const mine = devices.filter(([, who]) => who.userId === users[h])
          if (mine.length === 1) honest.push({ ...st(1, (mine[0] as [string, Identity])[1], 3, holds, placed), peerId: (mine[0] as [string, Identity])[0] })
          else { // bob: his two devices split what he holds; the first reports all placements
            const half = Object.fromEntries(Object.entries(holds).map(([k, v]) => [k, Math.floor(v / 2)]))
            const rest = Object.fromEntries(Object.entries(holds).map(([k, v]) => [k, v - Math.floor(v / 2)]))
            honest.push({ ...st(2, bob, 3, half, placed) }, { ...st(3, bob, 3, rest) })
          }
        })
        const trueUses = (o: number): number => users.reduce((n, _, h) => n + truth(h, o), 0)
        const trueGives = (h: number): number => users.reduce((n, _, o) => n + truth(h, o), 0)
        const exact = ledgerBalances(honest, roster)
        users.forEach((u, i) => { assert.deepEqual(exact.get(u), { uses: trueUses(i), gives: trueGives(i) }) })
        // the liar's devices publish newer, arbitrary statements
        const liarId = users[liar] as string
        const lying = lies.filter(s => s.userId === liarId).map(s => ({ ...s, time: 4 }))
        const after = ledgerBalances([...honest, ...lying], roster).get(liarId) as ReciprocityBalance
        // under-reporting what it placed: each other holder's honest figure still counts up to the
        // dispute cap (the bound that keeps one member's claim from blocking a friend, finding 8)
        const capped = (o: number, except = -1): number => users.reduce((n, _, h) => n + (h === except ? 0 : Math.min(truth(h, o), LEDGER_DISPUTE_CAP_BYTES)), 0)
        assert.ok(after.uses >= capped(liar), 'uses went below what the holders say, capped')
        // a holder judging for itself counts its own pair in full: on its own disk the lie gains nothing
        users.forEach((holder, h) => {
          if (h === liar) return
          const own = ledgerBalances([...honest, ...lying], roster, { self: holder }).get(liarId) as ReciprocityBalance
          assert.ok(own.uses >= truth(h, liar) + capped(liar, h), 'a holder\'s own pair counted less than it holds')
        })
        assert.ok(after.gives <= trueGives(liar), 'gives went above the truth')
        let sumUses = 0; let sumGives = 0
        for (const b of ledgerBalances([...honest, ...lies], roster).values()) { sumUses += b.uses; sumGives += b.gives }
        assert.ok(sumGives <= sumUses)
      }), { seed: 53, numRuns: 200 })
    })
  })

  describe('refusal', () => {
    const bal = (uses: number, gives: number): Map<string, ReciprocityBalance> => new Map([['x'.repeat(64), { uses, gives }]])
    const X = 'x'.repeat(64)

    it('defaults: 2× what one gives, and everyone counts as giving at least 1 GiB', () => {
      assert.equal(DEFAULT_RECIPROCITY_MULTIPLE, 2)
      assert.equal(DEFAULT_RECIPROCITY_GRACE_BYTES, GiB)
      assert.equal(reciprocityLimit(0), 2 * GiB)
      assert.equal(reciprocityLimit(5 * GiB), 10 * GiB)
      assert.equal(reciprocityRefusal('y'.repeat(64), 2 * GiB, bal(0, 0)), undefined, 'a newcomer may store up to the grace')
      assert.notEqual(reciprocityRefusal('y'.repeat(64), 2 * GiB + 1, bal(0, 0)), undefined)
    })

    it('a fair member is accepted up to the limit exactly; one byte more is refused with the numbers and what to do', () => {
      assert.equal(reciprocityRefusal(X, 2 * GiB, bal(8 * GiB, 5 * GiB)), undefined)
      const reason = reciprocityRefusal(X, 2 * GiB + 1, bal(8 * GiB, 5 * GiB))
      assert.ok(reason !== undefined)
      for (const part of ['8.00 GiB', '5.00 GiB', '10.0 GiB', '2×', 'p2pbak contribute SIZE']) assert.ok(reason.includes(part), `${part} in: ${reason}`)
    })

    it('a greedy member is refused even for a tiny shard; a generous policy lets them through', () => {
      assert.match(reciprocityRefusal(X, 1, bal(9 * GiB, GiB)) ?? '', /9\.00 GiB.*1\.00 GiB.*2\.00 GiB/)
      assert.equal(reciprocityRefusal(X, GiB, bal(9 * GiB, GiB), { multiple: 10 }), undefined)
      assert.equal(reciprocityRefusal(X, 0, bal(1, 0), { graceBytes: 0 }) !== undefined, true)
      assert.equal(reciprocityRefusal(X, 3 * GiB, bal(0, 0), { multiple: 1.5, graceBytes: 2 * GiB }), undefined)
    })

    it('bad arguments are refused', () => {
      const bad: Array<[number, ReciprocityPolicy]> = [[-1, {}], [0.5, {}], [0, { multiple: 0 }], [0, { multiple: Number.NaN }], [0, { multiple: Infinity }], [0, { graceBytes: -1 }], [0, { graceBytes: 0.5 }]]
      for (const [add, policy] of bad) assert.throws(() => reciprocityRefusal(X, add, bal(0, 0), policy), InvalidArgumentError)
    })
  })

  describe('golden vectors (test/vectors/ledger.json)', () => {
    interface LedgerVectors {
      roster: string, rosterAfterRemoval: string, statements: string[], signingBytes: string, statementV2: string
      relayed: Array<{ relay: string, member: string, bytes: number }>
      balances: Record<string, ReciprocityBalance>, balancesAfterRemoval: Record<string, ReciprocityBalance>
      decisions: Array<{ owner: string, addBytes: number, policy: ReciprocityPolicy, refusal: string | null }>
    }
    const file = JSON.parse(readFileSync(new URL('../../vectors/ledger.json', import.meta.url), 'utf8')) as LedgerVectors & Record<string, unknown>

    for (const name of ['sodium-native', 'libsodium-wrappers'] as const) {
      it(`${name} regenerates the file byte for byte`, async () => {
        assert.deepEqual(buildLedgerVectors(await loadBackend(name)), file)
      })
    }

    it('the stored statements decode, re-encode identically, verify, and give the stored balances and decisions', () => {
      const r = decodeRoster(utf8Encode(file.roster))
      const statements = file.statements.map(t => decodeLedger(utf8Encode(t)))
      statements.forEach((s, i) => {
        assert.equal(utf8Decode(encodeLedger(s)), file.statements[i])
        verifyLedger(sodium, s, { roster: r })
      })
      const first = file.statements[0] as string
      assert.equal(file.signingBytes, toHex(utf8Encode('p2pbak ledger v1\0' + first.replace(/,"signature":"[^"]+"/, ''))))
      assert.equal(file.signingBytes, toHex(ledgerSigningBytes(statements[0] as LedgerStatement)))
      const balances = ledgerBalances(statements, r)
      assert.deepEqual(Object.fromEntries(balances), file.balances)
      assert.deepEqual(Object.fromEntries(ledgerBalances(statements, decodeRoster(utf8Encode(file.rosterAfterRemoval)))), file.balancesAfterRemoval)
      for (const d of file.decisions) assert.equal(reciprocityRefusal(d.owner, d.addBytes, balances, d.policy) ?? null, d.refusal)
      assert.deepEqual(file.decisions.map(d => d.refusal !== null), [false, true, true, true, false, false])
      // version 2: decodes, re-encodes identically, verifies, gives the stored relayed figures and the same balances
      const v2 = decodeLedger(utf8Encode(file.statementV2))
      assert.equal(v2.version, 2)
      assert.equal(utf8Decode(encodeLedger(v2)), file.statementV2)
      verifyLedger(sodium, v2, { roster: r })
      assert.deepEqual(ledgerRelayed([...statements, v2], r), file.relayed)
      assert.deepEqual(Object.fromEntries(ledgerBalances([...statements, v2], r)), file.balances)
    })
  })
})
