/**
 * Getting the passphrase: P2PBAK_PASSPHRASE, else a file (P2PBAK_PASSPHRASE_FILE, or the systemd
 * credential $CREDENTIALS_DIRECTORY/p2pbak-passphrase that `service install` sets up), else a hidden
 * prompt on a terminal, else none.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { errnoCode, InvalidArgumentError, WrongPassphraseError } from '../errors.js'
import type { CliIo } from './io.js'

/** The name of the systemd credential holding the passphrase (`LoadCredential=p2pbak-passphrase:FILE`). */
export const PASSPHRASE_CREDENTIAL = 'p2pbak-passphrase'

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
  const fromFile = passphraseFromFile(io.env)
  if (fromFile !== undefined) return fromFile
  if (io.stdin.isTTY === true) return await promptHidden(io, 'passphrase: ')
  throw new WrongPassphraseError('this identity is protected by a passphrase: set P2PBAK_PASSPHRASE or P2PBAK_PASSPHRASE_FILE, or run on a terminal')
}

/**
 * The passphrase from P2PBAK_PASSPHRASE_FILE (which must exist) or else from the systemd credential
 * $CREDENTIALS_DIRECTORY/p2pbak-passphrase (when there is one); undefined when neither applies. The
 * file holds the passphrase; one final line ending (LF or CRLF) is not part of it.
 * @throws InvalidArgumentError when P2PBAK_PASSPHRASE_FILE names a file that cannot be read
 */
export function passphraseFromFile (env: Record<string, string | undefined>): string | undefined {
  const named = env.P2PBAK_PASSPHRASE_FILE
  if (named !== undefined && named !== '') {
    try {
      return stripLineEnd(readFileSync(named, 'utf8'))
    } catch (err: unknown) {
      throw new InvalidArgumentError(`P2PBAK_PASSPHRASE_FILE: cannot read ${named} (${errnoCode(err) ?? String(err)})`, { cause: err })
    }
  }
  const dir = env.CREDENTIALS_DIRECTORY
  if (dir === undefined || dir === '') return undefined
  try {
    return stripLineEnd(readFileSync(join(dir, PASSPHRASE_CREDENTIAL), 'utf8'))
  } catch (err: unknown) {
    // systemd passes other credentials too: this one is simply not among them
    if (errnoCode(err) === 'ENOENT') return undefined
    throw new InvalidArgumentError(`cannot read the credential ${join(dir, PASSPHRASE_CREDENTIAL)} (${errnoCode(err) ?? String(err)})`, { cause: err })
  }
}

function stripLineEnd (text: string): string {
  return text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text
}

/**
 * For creating a key file: P2PBAK_PASSPHRASE, else P2PBAK_PASSPHRASE_FILE (or the systemd
 * credential), else ask twice on a terminal (an empty answer: none). Without any of these (a script,
 * or an empty variable) the seed would be stored unencrypted: that needs `insecureNoPassphrase`
 * (`--insecure-no-passphrase`), else InvalidArgumentError.
 */
export async function newPassphrase (io: CliIo, opts: { insecureNoPassphrase?: boolean } = {}): Promise<string | null> {
  if (opts.insecureNoPassphrase === true) return null
  const env = io.env.P2PBAK_PASSPHRASE
  const given = env !== undefined && env !== '' ? env : passphraseFromFile(io.env)
  if (given !== undefined && given !== '') return given
  if (io.stdin.isTTY !== true) {
    throw new InvalidArgumentError('no passphrase for the new key file: set P2PBAK_PASSPHRASE or P2PBAK_PASSPHRASE_FILE, run on a terminal, or pass --insecure-no-passphrase to store the seed protected only by file permissions')
  }
  const a = await promptHidden(io, 'new passphrase (empty for none): ')
  if (a === '') return null
  const b = await promptHidden(io, 'repeat passphrase: ')
  if (a !== b) throw new WrongPassphraseError('the two passphrases differ; nothing was written')
  return a
}
