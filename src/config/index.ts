export { resolveOptions } from './resolve.js'
