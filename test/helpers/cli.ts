/** Runs the CLI in-process (main(argv, io)) and captures its output. */
import { PassThrough } from 'node:stream'
import { main } from '../../src/cli/main.js'

export interface CliResult { code: number, stdout: string, stderr: string, json: <T = unknown>() => T }

/** A cheap Argon2id for new key files in tests (opslimit 1, 8 MiB): below the floor, so allowed explicitly. */
export const TEST_ENV = { P2PBAK_KDF: '1,8388608', P2PBAK_INSECURE_TEST_KDF: '1' }

export async function runCli (argv: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  const stdin = new PassThrough()
  const out: Buffer[] = []
  const err: Buffer[] = []
  stdout.on('data', (b: Buffer) => out.push(b))
  stderr.on('data', (b: Buffer) => err.push(b))
  const code = await main(argv, { stdout, stderr, stdin, env: { ...TEST_ENV, ...env } })
  const s = Buffer.concat(out).toString()
  return {
    code,
    stdout: s,
    stderr: Buffer.concat(err).toString(),
    json: <T>() => JSON.parse(s) as T
  }
}

/** runCli bound to a home and passphrase. */
export function cliFor (home: string, passphrase: string | undefined = 'correct horse'): (...argv: string[]) => Promise<CliResult> {
  return async (...argv: string[]) => await runCli(argv, { P2PBAK_HOME: home, ...(passphrase !== undefined ? { P2PBAK_PASSPHRASE: passphrase } : {}) })
}
