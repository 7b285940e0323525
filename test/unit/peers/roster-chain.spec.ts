import assert from 'node:assert/strict'
import { loadBackend } from '../../../src/crypto/index.js'
import type { Identity, SodiumBackend } from '../../../src/crypto/index.js'
import { FormatError, InvalidArgumentError, UnauthenticatedError } from '../../../src/errors.js'
import {
  MAX_ROSTER_CHAIN, MAX_ROSTER_CHAIN_BYTES, MAX_ROSTER_HISTORY, ROSTER_CHECKPOINT, addDevice, addMember, createRoster, decodeRosterChain, encodeRosterChain,
  findMember, issueDeviceCert, keptHistory, oldestThatFit, rebaseOwnChanges, reconcileRosters, removeDevice, removeMember, rosterHash, setAdmin, verifyChain
} from '../../../src/peers/index.js'
import type { DeviceCert, Roster } from '../../../src/peers/index.js'
import { fakePeerId, forge, forgeNext, identityFrom } from './fixtures.js'

/** `n` versions signed by `member` on top of `from`, each adding one of its own devices or revoking the one added before. */
function memberChurn (sodium: SodiumBackend, from: Roster, member: Identity, n: number, seed: number): Roster[] {
  const out: Roster[] = []
  let cur = from
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) {
      cur = addDevice(sodium, cur, member, issueDeviceCert(sodium, member, fakePeerId(seed + i), 'spare', T0 + 10), T0 + 10 + i)
    } else {
      cur = removeDevice(sodium, cur, member, fakePeerId(seed + i - 1), T0 + 10 + i)
    }
    out.push(cur)
  }
  return out
}

const T0 = 1_700_000_000_000

