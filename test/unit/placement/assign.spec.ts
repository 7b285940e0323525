import assert from 'node:assert/strict'
import fc from 'fast-check'
import { InvalidArgumentError, PlacementFailedError } from '../../../src/errors.js'
import { avoidHeldIndexes, planPlacement, planReplacements, type Candidate, type Holder } from '../../../src/placement/index.js'

const FC = { seed: 31337, numRuns: 400 }
const ME = 'me'
const SHARE = 100

/** Few persons, few distinct values: plenty of same-person peers and ties. */
const arbCandidates: fc.Arbitrary<Candidate[]> = fc.uniqueArray(
  fc.record({
    peerId: fc.integer({ min: 0, max: 60 }).map((i) => `peer-${i.toString().padStart(2, '0')}`),
    personId: fc.constantFrom(ME, 'ann', 'bob', 'cat', 'dan', 'eve', 'fay', 'gus', 'hal'),
    online: fc.boolean(),
    freeBytes: fc.constantFrom(0, 50, 100, 1000, 1e12),
    reliability: fc.constantFrom(0, 0.5, 0.9, 1)
  }),
  { selector: (c) => c.peerId, maxLength: 24 }
)
const arbExclude = fc.uniqueArray(fc.integer({ min: 0, max: 60 }).map((i) => `peer-${i.toString().padStart(2, '0')}`), { maxLength: 5 })

/** Written independently of the code: a peer may take a share of SHARE bytes. */
const eligible = (c: Candidate, exclude: ReadonlySet<string>, allowOwn: boolean): boolean =>
  c.online && c.freeBytes >= SHARE && !exclude.has(c.peerId) && (allowOwn || c.personId !== ME)

/** -1 when a ranks before b: reliability, free space, peer id. */
const rank = (a: Candidate, b: Candidate): number =>
  b.reliability - a.reliability || (b.freeBytes - a.freeBytes) || (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)

function expectFailure (fn: () => unknown, eligibleCount: number): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof PlacementFailedError, String(err))
    assert.match(err.message, new RegExp(`only ${eligibleCount} eligible`))
    return true
  })
}

