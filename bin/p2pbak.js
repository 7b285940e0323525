#!/usr/bin/env node
// The only place that touches the real process: argv, stdio, environment, signals, exit code.
import '../dist/util/polyfill.js'
import { main } from '../dist/cli/main.js'

const controller = new AbortController()
let interrupted = false
process.on('SIGINT', () => {
  if (interrupted) process.exit(130)
  interrupted = true
  controller.abort()
})
process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  cwd: process.cwd(),
  signal: controller.signal
})
