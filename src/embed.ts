/**
 * imagegate inside another program: the same server the command line starts, from a
 * plain options object, closed by the program that started it.
 */
import type { DestinationStream } from 'pino'
import { resolveImagegateOptions, type ImagegateOptions } from './config/object.js'
import { startServer } from './server.js'

/** A running imagegate. */
export interface Imagegate {
  /** Where clients reach it: `http://127.0.0.1:8090` (`localhost` for a wildcard host). */
  readonly url: string
  /** The base of image links, as browsers reach it (`--public-url`, or `url`). */
  readonly publicUrl: string
  /** The address it is bound to, such as `0.0.0.0:8090`. */
  readonly address: string
  /** Stops accepting requests, lets running streams finish (`shutdownGrace`) and closes. */
  close: () => Promise<void>
}

/** What only a program can give: where log lines go. */
export interface ImagegateSettings {
  /** Receives pino's JSON lines; stdout (readable on a terminal) when absent. */
  logStream?: DestinationStream
}

/**
 * Validates `options` as the command line does (a ConfigError naming `options.<key>`
 * on a mistake), starts listening and resolves once requests are answered.
 *
 * ```js
 * import { createImagegate } from 'imagegate'
 * const gate = await createImagegate({ upstream: 'http://127.0.0.1:8642/v1', port: 0 })
 * // … point clients at gate.url …
 * await gate.close()
 * ```
 */
export async function createImagegate (options: ImagegateOptions, settings: ImagegateSettings = {}): Promise<Imagegate> {
  const { options: resolved, warnings } = resolveImagegateOptions(options)
  return startServer(resolved, { warnings, ...settings })
}