describe('placement/planPlacement', () => {
  it('one share per person, never yourself, only online peers with room that are not excluded; fails exactly when too few people qualify', () => {
    fc.assert(fc.property(arbCandidates, fc.integer({ min: 0, max: 10 }), arbExclude, fc.boolean(), (cands, n, ex, allowOwn) => {
      const exclude = new Set(ex)
      const persons = new Set(cands.filter((c) => eligible(c, exclude, allowOwn)).map((c) => c.personId))
      const run = (): string[] => planPlacement(n, SHARE, cands, { ownPersonId: ME, allowOwn, exclude })
      if (persons.size < n) { expectFailure(run, persons.size); return }
      const peers = run()
      assert.equal(peers.length, n)
      const byId = new Map(cands.map((c) => [c.peerId, c]))
      const chosen = peers.map((id) => byId.get(id) as Candidate)
      assert.equal(new Set(chosen.map((c) => c.personId)).size, n, 'two shares on one person')
      for (const c of chosen) assert.ok(eligible(c, exclude, allowOwn), `${c.peerId} is not eligible`)
    }), FC)
  })

  it('takes each person\'s best peer and the best persons, best first; your own devices only when nobody else is left', () => {
    fc.assert(fc.property(arbCandidates, fc.integer({ min: 1, max: 10 }), fc.boolean(), (cands, n, allowOwn) => {
      const ok = cands.filter((c) => eligible(c, new Set(), allowOwn))
      const best = new Map<string, Candidate>()
      for (const c of [...ok].sort(rank)) if (!best.has(c.personId)) best.set(c.personId, c)
      if (best.size < n) return
      const isOwn = (c: Candidate): number => (c.personId === ME ? 1 : 0)
      const expected = [...best.values()].sort((a, b) => isOwn(a) - isOwn(b) || rank(a, b)).slice(0, n).map((c) => c.peerId)
      assert.deepEqual(planPlacement(n, SHARE, cands, { ownPersonId: ME, allowOwn }), expected)
    }), FC)
  })

  it('is deterministic and independent of the order of the candidates', () => {
    fc.assert(fc.property(arbCandidates.chain((c) => fc.tuple(fc.constant(c), fc.shuffledSubarray(c, { minLength: c.length, maxLength: c.length }))),
      fc.integer({ min: 1, max: 6 }), ([cands, shuffled], n) => {
        const opts = { ownPersonId: ME, allowOwn: true }
        let a: string[] | string
        let b: string[] | string
        try { a = planPlacement(n, SHARE, cands, opts) } catch (err: unknown) { a = String(err) }
        try { b = planPlacement(n, SHARE, shuffled, opts) } catch (err: unknown) { b = String(err) }
        assert.deepEqual(a, b)
      }), FC)
  })

  it('explains a failure in plain words, with every refused peer and why', () => {
    const c = (peerId: string, personId: string, extra: Partial<Candidate> = {}): Candidate =>
      ({ peerId, personId, online: true, freeBytes: 8 << 20, reliability: 0.9, ...extra })
    const cands = [
      c('a1', 'ann'), c('a2', 'ann', { online: false }), c('b1', 'bob'), c('c1', 'cat'), c('d1', 'dan'),
      c('e1', 'eve', { online: false }), c('f1', 'fay', { freeBytes: 10 }), c('m1', ME)
    ]
    assert.throws(() => planPlacement(6, 4 << 20, cands, { ownPersonId: ME }), (err: unknown) => {
      assert.ok(err instanceof PlacementFailedError)
      // the example of docs/placement-and-repair.md §5
      assert.equal(err.message, 'cannot place 6 share(s) of 4194304 bytes on 6 different people: only 4 eligible ' +
        '(8 peer(s) of 7 people offered; 2 offline; 1 full; 1 your own)')
      assert.deepEqual(err.errors.map((e) => e.peer), ['a2', 'e1', 'f1', 'm1'])
      assert.match(err.errors[2]?.error ?? '', /not enough free space \(10 < 4194304 bytes\)/)
      return true
    })
    assert.deepEqual(planPlacement(4, 4 << 20, cands, { ownPersonId: ME }), ['a1', 'b1', 'c1', 'd1'])
    assert.deepEqual(planPlacement(5, 4 << 20, cands, { ownPersonId: ME, allowOwn: true }), ['a1', 'b1', 'c1', 'd1', 'm1'])
    assert.deepEqual(planPlacement(0, 4 << 20, [], { ownPersonId: ME }), [])
  })

  it('refuses malformed candidates', () => {
    const c: Candidate = { peerId: 'p', personId: 'x', online: true, freeBytes: 1, reliability: 1 }
    assert.throws(() => planPlacement(1, 0, [c, { ...c, personId: 'y' }], { ownPersonId: ME }), InvalidArgumentError)
    assert.throws(() => planPlacement(1, 0, [{ ...c, reliability: 1.5 }], { ownPersonId: ME }), InvalidArgumentError)
    assert.throws(() => planPlacement(1, 0, [{ ...c, reliability: Number.NaN }], { ownPersonId: ME }), InvalidArgumentError)
    assert.throws(() => planPlacement(1, 0, [{ ...c, freeBytes: -1 }], { ownPersonId: ME }), InvalidArgumentError)
    assert.throws(() => planPlacement(-1, 0, [c], { ownPersonId: ME }), InvalidArgumentError)
    assert.throws(() => planPlacement(1, Number.NaN, [c], { ownPersonId: ME }), InvalidArgumentError)
  })
})

