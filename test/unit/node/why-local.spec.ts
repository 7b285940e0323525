import assert from 'node:assert/strict'
import { whyLocalReason } from '../../../src/node/why-local.js'
import type { Candidate } from '../../../src/placement/index.js'
import type { Roster } from '../../../src/peers/index.js'
import type { SpaceAnswer } from '../../../src/protocols/group.js'

const GiB = 2 ** 30
/** A roster with these people, each with one device named after them (only what whyLocalReason reads). */
const roster = (...people: string[]): Roster => ({ members: people.map(p => ({ userId: p, devices: [{ peerId: `dev-${p}` }] })) }) as unknown as Roster
const answer = (persister: boolean): SpaceAnswer => ({ persister, publisher: true, quotaBytes: GiB, usedBytes: 0, freeBytes: GiB })
const cand = (person: string, freeBytes: number): Candidate => ({ peerId: `dev-${person}`, personId: person, online: true, freeBytes, reliability: 1, provenBytes: GiB })

describe('why packs stay on this disk (why-local.ts), as status says it', () => {
  it('names each reason in turn, and none once the daemon will move the packs', () => {
    const answers = new Map<string, SpaceAnswer>()
    const none = (): Candidate[] => []
    assert.match(whyLocalReason(null, 'me', id => answers.get(id), none) ?? '', /in no group/)
    assert.match(whyLocalReason(roster('me'), 'me', id => answers.get(id), none) ?? '', /only member/)
    const three = roster('me', 'bob', 'cid', 'dee')
    assert.match(whyLocalReason(three, 'me', id => answers.get(id), none) ?? '', /none of your 3 friend\(s\)' node\(s\) answered/)
    answers.set('dev-bob', answer(false))
    assert.match(whyLocalReason(three, 'me', id => answers.get(id), none) ?? '', /none offers disk space/)
    answers.set('dev-cid', answer(true))
    answers.set('dev-dee', answer(true))
    assert.match(whyLocalReason(three, 'me', id => answers.get(id), none) ?? '', /failed their storage audits/)
    assert.match(whyLocalReason(three, 'me', id => answers.get(id), () => [cand('cid', 1 << 20), cand('dee', 0)]) ?? '', /less than 16 MiB of room each \(disks full or quotas used up\)/)
    assert.match(whyLocalReason(three, 'me', id => answers.get(id), () => [cand('cid', GiB), cand('dee', 0)]) ?? '', /only one of your 3 friends answers with room now: packs move once two do/)
    assert.equal(whyLocalReason(three, 'me', id => answers.get(id), () => [cand('cid', GiB), cand('dee', GiB)]), null)
    // a group of two: the one friend is enough
    const two = roster('me', 'cid')
    assert.equal(whyLocalReason(two, 'me', id => answers.get(id), () => [cand('cid', GiB)]), null)
  })
})
