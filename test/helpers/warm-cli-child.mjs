// The child side of warm-cli.ts: load the CLI, say "ready", run the one command sent, exit with its code.
// argv: [polyfill URL, main URL]
import { PassThrough } from 'node:stream'

const [polyfill, mainUrl] = process.argv.slice(2)
await import(polyfill)
const { main } = await import(mainUrl)
const message = new Promise((resolve) => process.once('message', resolve))
process.send('ready')
const { argv } = await message
// the IPC channel must not keep the process alive once the command is done
process.channel?.unref()
const stdin = new PassThrough()
stdin.end()
process.exitCode = await main(argv, { stdout: process.stdout, stderr: process.stderr, stdin, env: process.env, cwd: process.cwd() })
process.disconnect()
