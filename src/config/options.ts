// Placeholder: the real module replaces this file (resolved options type).
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

/** Options after every source (flags > env > file > defaults) was merged and validated. */
export interface Options {
  /** Upstream base URL, normalized: no trailing slash, path ends with `/v1`. */
  upstream: URL
  /** Absolute cache folders whose files may be delivered. */
  cacheDirs: string[]
  port: number
  host: string
  /** Base URL the browser uses to reach imagegate, no trailing slash; undefined = derive from the listening address. */
  publicUrl: string | undefined
  /** Replaces the client's Authorization header upstream when set. */
  upstreamApiKey: string | undefined
  logLevel: LogLevel
}