describe('placement/planReplacements', () => {
  it('keeps one share per person against the remaining holders; fails exactly when too few people qualify', () => {
    fc.assert(fc.property(arbCandidates, fc.integer({ min: 2, max: 10 }), fc.nat(), arbExclude, (cands, n, seed, ex) => {
      // a placement of n shares that lost some: holders are drawn from the candidates (one per person)
      const people = [...new Map(cands.filter((c) => c.personId !== ME).map((c) => [c.personId, c])).values()]
      const holders = new Map<number, Holder>()
      const missing: number[] = []
      for (let i = 0; i < n; i++) {
        const h = people[i]
        if (h !== undefined && ((seed >> i) & 1) === 1) holders.set(i, { peerId: h.peerId, personId: h.personId })
        else missing.push(i)
      }
      const exclude = new Set(ex)
      const held = new Set([...holders.values()].map((h) => h.personId))
      const persons = new Set(cands.filter((c) => eligible(c, exclude, false) && !held.has(c.personId)).map((c) => c.personId))
      const run = (): Map<number, string> => planReplacements(missing, holders, SHARE, cands, { ownPersonId: ME, exclude })
      if (persons.size < missing.length) { expectFailure(run, persons.size); return }
      const out = run()
      assert.deepEqual([...out.keys()], missing)
      const byId = new Map(cands.map((c) => [c.peerId, c]))
      const all = [...held, ...[...out.values()].map((id) => (byId.get(id) as Candidate).personId)]
      assert.equal(new Set(all).size, all.length, 'a person would hold two shares')
      for (const id of out.values()) assert.ok(eligible(byId.get(id) as Candidate, exclude, false))
    }), FC)
  })

  it('gives the best person the smallest missing index and refuses a missing index that still has a holder', () => {
    const c = (peerId: string, personId: string, reliability: number): Candidate => ({ peerId, personId, online: true, freeBytes: 1e9, reliability })
    const cands = [c('a1', 'ann', 0.5), c('b1', 'bob', 0.9), c('c1', 'cat', 1), c('c2', 'cat', 0.2)]
    const holders = new Map<number, Holder>([[1, { peerId: 'c2', personId: 'cat' }]])
    assert.deepEqual([...planReplacements([3, 0, 3], holders, 10, cands, { ownPersonId: ME })], [[0, 'b1'], [3, 'a1']])
    assert.throws(() => planReplacements([1], holders, 10, cands, { ownPersonId: ME }), InvalidArgumentError)
    assert.throws(() => planReplacements([0, 2, 3], holders, 10, cands, { ownPersonId: ME }), (err: unknown) =>
      err instanceof PlacementFailedError && /only 2 eligible/.test(err.message) && /2 already holding a share/.test(err.message))
  })
})

