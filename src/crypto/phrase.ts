/**
 * The recovery phrase: the 32-byte master seed written as 24 BIP39 English words. The seed IS
 * the BIP39 entropy (256 bits + an 8-bit SHA-256 checksum = 24 x 11 bits); there is no
 * PBKDF2 "mnemonic to seed" step and no BIP39 passphrase.
 */
import { entropyToMnemonic, mnemonicToEntropy } from '@scure/bip39'
import { wordlist } from '@scure/bip39/wordlists/english.js'
import { InvalidPhraseError } from '../errors.js'
import { SEED_BYTES } from './constants.js'

export const PHRASE_WORDS = 24

const known = new Set(wordlist)

/** 24 BIP39 English words (256-bit entropy + 8-bit checksum), words separated by single spaces. */
export function seedToPhrase (seed: Uint8Array): string {
  if (!(seed instanceof Uint8Array) || seed.byteLength !== SEED_BYTES) throw new RangeError(`master seed must be ${SEED_BYTES} bytes`)
  return entropyToMnemonic(seed, wordlist)
}

/**
 * Accepts any whitespace/case; throws InvalidPhraseError naming the problem (unknown word N,
 * wrong count, bad checksum). Messages never quote the words, which are secret.
 */
export function phraseToSeed (phrase: string): Uint8Array {
  if (typeof phrase !== 'string') throw new InvalidPhraseError('the recovery phrase must be text')
  const words = phrase.normalize('NFKD').toLowerCase().split(/\s+/u).filter((w) => w !== '')
  if (words.length !== PHRASE_WORDS) {
    throw new InvalidPhraseError(`a recovery phrase has ${PHRASE_WORDS} words, this one has ${words.length}`)
  }
  const unknown = words.findIndex((w) => !known.has(w))
  if (unknown >= 0) {
    throw new InvalidPhraseError(`word ${unknown + 1} of the recovery phrase is not in the BIP39 English word list`)
  }
  try {
    return Uint8Array.from(mnemonicToEntropy(words.join(' '), wordlist))
  } catch {
    // Count and words were checked above, so the checksum is all that can fail here.
    throw new InvalidPhraseError('the recovery phrase has a bad checksum: a word is wrong or words are out of order')
  }
}
