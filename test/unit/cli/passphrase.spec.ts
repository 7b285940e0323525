/** readPassphrase's sources: P2PBAK_PASSPHRASE, P2PBAK_PASSPHRASE_FILE, $CREDENTIALS_DIRECTORY/p2pbak-passphrase. */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { readPassphrase } from '../../../src/cli/passphrase.js'
import type { CliIo } from '../../../src/cli/io.js'
import { InvalidArgumentError, WrongPassphraseError } from '../../../src/errors.js'

function io (env: Record<string, string | undefined>): CliIo {
  return { stdout: new PassThrough(), stderr: new PassThrough(), stdin: new PassThrough(), env }
}

describe('readPassphrase sources', () => {
  let dir: string
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'p2pbak-pass-')) })
  afterEach(() => { rmSync(dir, { recursive: true, force: true }) })

  it('takes P2PBAK_PASSPHRASE first, then P2PBAK_PASSPHRASE_FILE, then the systemd credential', async () => {
    writeFileSync(join(dir, 'file'), 'from file\n')
    writeFileSync(join(dir, 'p2pbak-passphrase'), 'from credential\r\n')
    const all = { P2PBAK_PASSPHRASE: 'from env', P2PBAK_PASSPHRASE_FILE: join(dir, 'file'), CREDENTIALS_DIRECTORY: dir }
    assert.equal(await readPassphrase(io(all)), 'from env')
    assert.equal(await readPassphrase(io({ ...all, P2PBAK_PASSPHRASE: undefined })), 'from file')
    assert.equal(await readPassphrase(io({ CREDENTIALS_DIRECTORY: dir })), 'from credential')
  })

  it('keeps everything but one final line ending, spaces included', async () => {
    writeFileSync(join(dir, 'file'), '  two lines\nand spaces  \n\n')
    assert.equal(await readPassphrase(io({ P2PBAK_PASSPHRASE_FILE: join(dir, 'file') })), '  two lines\nand spaces  \n')
    writeFileSync(join(dir, 'file'), '')
    assert.equal(await readPassphrase(io({ P2PBAK_PASSPHRASE_FILE: join(dir, 'file') })), '')
  })

  it('a named file that cannot be read is an error; a credential directory without ours is not a source', async () => {
    await assert.rejects(readPassphrase(io({ P2PBAK_PASSPHRASE_FILE: join(dir, 'missing') })), (e: unknown) => e instanceof InvalidArgumentError && /missing/.test(e.message))
    await assert.rejects(readPassphrase(io({ CREDENTIALS_DIRECTORY: dir })), (e: unknown) => e instanceof WrongPassphraseError && /P2PBAK_PASSPHRASE_FILE/.test(e.message))
  })
})
