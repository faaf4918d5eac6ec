/** imagegate's programmatic API: what a program that embeds it needs, and nothing else. */
export { createImagegate, type Imagegate, type ImagegateSettings } from './embed.js'
export { resolveImagegateOptions, type ImagegateOptions } from './config/object.js'
export type { LogLevel, Mode, Options } from './config/options.js'
export { ConfigError, ImagegateError } from './errors.js'
export { VERSION } from './server.js'
