import assert from 'node:assert/strict'
import fc from 'fast-check'
import { phraseToSeed, seedToPhrase } from '../../../src/crypto/phrase.js'
import { InvalidPhraseError } from '../../../src/errors.js'
import { fromHex, toHex } from '../../../src/util/bytes.js'

/** Asserts an InvalidPhraseError whose message matches `pattern`. */
function rejects (phrase: string, pattern: RegExp): void {
  assert.throws(() => phraseToSeed(phrase), (err: unknown) => {
    assert.ok(err instanceof InvalidPhraseError, `expected InvalidPhraseError, got ${String(err)}`)
    assert.equal(err.code, 'ERR_INVALID_PHRASE')
    assert.match(err.message, pattern)
    return true
  })
}

const seed32 = fc.uint8Array({ minLength: 32, maxLength: 32 })

describe('recovery phrase', () => {
  it('matches the official BIP39 English vectors for 256-bit entropy', () => {
    const cases: Array<[string, string]> = [
      ['00'.repeat(32), `${'abandon '.repeat(23)}art`],
      ['7f'.repeat(32), 'legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth title'],
      ['80'.repeat(32), 'letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic bless'],
      ['ff'.repeat(32), `${'zoo '.repeat(23)}vote`]
    ]
    for (const [hex, phrase] of cases) {
      assert.equal(seedToPhrase(fromHex(hex)), phrase)
      assert.equal(toHex(phraseToSeed(phrase)), hex)
    }
  })

  it('round-trips every seed, as 24 lowercase words separated by single spaces (property)', () => {
    fc.assert(fc.property(seed32, (seed) => {
      const phrase = seedToPhrase(seed)
      assert.match(phrase, /^[a-z]+( [a-z]+){23}$/)
      assert.deepEqual(phraseToSeed(phrase), seed)
    }), { seed: 3, numRuns: 300 })
  })

  it('accepts any whitespace and letter case (property)', () => {
    const sep = fc.constantFrom(' ', '  ', '\n', '\t', ' \r\n ')
    fc.assert(fc.property(seed32, fc.array(sep, { minLength: 25, maxLength: 25 }), fc.boolean(), (seed, seps, upper) => {
      const words = seedToPhrase(seed).split(' ').map((w, i) => (upper && i % 2 === 0 ? w.toUpperCase() : w))
      const messy = seps[0] + words.map((w, i) => w + (seps[i + 1] ?? ' ')).join('')
      assert.deepEqual(phraseToSeed(messy), seed)
    }), { seed: 4, numRuns: 100 })
  })

  it('rejects a wrong word count, naming the count', () => {
    const words = seedToPhrase(new Uint8Array(32).fill(9)).split(' ')
    rejects(words.slice(0, 23).join(' '), /24 words, this one has 23/)
    rejects([...words, 'abandon'].join(' '), /has 25/)
    rejects(words.slice(0, 12).join(' '), /has 12/)
    rejects('', /has 0/)
  })

  it('rejects an unknown word, naming its position but not quoting it', () => {
    const words = seedToPhrase(new Uint8Array(32).fill(9)).split(' ')
    words[4] = 'abandonn'
    rejects(words.join(' '), /^word 5 of the recovery phrase is not in the BIP39 English word list$/)
  })

  it('rejects a bad checksum (one valid word replaced, or two words swapped)', () => {
    const words = seedToPhrase(Uint8Array.from({ length: 32 }, (_, i) => i)).split(' ')
    const replaced = words.slice()
    replaced[23] = replaced[23] === 'zoo' ? 'abandon' : 'zoo'
    rejects(replaced.join(' '), /checksum/)
    const swapped = words.slice()
    ;[swapped[0], swapped[1]] = [words[1] ?? '', words[0] ?? '']
    assert.notEqual(words[0], words[1])
    rejects(swapped.join(' '), /checksum/)
  })

  it('refuses to encode a seed that is not 32 bytes', () => {
    assert.throws(() => seedToPhrase(new Uint8Array(16)), RangeError)
  })
})
