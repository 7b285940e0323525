/** Getting the passphrase: P2PBAK_PASSPHRASE, else a hidden prompt on a terminal, else none. */
import { WrongPassphraseError } from '../errors.js'
import type { CliIo } from './io.js'

export async function promptHidden (io: CliIo, question: string): Promise<string> {
  const { stdin, stderr } = io
  return await new Promise((resolve, reject) => {
    stderr.write(question)
    let input = ''
    const wasRaw = stdin.setRawMode !== undefined
    stdin.setRawMode?.(true)
    stdin.resume()
    const onData = (buf: Buffer): void => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n') { done(); resolve(input); return }
        if (ch === '\u0003') { done(); reject(new WrongPassphraseError('cancelled')); return }
        if (ch === '\u007f' || ch === '\b') input = input.slice(0, -1)
        else input += ch
      }
    }
    const done = (): void => {
      stdin.off('data', onData)
      if (wasRaw) stdin.setRawMode?.(false)
      stdin.pause()
      stderr.write('\n')
    }
    stdin.on('data', onData)
  })
}

/** For opening an existing key file. */
export async function readPassphrase (io: CliIo): Promise<string | null> {
  const env = io.env.P2PBAK_PASSPHRASE
  if (env !== undefined) return env
  if (io.stdin.isTTY === true) return await promptHidden(io, 'passphrase: ')
  throw new WrongPassphraseError('this identity is protected by a passphrase: set P2PBAK_PASSPHRASE or run on a terminal')
}

/** For creating a key file: env, else ask twice on a terminal, else none (key stored unencrypted, mode 0600). */
export async function newPassphrase (io: CliIo): Promise<string | null> {
  const env = io.env.P2PBAK_PASSPHRASE
  if (env !== undefined) return env === '' ? null : env
  if (io.stdin.isTTY !== true) return null
  const a = await promptHidden(io, 'new passphrase (empty for none): ')
  if (a === '') return null
  const b = await promptHidden(io, 'repeat passphrase: ')
  if (a !== b) throw new WrongPassphraseError('the two passphrases differ; nothing was written')
  return a
}
