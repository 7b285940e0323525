import assert from 'node:assert/strict'
import { whyLocalReason } from '../../../src/node/why-local.js'
import type { Roster } from '../../../src/peers/index.js'
import type { SpaceAnswer } from '../../../src/protocols/group.js'

const GiB = 2 ** 30
/** A roster with these people, each with one device named after them (only what whyLocalReason reads). */
const roster = (...people: string[]): Roster => ({ members: people.map(p => ({ userId: p, devices: [{ peerId: `dev-${p}` }] })) }) as unknown as Roster
const answer = (persister: boolean): SpaceAnswer => ({ persister, publisher: true, quotaBytes: GiB, usedBytes: 0, freeBytes: GiB })

describe('why no friend takes shares now (why-local.ts), the group\'s reasons', () => {
  it('names each reason in turn, and none once a friend who offers space answers', () => {
    const answers = new Map<string, SpaceAnswer>()
    assert.match(whyLocalReason(null, 'me', id => answers.get(id), () => false) ?? '', /in no group/)
    assert.match(whyLocalReason(roster('me'), 'me', id => answers.get(id), () => false) ?? '', /only member/)
    const three = roster('me', 'bob', 'cid', 'dee')
    assert.match(whyLocalReason(three, 'me', id => answers.get(id), () => false) ?? '', /none of your 3 friend\(s\)' node\(s\) answered/)
    answers.set('dev-bob', answer(false))
    assert.match(whyLocalReason(three, 'me', id => answers.get(id), () => false) ?? '', /none offers disk space/)
    answers.set('dev-cid', answer(true))
    assert.match(whyLocalReason(three, 'me', id => answers.get(id), () => false) ?? '', /failed their storage audits/)
    assert.equal(whyLocalReason(three, 'me', id => answers.get(id), () => true), null)
  })

  it('another device of this person that answers and offers space is not a friend: the reason stays', () => {
    const withLaptop = { members: [{ userId: 'me', devices: [{ peerId: 'dev-me' }, { peerId: 'laptop-me' }] }, { userId: 'bob', devices: [{ peerId: 'dev-bob' }] }] } as unknown as Roster
    const answers = new Map<string, SpaceAnswer>([['laptop-me', answer(true)]])
    assert.match(whyLocalReason(withLaptop, 'me', id => answers.get(id), () => true) ?? '', /none of your 1 friend\(s\)' node\(s\) answered/)
    answers.set('dev-bob', answer(false))
    assert.match(whyLocalReason(withLaptop, 'me', id => answers.get(id), () => true) ?? '', /1 friend device\(s\) answered but none offers disk space/)
  })
})