describe('placement/planReplacements: the previous holder as a last resort (P7)', () => {
  const arbCase = fc.tuple(arbCandidates, fc.integer({ min: 2, max: 8 }), fc.nat(), fc.nat(), arbExclude, fc.boolean())

  it('uses new people first; a previous holder takes back only its own index, only when too few others qualify, and only if eligible but for the exclusion', () => {
    fc.assert(fc.property(arbCase, ([cands, n, seed, prevSeed, ex, partial]) => {
      const people = [...new Map(cands.filter((c) => c.personId !== ME).map((c) => [c.personId, c])).values()]
      const holders = new Map<number, Holder>()
      const missing: number[] = []
      const previous = new Map<number, string>()
      for (let i = 0; i < n; i++) {
        const h = people[i]
        if (h !== undefined && ((seed >> i) & 1) === 1) holders.set(i, { peerId: h.peerId, personId: h.personId })
        else {
          missing.push(i)
          const p = cands[(prevSeed + i * 7) % Math.max(1, cands.length)]
          if (p !== undefined && ((prevSeed >> i) & 1) === 1) previous.set(i, p.peerId)
        }
      }
      // the repairer excludes the holders it is replacing
      const exclude = new Set([...ex, ...previous.values()])
      const byId = new Map(cands.map((c) => [c.peerId, c]))
      const heldPersons = new Set([...holders.values()].map((h) => h.personId))
      const heldPeers = new Set([...holders.values()].map((h) => h.peerId))
      const fresh = (c: Candidate): boolean => eligible(c, exclude, false) && !heldPersons.has(c.personId)
      // written independently: which indexes may go back, one per person, the smallest index first
      const back = new Map<number, string>()
      for (const i of missing) {
        const c = byId.get(previous.get(i) ?? '')
        if (c === undefined || [...back.values()].some((p) => byId.get(p)?.personId === c.personId)) continue
        const others = new Set([...exclude].filter((p) => p !== c.peerId))
        if (eligible(c, others, false) && !heldPersons.has(c.personId) && !heldPeers.has(c.peerId)) back.set(i, c.peerId)
      }
      const backPersons = new Set([...back.values()].map((p) => byId.get(p)?.personId))
      const allFresh = new Set(cands.filter(fresh).map((c) => c.personId))
      const freshOthers = new Set([...allFresh].filter((p) => !backPersons.has(p)))
      const expected = allFresh.size >= missing.length
        ? missing.length
        : Math.min(freshOthers.size, missing.length - back.size) + back.size
      const run = (): Map<number, string> => planReplacements(missing, holders, SHARE, cands, { ownPersonId: ME, exclude, previous, partial })
      if (expected < missing.length && !(partial && expected > 0)) {
        assert.throws(run, PlacementFailedError)
        return
      }
      const out = run()
      assert.equal(out.size, expected)
      const persons = [...heldPersons]
      for (const [index, peer] of out) {
        assert.ok(missing.includes(index))
        const c = byId.get(peer) as Candidate
        persons.push(c.personId)
        if (fresh(c)) continue
        assert.equal(back.get(index), peer, `share ${index} went to ${peer}, neither eligible nor its previous holder`)
        assert.ok(allFresh.size < missing.length, 'a previous holder was used although enough other people qualified')
      }
      assert.equal(new Set(persons).size, persons.length, 'a person would hold two shares')
    }), FC)
  })

  it('six people, 2+3, one persister lost its share: it takes it back (the issue\'s group); another person first when there is one', () => {
    const c = (peerId: string, personId: string, extra: Partial<Candidate> = {}): Candidate =>
      ({ peerId, personId, online: true, freeBytes: 1e9, reliability: 0.9, ...extra })
    const cands = [c('a1', 'ann'), c('b1', 'bob'), c('c1', 'cat'), c('d1', 'dan'), c('e1', 'eve', { reliability: 0.5 })]
    const holders = new Map<number, Holder>([[0, { peerId: 'a1', personId: 'ann' }], [1, { peerId: 'b1', personId: 'bob' }], [2, { peerId: 'c1', personId: 'cat' }], [3, { peerId: 'd1', personId: 'dan' }]])
    const opts = { ownPersonId: ME, exclude: new Set(['e1']) }
    assert.throws(() => planReplacements([4], holders, 10, cands, opts), (err: unknown) =>
      err instanceof PlacementFailedError && err.message === 'cannot place 1 share(s) of 10 bytes on 1 different people: only 0 eligible ' +
        '(5 peer(s) of 5 people offered; 1 excluded; 4 already holding a share)')
    assert.deepEqual([...planReplacements([4], holders, 10, cands, { ...opts, previous: new Map([[4, 'e1']]) })], [[4, 'e1']])
    // the previous holder offline, full, or someone else's: nothing (or, with partial, what can be placed)
    for (const e1 of [c('e1', 'eve', { online: false }), c('e1', 'eve', { freeBytes: 5 }), c('e1', 'ann')]) {
      assert.throws(() => planReplacements([4], holders, 10, [...cands.slice(0, 4), e1], { ...opts, previous: new Map([[4, 'e1']]) }), PlacementFailedError)
    }
    // a seventh person joined: the share goes to them, not back
    assert.deepEqual([...planReplacements([4], holders, 10, [...cands, c('f1', 'fay')], { ...opts, previous: new Map([[4, 'e1']]) })], [[4, 'f1']])
    // two shares lost, one new person: the new person takes the index that cannot go back
    const two = new Map([...holders].filter(([i]) => i !== 3))
    const seven = [...cands, c('f1', 'fay')]
    assert.deepEqual([...planReplacements([3, 4], two, 10, seven, { ownPersonId: ME, exclude: new Set(['d1', 'e1']), previous: new Map([[4, 'e1'], [3, 'gone']]) })], [[3, 'f1'], [4, 'e1']])
    assert.deepEqual([...planReplacements([3, 4], two, 10, cands, { ownPersonId: ME, exclude: new Set(['d1', 'e1']), previous: new Map([[4, 'e1']]), partial: true })], [[4, 'e1']])
  })
})

