#!/usr/bin/env node
import { realpathSync } from 'node:fs'
import { constants, homedir } from 'node:os'
import { pathToFileURL } from 'node:url'
import { resolveOptions } from './config/index.js'
import { ConfigError } from './errors.js'

/** Where main() writes; the process's streams unless a test passes its own. */
export interface Output {
  stdout: { write: (text: string) => unknown }
  stderr: { write: (text: string) => unknown }
}

/** Exit code for anything that went wrong but a ConfigError (which has its own). */
export const EXIT_FAILURE = 1

/**
 * Exit code after a second SIGINT or SIGTERM: 128 + the signal's number (130, 143), as
 * a shell reports a process that a signal ended.
 */
export function exitCodeFor (signal: 'SIGINT' | 'SIGTERM'): number {
  return 128 + constants.signals[signal]
}

/**
 * Runs imagegate: prints help or the version, or starts the server and keeps it running
 * until SIGINT or SIGTERM, then closes it. Resolves with the process exit code.
 */
export async function main (argv: string[], env: NodeJS.ProcessEnv, output: Output = process): Promise<number> {
  // Listening for signals from the start, so that one that arrives while the server is
  // still starting closes it as soon as it is up instead of killing the process.
  const signals = stopSignals(output)
  const code = await run(argv, env, output, signals.stopped).catch((err: unknown) => report(err, output))
  signals.dispose()
  return code
}

async function run (argv: string[], env: NodeJS.ProcessEnv, output: Output, stopped: Promise<unknown>): Promise<number> {
  const resolved = resolveOptions({ argv, env, cwd: process.cwd(), homedir: homedir() })
  if (resolved.kind !== 'run') {
    output.stdout.write(`${resolved.text}\n`)
    return 0
  }
  // Loaded only now, so that --help, --version and config errors stay fast.
  const { startServer } = await import('./server.js')
  const server = await startServer(resolved.options, { warnings: resolved.warnings })
  await stopped
  await server.close()
  return 0
}

// One line, no stack: every expected failure already says what to change.
function report (err: unknown, output: Output): number {
  const message = err instanceof Error ? err.message : String(err)
  output.stderr.write(`imagegate: ${message.split('\n')[0]}\n`)
  return err instanceof ConfigError ? err.exitCode : EXIT_FAILURE
}

/**
 * `stopped` resolves on the first SIGINT or SIGTERM. A second one while the server
 * drains ends the process at once, through an explicit exit rather than by giving the
 * signal back to Node's default handling: as PID 1 (a container without an init) the
 * kernel drops a signal the process has no handler for, so the default would do
 * nothing. `dispose` removes the listeners when main() ends.
 */
function stopSignals (output: Output): { stopped: Promise<NodeJS.Signals>, dispose: () => void } {
  let resolveStopped!: (signal: NodeJS.Signals) => void
  const stopped = new Promise<NodeJS.Signals>(resolve => { resolveStopped = resolve })
  let first = true
  const stop = (signal: 'SIGINT' | 'SIGTERM'): void => {
    if (first) {
      first = false
      resolveStopped(signal)
      return
    }
    output.stderr.write(`imagegate: ${signal} again: exiting without waiting for running streams\n`)
    process.exit(exitCodeFor(signal))
  }
  const dispose = (): void => {
    process.off('SIGINT', stop)
    process.off('SIGTERM', stop)
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  return { stopped, dispose }
}

/**
 * Whether the module at `moduleUrl` is the script Node was started with (`script`, that
 * is process.argv[1]). npm starts bins through a symlink in node_modules/.bin: argv[1]
 * is the link while import.meta.url is the real file, so real paths are compared.
 */
export function isMainModule (moduleUrl: string, script: string | undefined): boolean {
  if (script === undefined) return false
  try {
    return moduleUrl === pathToFileURL(realpathSync(script)).href
  } catch {
    return false // `node -e … arg`: argv[1] is an argument, not a file
  }
}

if (isMainModule(import.meta.url, process.argv[1])) process.exitCode = await main(process.argv.slice(2), process.env)
