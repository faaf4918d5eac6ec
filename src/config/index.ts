export { resolveOptions, type ResolveInput, type Resolved } from './resolve.js'
export {
  DEFAULT_HOST, DEFAULT_LOG_LEVEL, DEFAULT_PORT, DEFAULT_UPSTREAM, LOG_LEVELS,
  type LogLevel, type Options
} from './options.js'
export { DEFAULT_HERMES_HOME, HERMES_CACHE_KINDS } from './cache-dirs.js'
export { defaultPublicUrl, redactUrl } from './urls.js'
export { KEYS, envName, type Key } from './sources.js'