describe('placement/avoidHeldIndexes', () => {
  it('several peers may hold leftovers at one index (earlier tries): none of them is dealt that index, whenever a dealing exists', () => {
    const held = new Map<number, ReadonlySet<string>>([[0, new Set(['A', 'B'])], [1, new Set(['C'])]])
    const dealt = avoidHeldIndexes(new Map([[0, 'A'], [1, 'B'], [2, 'C']]), held)
    assert.ok(dealt !== undefined)
    assert.equal(dealt.get(0), 'C', 'A and B both hold index 0')
    assert.notEqual(dealt.get(1), 'C')
    const permutations = (xs: string[]): string[][] => xs.length <= 1 ? [xs] : xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map(p => [x, ...p]))
    fc.assert(fc.property(fc.integer({ min: 1, max: 5 }), fc.array(fc.uniqueArray(fc.integer({ min: 0, max: 5 }), { maxLength: 3 }), { maxLength: 5 }), (n, heldPeers) => {
      const planned = new Map(Array.from({ length: n }, (_, i) => [i, `p${i}`]))
      const sets = new Map(heldPeers.slice(0, n).map((ps, i) => [i, new Set(ps.map(p => `p${p}`))]))
      const exists = permutations([...planned.values()]).some(perm => perm.every((peer, i) => !(sets.get(i)?.has(peer) ?? false)))
      const got = avoidHeldIndexes(planned, sets)
      assert.equal(got !== undefined, exists)
      if (got !== undefined) for (const [i, peers] of sets) assert.ok(!peers.has(got.get(i) as string), `index ${i} went to ${got.get(i)}, which holds it`)
    }), FC)
  })

  it('re-deals the planned peers so that none gets an index it holds of the old stripe', () => {
    const planned = new Map([[0, 'A'], [1, 'B'], [2, 'C']])
    assert.deepEqual(avoidHeldIndexes(planned, new Map()), planned)
    const dealt = avoidHeldIndexes(planned, new Map([[0, 'A'], [1, 'B']]))
    assert.ok(dealt !== undefined)
    assert.notEqual(dealt.get(0), 'A')
    assert.notEqual(dealt.get(1), 'B')
    assert.deepEqual([...dealt.values()].sort(), ['A', 'B', 'C'])
  })

  it('finds a dealing whenever the new stripe has more (distinct) peers than the old one has shares', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.integer({ min: 0, max: 11 }), { maxLength: 7 }), (n, heldPeers) => {
      const planned = new Map(Array.from({ length: n }, (_, i) => [i, `p${i}`]))
      const held = new Map(heldPeers.slice(0, n - 1).map((p, i) => [i, `p${p}`]))
      const dealt = avoidHeldIndexes(planned, held)
      assert.ok(dealt !== undefined)
      for (const [i, peer] of held) assert.notEqual(dealt.get(i), peer)
      assert.deepEqual([...dealt.values()].sort(), [...planned.values()].sort())
    }))
  })

  it('leftovers of an earlier try that rule out every rotation: another dealing is found whenever one exists', () => {
    // A holds index 0, C index 1, B index 2 (an earlier stripe's shares kept under the retention policy)
    const held = new Map([[0, 'A'], [1, 'C'], [2, 'B']])
    const dealt = avoidHeldIndexes(new Map([[0, 'A'], [1, 'B'], [2, 'C']]), held)
    assert.ok(dealt !== undefined, 'no rotation fits, but a dealing does')
    for (const [i, peer] of held) assert.notEqual(dealt.get(i), peer)
    const permutations = (xs: string[]): string[][] => xs.length <= 1 ? [xs] : xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map(p => [x, ...p]))
    fc.assert(fc.property(fc.integer({ min: 1, max: 5 }), fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 5 }), (n, heldPeers) => {
      const planned = new Map(Array.from({ length: n }, (_, i) => [i, `p${i}`]))
      const held = new Map(heldPeers.slice(0, n).map((p, i) => [i, `p${p}`]))
      const exists = permutations([...planned.values()]).some(perm => perm.every((peer, i) => held.get(i) !== peer))
      const got = avoidHeldIndexes(planned, held)
      assert.equal(got !== undefined, exists)
      if (got !== undefined) {
        for (const [i, peer] of held) assert.notEqual(got.get(i), peer)
        assert.deepEqual([...got.values()].sort(), [...planned.values()].sort())
      }
    }))
  })

  it('says so when no dealing avoids them all', () => {
    assert.equal(avoidHeldIndexes(new Map([[0, 'A'], [1, 'B']]), new Map([[0, 'A'], [1, 'A']])), undefined)
    assert.equal(avoidHeldIndexes(new Map([[0, 'A']]), new Map([[0, 'A']])), undefined)
  })
})