describe('peers: roster chains and forks', () => {
  let sodium: SodiumBackend
  let alice: Identity, bob: Identity, carol: Identity, dave: Identity, erin: Identity
  let a1: DeviceCert, b1: DeviceCert, c1: DeviceCert, d1: DeviceCert, e1: DeviceCert
  let r1: Roster, r2: Roster, r3: Roster
  before(async () => {
    sodium = await loadBackend()
    ;[alice, bob, carol, dave, erin] = [1, 2, 3, 4, 5].map(n => identityFrom(sodium, n)) as [Identity, Identity, Identity, Identity, Identity]
    ;[a1, b1, c1, d1, e1] = [alice, bob, carol, dave, erin].map((id, i) => issueDeviceCert(sodium, id, fakePeerId(i + 1), `d${i}`, T0)) as [DeviceCert, DeviceCert, DeviceCert, DeviceCert, DeviceCert]
    r1 = createRoster(sodium, alice, 'family', a1, T0)
    r2 = addMember(sodium, r1, alice, { userId: bob.userId, name: 'Bob', device: b1 }, T0 + 1)
    r3 = addMember(sodium, r2, alice, { userId: carol.userId, name: 'Carol', device: c1 }, T0 + 2)
  })

  it('a run of versions encodes as a canonical array and decodes only when consecutive and linked', () => {
    assert.deepEqual(decodeRosterChain(encodeRosterChain([r1, r2, r3])), [r1, r2, r3])
    assert.throws(() => decodeRosterChain(encodeRosterChain([r1, r3])), FormatError)
    assert.throws(() => decodeRosterChain(encodeRosterChain([r2, r1])), FormatError)
    assert.throws(() => decodeRosterChain(encodeRosterChain([])), FormatError)
  })

  it('catches up over several versions at once, each checked', () => {
    const r = reconcileRosters(sodium, [r1], [r1, r2, r3])
    assert.equal(r.kind, 'advance')
    assert.deepEqual(r.kind === 'advance' ? r.adopted : [], [r2, r3])
    assert.equal(reconcileRosters(sodium, [r1, r2, r3], [r1, r2]).kind, 'current')
    // a version in the run that a non-member signed: refused, whatever follows
    const forged = forge(sodium, r3, erin)
    assert.throws(() => reconcileRosters(sodium, [r1, r2], [r2, forged]), (e: unknown) => e instanceof Error && /not a member/.test(e.message))
    assert.equal(reconcileRosters(sodium, [r3], [r1]).kind, 'current')
    assert.equal(reconcileRosters(sodium, [r1], [r3]).kind, 'unlinked')
  })

  it('a fork pushed to two halves is settled the same way on both: the lower hash at the fork wins', () => {
    // bob (a plain member) signs two different serial-4 versions, each adding another device of his: one for each half of the group
    const forA = addDevice(sodium, r3, bob, issueDeviceCert(sodium, bob, fakePeerId(20), 'b2', T0), T0 + 3)
    const forB = addDevice(sodium, r3, bob, issueDeviceCert(sodium, bob, fakePeerId(21), 'b3', T0), T0 + 3)
    const [low, high] = rosterHash(forA) < rosterHash(forB) ? [forA, forB] : [forB, forA]
    const onLow = reconcileRosters(sodium, [r2, r3, low], [r3, high])
    assert.equal(onLow.kind, 'keep')
    assert.equal(onLow.kind === 'keep' && onLow.fork.equivocation, true, 'one signer signed both: equivocation')
    const onHigh = reconcileRosters(sodium, [r2, r3, high], [r3, low])
    assert.equal(onHigh.kind, 'switch')
    if (onHigh.kind !== 'switch') return
    assert.deepEqual(onHigh.adopted, [low])
    assert.deepEqual(onHigh.abandoned, [high])
    assert.equal(onHigh.anchor, r3)
    // the losing half also drops what it built on top of its branch
    const built = removeMember(sodium, high, alice, carol.userId, T0 + 4)
    const deeper = reconcileRosters(sodium, [r3, high, built], [r3, low])
    assert.equal(deeper.kind, 'switch')
    assert.deepEqual(deeper.kind === 'switch' ? deeper.abandoned : [], [high, built])
    // the winning branch's later versions are checked too
    const afterLow = forge(sodium, { ...built, prev: rosterHash(low) }, carol)
    assert.throws(() => reconcileRosters(sodium, [r3, high], [r3, low, afterLow]), UnauthenticatedError)
  })

  it('after a switch, a member signs again what it did on the dropped branch (two friends who joined at once both stay)', () => {
    // two admins: alice admits dave while bob admits erin, both at serial 5
    const base = setAdmin(sodium, r3, alice, bob.userId, true, T0 + 3)
    const byAlice = addMember(sodium, base, alice, { userId: dave.userId, name: 'Dave', device: d1 }, T0 + 4)
    const byBob = addMember(sodium, base, bob, { userId: erin.userId, name: 'Erin', device: e1 }, T0 + 4)
    const aliceLoses = rosterHash(byBob) < rosterHash(byAlice)
    const [winner, loser, loserId] = aliceLoses ? [byBob, byAlice, alice] : [byAlice, byBob, bob]
    const { versions, skipped } = rebaseOwnChanges(sodium, winner, base, [loser], loserId, T0 + 5)
    assert.deepEqual(skipped, [])
    assert.equal(versions.length, 1)
    const head = versions[0] as Roster
    assert.equal(head.serial, 6)
    assert.equal(head.prev, rosterHash(winner))
    assert.deepEqual(head.members.map(m => m.userId).sort(), [alice, bob, carol, dave, erin].map(i => i.userId).sort())
    // changes someone else signed are theirs to redo
    assert.deepEqual(rebaseOwnChanges(sodium, winner, base, [loser], carol, T0 + 5).versions, [])
    // a member who is no admin (any more) cannot sign a new person again: skipped, with the reason
    const demoted = setAdmin(sodium, winner, alice, loserId.userId, false, T0 + 6)
    const again = rebaseOwnChanges(sodium, demoted, base, [loser], loserId, T0 + 7)
    assert.deepEqual(again.versions, [])
    assert.match(again.skipped.join('\n'), /only a group admin can add a new person/)
  })

  it('a run holds at most MAX_ROSTER_CHAIN versions', () => {
    assert.ok(MAX_ROSTER_HISTORY >= 16)
    const long: Roster[] = [r1]
    for (let i = 0; i < MAX_ROSTER_CHAIN; i++) long.push(forge(sodium, { ...(long.at(-1) as Roster), serial: (long.at(-1) as Roster).serial + 1, prev: rosterHash(long.at(-1) as Roster), version: 2, updatedAt: T0 + i }, alice))
    assert.throws(() => decodeRosterChain(encodeRosterChain(long)), FormatError)
    assert.equal(decodeRosterChain(encodeRosterChain(long.slice(1))).length, MAX_ROSTER_CHAIN)
  })

  it('a node keeps every version since the newest checkpoint, and at least MAX_ROSTER_HISTORY', () => {
    const churn = memberChurn(sodium, r3, bob, 40, 1000)
    // head serial 43: no checkpoint since serial 0, so everything stays
    assert.deepEqual(keptHistory([r1, r2, r3, ...churn]), [r1, r2, r3, ...churn.slice(0, -1)])
    // past a checkpoint (serial 64, an admin's), the versions from it on, or the last 32 when more
    const more = memberChurn(sodium, churn.at(-1) as Roster, bob, 20, 1100)
    const checkpoint = setAdmin(sodium, more.at(-1) as Roster, alice, carol.userId, true, T0 + 100)
    assert.equal(checkpoint.serial, ROSTER_CHECKPOINT)
    const after = memberChurn(sodium, checkpoint, bob, 10, 1200)
    const all = [r1, r2, r3, ...churn, ...more, checkpoint, ...after]
    assert.equal(keptHistory(all)[0]?.serial, (after.at(-1) as Roster).serial - MAX_ROSTER_HISTORY)
    const later = memberChurn(sodium, after.at(-1) as Roster, bob, 40, 1300)
    const kept = keptHistory([...all, ...later])
    assert.equal(kept[0], checkpoint)
    assert.equal(kept.length, 50)
  })

  it('every 64th version is a checkpoint only an admin signs: members sign at most 63 in a row, a bound every node computes alike', () => {
    // r3 is serial 3: bob signs 60 versions, up to serial 63
    const churn = memberChurn(sodium, r3, bob, 60, 2000)
    const at63 = churn.at(-1) as Roster
    assert.equal(at63.serial, ROSTER_CHECKPOINT - 1)
    verifyChain(sodium, r3, churn)
    // bob's own node does not sign serial 64, and says what to do
    assert.throws(() => addDevice(sodium, at63, bob, issueDeviceCert(sodium, bob, fakePeerId(2999), 'x', T0 + 10), T0 + 100),
      (err: unknown) => err instanceof InvalidArgumentError && /checkpoint, which only an admin signs/.test(err.message))
    // a node refuses serial 64 signed by a member, whatever history it keeps (the rule needs only the two versions)
    const forged = forgeNext(sodium, at63, bob, d => { d.updatedAt++ })
    assert.throws(() => { verifyChain(sodium, at63, [forged]) }, (err: unknown) => err instanceof UnauthenticatedError && /only an admin may sign roster serial 64/.test(err.message))
    // an admin's version there; members go on after it
    const checkpoint = setAdmin(sodium, at63, alice, carol.userId, true, T0 + 200)
    const after = addDevice(sodium, checkpoint, bob, issueDeviceCert(sodium, bob, fakePeerId(2998), 'again', T0 + 10), T0 + 201)
    verifyChain(sodium, at63, [checkpoint, after])
  })

  it('a chain answer starts where it was asked and is cut at its size from the end, so it links to what the asker holds', () => {
    // versions of about 150 KB each: a member's device names and revocations make them large
    let big = setAdmin(sodium, r3, alice, carol.userId, true, T0 + 5)
    big = forgeNext(sodium, big, alice, d => { for (let i = 0; i < 2500; i++) d.removedDevices.push(fakePeerId(70_000 + i)) })
    const run = [big]
    for (let i = 0; i < 80; i++) run.push(forgeNext(sodium, run.at(-1) as Roster, alice, d => { d.updatedAt++ }))
    const page = oldestThatFit(run)
    assert.equal(page[0], big, 'it starts at the version asked for')
    assert.ok(page.length < run.length, 'the run is cut')
    assert.ok(encodeRosterChain(page).byteLength <= MAX_ROSTER_CHAIN_BYTES)
    // the next page, asked from the last version of this one, links to it
    const next = oldestThatFit(run.filter(r => r.serial >= (page.at(-1) as Roster).serial))
    assert.equal(reconcileRosters(sodium, page, next).kind, 'advance')
  })

  it('a fork deeper than MAX_ROSTER_HISTORY, made of one member\'s versions, is still settled: both halves keep back to the admin\'s version', () => {
    const one = memberChurn(sodium, r3, bob, 40, 4000)
    const two = memberChurn(sodium, r3, bob, 40, 5000)
    const half1 = [...keptHistory([r1, r2, r3, ...one]), one.at(-1) as Roster]
    const half2 = [...keptHistory([r1, r2, r3, ...two]), two.at(-1) as Roster]
    const at1 = reconcileRosters(sodium, half1, half2.filter(x => x.serial >= (half1[0] as Roster).serial))
    const at2 = reconcileRosters(sodium, half2, half1.filter(x => x.serial >= (half2[0] as Roster).serial))
    // the same branch wins on both sides
    assert.deepEqual([at1.kind, at2.kind].sort(), ['keep', 'switch'])
  })

  it('a member\'s churn while an admin is away cannot strand the admin: it catches up, and its removal of that member takes effect', () => {
    // bob signs 40 versions (more than MAX_ROSTER_HISTORY) and pushes them to everyone but alice
    const churn = memberChurn(sodium, r3, bob, 40, 3000)
    const full = [r1, r2, r3, ...churn]
    const others = [...keptHistory(full), full.at(-1) as Roster]
    const aliceLocal = [r1, r2, r3]
    // alice's refresh asks a member for the versions from her oldest on: they link
    const answer = others.filter(x => x.serial >= (aliceLocal[0] as Roster).serial)
    const caught = reconcileRosters(sodium, aliceLocal, answer)
    assert.equal(caught.kind, 'advance')
    // had alice signed bob's removal on her old head first, the fork at serial 4 is within everyone's history
    const rm = removeMember(sodium, r3, alice, bob.userId, T0 + 50)
    const atOthers = reconcileRosters(sodium, others, [rm])
    const atAlice = reconcileRosters(sodium, [...aliceLocal, rm], others.filter(x => x.serial >= r1.serial))
    assert.ok(['keep', 'switch'].includes(atOthers.kind), atOthers.kind)
    let head: Roster
    if (atOthers.kind === 'switch') {
      head = atOthers.adopted.at(-1) as Roster
    } else {
      // the others keep bob's branch; alice switches to it and signs her removal again on top
      assert.equal(atAlice.kind, 'switch')
      if (atAlice.kind !== 'switch') return
      const { versions } = rebaseOwnChanges(sodium, atAlice.adopted.at(-1) as Roster, atAlice.anchor, atAlice.abandoned, alice, T0 + 60)
      head = versions.at(-1) as Roster
      verifyChain(sodium, atAlice.adopted.at(-1) as Roster, versions)
    }
    assert.equal(findMember(head, bob.userId), undefined)
  })
})
